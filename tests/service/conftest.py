"""A running app (real models, real SQLite or PostgreSQL) and keys for every role."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from screener.service.app import create_app
from screener.service.settings import ServiceSettings

# Who holds which key in these tests: role, owner.
PEOPLE = {
    "admin": ("admin", "ops"),
    "operator": ("operator", "ops"),
    "platform": ("platform", "genco"),
    "platform2": ("platform", "othergen"),
    "holder": ("rights_holder", "tsuburaya"),
    "holder2": ("rights_holder", "gorgon-studio"),
}


def encode(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, fmt, **options)
    return buffer.getvalue()


def files(*images: bytes | tuple[str, bytes, str]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Multipart ``images`` parts: bare bytes are sent as PNG files."""
    parts = []
    for position, item in enumerate(images):
        name, data, media = (
            item if isinstance(item, tuple) else (f"i{position}.png", item, "image/png")
        )
        parts.append(("images", (name, data, media)))
    return parts


@dataclass
class Service:
    app: FastAPI
    client: TestClient
    keys: dict[str, str]
    data_dir: Path

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def settled(self, filed: dict[str, Any], who: str) -> dict[str, Any]:
        """A notice as ``who`` sees it once the job it started has run: the worker has run
        every job handed to it (no clock involved)."""
        worker = self.app.state.runtime.desk.worker
        assert worker is not None, "the service runs no job worker"
        worker.wait_idle()
        got = self.client.get(f"/v1/notices/{filed['notice_id']}", headers=self.h(who))
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body

    def register(self, who: str, work_id: str, *images: bytes, **form: Any) -> httpx.Response:
        response: httpx.Response = self.client.post(
            "/v1/works",
            headers=self.h(who),
            data={"work_id": work_id, **form},
            files=files(*images),
        )
        return response

    def check(
        self, who: str, *images: bytes | tuple[str, bytes, str], **form: Any
    ) -> httpx.Response:
        response: httpx.Response = self.client.post(
            "/v1/check", headers=self.h(who), data=form, files=files(*images)
        )
        return response


@contextmanager
def running_service(data_dir: Path, **settings: Any) -> Iterator[Service]:
    app = create_app(ServiceSettings(data_dir=data_dir, **settings))
    with TestClient(app) as client:
        runtime = app.state.runtime
        assert runtime.wait(300), "the service did not finish loading"
        assert runtime.ready, runtime.failure
        keys = {
            who: runtime.desk.keys.create(role, owner, f"test key for {who}")[1]
            for who, (role, owner) in PEOPLE.items()
        }
        yield Service(app, client, keys, data_dir)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """One app per test module and database: SQLite (WAL) and a real PostgreSQL."""
    data_dir = tmp_path_factory.mktemp(f"service-{request.param}")
    settings: dict[str, Any] = {}
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres")
        settings["database_url"] = server.create_database()
    with running_service(data_dir, **settings) as running:
        yield running
