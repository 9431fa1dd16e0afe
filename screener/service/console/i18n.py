"""The console's languages: Simplified Chinese (zh-CN) and English, from a gettext
catalogue (Babel's tools, Jinja2's i18n extension).

The language of a request is, in order: ``?lang=`` (which also sets a cookie, so the
switch in the header sticks), the cookie, the browser's ``Accept-Language``, English. It
lives in a context variable for the request, so templates and the Python code that
words a message (flashes, errors) use the same one. English is the catalogue's source
language: an English page uses the msgids as they are.

The catalogue is ``locale/zh_CN/LC_MESSAGES/console.po``; ``console.mo`` beside it is
compiled from it (``tools/i18n.sh``; a test holds the two in step).
"""

from __future__ import annotations

import gettext as gettext_mod
import re
from contextvars import ContextVar
from functools import cache
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "console"
LANG_COOKIE = "screener_console_lang"
DEFAULT = "en"
# Language tag (as pages declare it) -> gettext locale folder.
LANGUAGES = {"zh-CN": "zh_CN", "en": "en"}
NAMES = {"zh-CN": "中文", "en": "English"}

_current: ContextVar[str] = ContextVar("console_language", default=DEFAULT)


@cache
def catalogue(tag: str) -> gettext_mod.NullTranslations:
    if tag == "en":
        return gettext_mod.NullTranslations()
    return gettext_mod.translation(DOMAIN, LOCALE_DIR, [LANGUAGES[tag]])


def language() -> str:
    """The language tag of the request being served ("zh-CN" or "en")."""
    return _current.get()


def gettext(message: str) -> str:
    return catalogue(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return catalogue(_current.get()).ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "mark only, translate later")
    """Marks a message for the catalogue; it is translated where it is shown."""
    return message


def known(tag: str | None) -> str | None:
    """``tag`` as one of ours ("zh", "zh-cn", "zh_Hans_CN" -> "zh-CN"; "en-GB" -> "en")."""
    if not tag:
        return None
    primary = re.split(r"[-_]", tag.strip().lower(), maxsplit=1)[0]
    if primary == "zh":
        # Traditional-script tags still get Simplified: closer than English for a reader.
        return "zh-CN"
    if primary == "en":
        return "en"
    return None


def from_accept_language(header: str) -> str | None:
    """The first of our languages in the browser's list, by quality (q=0 excluded)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        match = re.search(r"q\s*=\s*([0-9.]+)", params)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:
                continue
        found = known(tag)
        if found and quality > 0:
            ranked.append((-quality, position, found))
    return min(ranked)[2] if ranked else None


def choose(query: str, cookie_header: str, accept_language: str) -> tuple[str, bool]:
    """The request's language, and whether it came from ``?lang=`` (to remember it)."""
    asked = known((parse_qs(query).get("lang") or [""])[0])
    if asked:
        return asked, True
    cookies = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except Exception:  # a malformed Cookie header: ignore it, as browsers do
        cookies = SimpleCookie()
    remembered = known(cookies[LANG_COOKIE].value) if LANG_COOKIE in cookies else None
    return remembered or from_accept_language(accept_language) or DEFAULT, False


class ConsoleLanguage:
    """Sets the request's language; a ``?lang=`` switch is remembered in a cookie."""

    def __init__(self, app: ASGIApp, cookie_path: str) -> None:
        self.app = app
        self.cookie_path = cookie_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        tag, switched = choose(
            scope.get("query_string", b"").decode("latin-1"),
            headers.get("cookie", ""),
            headers.get("accept-language", ""),
        )
        token = _current.set(tag)

        async def remember(message: Message) -> None:
            if switched and message["type"] == "http.response.start":
                cookie = (
                    f"{LANG_COOKIE}={tag}; Path={self.cookie_path}; Max-Age=31536000; "
                    "SameSite=Lax; Secure"
                )
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
            await send(message)

        try:
            await self.app(scope, receive, remember)
        finally:
            _current.reset(token)


_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


def script_language(text: object) -> str:
    """A language tag for user text from its script, where the script tells it: kana is
    Japanese, Hangul Korean, Han alone Chinese, Latin alone English-or-like ("" when
    unknown or mixed, so the page's language is not claimed for it)."""
    if not isinstance(text, str) or not text.strip():
        return ""
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    han, latin = bool(_HAN.search(text)), bool(_LATIN.search(text))
    if han and not latin:
        return "zh"
    return ""
