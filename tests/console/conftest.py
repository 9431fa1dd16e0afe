"""A real `screener serve` on loopback and Debian's chromium driven by Playwright.

Keys are made with the CLI before the server starts, as an operator would. Each person
gets a fresh browser context (its own cookies) signed in through the sign-in page.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import needs
from tests.service.test_process import Server, make_keys

PEOPLE = {
    "admin": ("admin", "ops"),
    "operator": ("operator", "ops"),
    "platform": ("platform", "genco"),
    "holder": ("rights_holder", "tsuburaya"),
    "holder2": ("rights_holder", "gorgon-studio"),
}
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 900}
# Set to a folder to also write the README's screenshots there (docs/screenshots).
DOCS_SHOTS = os.environ.get("SCREENER_CONSOLE_SCREENSHOTS")
MAX_DOC_SHOT = 300 * 1024


@dataclass
class Console:
    server: Server
    keys: dict[str, str]
    api: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url + "/console"

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def job_done(self, job_id: str, who: str = "operator") -> dict[str, Any]:
        """The job once it has finished (done or failed): asked until then, at most ten
        minutes (a bound for a stuck server, not a measure of speed)."""
        for _ in range(1200):
            got = self.api.get(f"/v1/jobs/{job_id}", headers=self.h(who))
            assert got.status_code == 200, got.text
            body: dict[str, Any] = got.json()
            if body["state"] in ("done", "failed"):
                return body
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} did not finish: {body}")


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    data_dir = tmp_path_factory.mktemp("console") / "data"
    keys = make_keys(data_dir, PEOPLE)
    server = Server(data_dir, data_dir.parent / "serve.log")
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=120) as api:
            yield Console(server, keys, api)
    finally:
        server.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = needs.chromium()
    sync_api = needs.module("playwright.sync_api", "dev")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            launched.close()


SignIn = Callable[..., Any]


@pytest.fixture
def sign_in(console: Console, browser: Any) -> Iterator[SignIn]:
    """``sign_in(who)``: a page in a new context, signed in with that person's key
    (``locale`` sets the browser's language, so its Accept-Language; ``options`` go to
    the context: a viewport, bypass_csp to inject a test script)."""
    contexts: list[Any] = []

    def open_page(who: str, locale: str = "en-GB", **options: Any) -> Any:
        context = browser.new_context(**{"viewport": VIEWPORT, "locale": locale, **options})
        contexts.append(context)
        page = context.new_page()
        page.goto(console.url + "/login")
        page.fill("input[name=api_key]", console.keys[who])
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert "/login" not in page.url, page.content()
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page: Any, tmp_path: Path, name: str, docs: bool = False) -> Path:
    """Save a screenshot under the test's tmp dir; with ``docs`` and
    SCREENER_CONSOLE_SCREENSHOTS set, also the README's copy (JPEG, under 300 KB)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    if docs and DOCS_SHOTS:
        target = Path(DOCS_SHOTS) / f"{name}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target), type="jpeg", quality=70, full_page=True)
        assert target.stat().st_size < MAX_DOC_SHOT, target.stat().st_size
    return path
