"""The console in zh-CN and English: the catalogue is complete and compiled, the language
follows Accept-Language and the switch, pages declare it, and error pages keep the
navigation (in-process, real SQLite; the browser checks are in test_a11y_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.catalog import Message
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from screener.service.console import i18n
from tests.console.test_pages import sign_in
from tests.service.conftest import Service, encode, running_service

CONSOLE = Path(i18n.__file__).parent
PO = CONSOLE / "locale" / "zh_CN" / "LC_MESSAGES" / "console.po"
MO = PO.with_suffix(".mo")
PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sdr]")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("console-i18n")) as running:
        yield running


def _extracted() -> set[str | tuple[str, str]]:
    """Every message the console's code and templates mark, as tools/i18n.sh finds them."""
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
    found: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(CONSOLE), method_map, options, keywords
    ):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found


def test_every_console_message_has_a_chinese_translation() -> None:
    with PO.open("rb") as handle:
        catalogue = read_po(handle)
    translated = {
        m.id if isinstance(m.id, str) else m.id[0]
        for m in catalogue
        if m.id and (all(m.string) if isinstance(m.string, tuple) else m.string)
    }
    wanted = _extracted()
    assert len(wanted) > 250
    missing = [m for m in wanted if (m if isinstance(m, str) else m[0]) not in translated]
    assert not missing, f"untranslated (run tools/i18n.sh, then translate): {missing}"


def test_translations_keep_the_placeholders_of_their_message() -> None:
    with PO.open("rb") as handle:
        catalogue = read_po(handle)
    for message in catalogue:
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[1]
        strings = message.string
        targets = list(strings) if isinstance(strings, (list, tuple)) else [strings or ""]
        for target in targets:
            assert sorted(PLACEHOLDER.findall(target)) == sorted(PLACEHOLDER.findall(source)), (
                message.id,
                target,
            )


def test_the_compiled_catalogue_is_the_po_file() -> None:
    """console.mo ships beside console.po; a .po edited without recompiling fails here."""

    def flat(messages: Iterable[Message]) -> dict[object, object]:
        return {
            tuple(m.id) if isinstance(m.id, (list, tuple)) else m.id: (
                tuple(m.string) if isinstance(m.string, (list, tuple)) else m.string
            )
            for m in messages
            if m.id
        }

    with PO.open("rb") as handle:
        source = flat(read_po(handle))
    compiled = flat(read_mo(BytesIO(MO.read_bytes())))
    assert len(source) > 250
    assert compiled == source


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("en-GB,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR,zh-TW;q=0.5,en;q=0.4", "zh-CN"),
        ("de, en;q=0", "en"),  # nothing of ours with q > 0: the default
        ("zh;q=0, en", "en"),
        ("", "en"),
        ("zh-Hans-CN", "zh-CN"),
        (";;q=x,zh", "zh-CN"),
    ],
)
def test_the_language_follows_accept_language(header: str, expected: str) -> None:
    assert i18n.choose("", "", header) == (expected, False)


def test_the_switch_wins_and_the_cookie_remembers_it() -> None:
    assert i18n.choose("lang=en", "", "zh-CN") == ("en", True)
    assert i18n.choose("lang=xx", f"{i18n.LANG_COOKIE}=en", "zh-CN") == ("en", False)
    assert i18n.choose("", f"{i18n.LANG_COOKIE}=zh-CN", "en") == ("zh-CN", False)
    assert i18n.choose("", "garbage;;=;", "zh") == ("zh-CN", False)


def test_a_chinese_browser_gets_the_console_in_chinese(service: Service) -> None:
    client = TestClient(service.app, base_url="https://testserver")
    page = client.get("/console/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert "<h1>登录</h1>" in page.text and "API 密钥" in page.text
    # The switch to English: a link in the page, then the cookie keeps it.
    assert 'href="/console/login?lang=en" lang="en" hreflang="en">English</a>' in page.text
    english = client.get("/console/login?lang=en", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in english.text and "<h1>Sign in</h1>" in english.text
    cookie = english.headers["set-cookie"]
    assert f"{i18n.LANG_COOKIE}=en" in cookie and "Path=/console" in cookie
    again = client.get("/console/login", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in again.text


def test_messages_from_the_code_are_translated(service: Service) -> None:
    client = sign_in(service, "holder")
    zh = {"Accept-Language": "zh-CN"}
    works = client.get("/console/works?done=created", headers=zh)
    assert '<p class="flash" role="status">作品已登记。</p>' in works.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', works.text)
    assert token is not None
    refused = client.post(
        "/console/works",
        headers=zh,
        data={"csrf_token": token.group(1), "work_id": "", "title": "孙悟空"},
    )
    assert refused.status_code == 422
    assert "请为作品填写编号" in refused.text
    # User text carries the language its script shows.
    made = service.register("holder", "wukong", encode_scene(), title="孙悟空")
    assert made.status_code == 201, made.text
    listing = client.get("/console/works", headers=zh)
    assert '<bdi lang="zh">孙悟空</bdi>' in listing.text


def encode_scene() -> bytes:
    from screener.core.samples import drawing

    return encode(drawing(7))


def test_error_pages_keep_the_navigation_in_the_language_of_the_page(service: Service) -> None:
    client = sign_in(service, "holder")
    missing = client.get("/console/works/no-such-work", headers={"Accept-Language": "zh-CN"})
    assert missing.status_code == 404
    assert "<h1>未找到</h1>" in missing.text
    assert 'href="/console/works"' in missing.text and "退出登录" in missing.text
    refused = client.get("/console/review", headers={"Accept-Language": "en"})
    assert refused.status_code == 403
    assert "A rights holder key cannot open this page." in refused.text
    assert 'href="/console/notices"' in refused.text and "Sign out" in refused.text
    # Signed out: the page still renders, without the navigation.
    anonymous = TestClient(service.app, base_url="https://testserver")
    gone = anonymous.get("/console/static/nothing.css")
    assert gone.status_code == 404 and 'href="/console/works"' not in gone.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("孙悟空", "zh"),
        ("ウルトラマン", "ja"),
        ("奥特曼ウルトラマン", "ja"),
        ("손오공", "ko"),
        ("Ultraman 奥特曼", ""),
        ("Ultraman", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_user_text_is_tagged_with_the_language_its_script_shows(
    text: str | None, expected: str
) -> None:
    assert i18n.script_language(text) == expected
