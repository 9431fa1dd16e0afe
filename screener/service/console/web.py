"""What every console page shares: the session cookie, CSRF tokens, the signed-in key,
rendering, and errors shown as pages.

The session cookie holds the API key itself (Secure, HttpOnly, SameSite=Strict, path
/console): the console keeps no state of its own, so it works across workers and restarts,
and revoking the key signs the session out. A form's CSRF token is an HMAC of the key, so
it is tied to the session and cannot be made without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote as url_quote
from urllib.parse import unquote, urlencode, urlsplit

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from screener.core.errors import AuthError, Forbidden
from screener.duties.desk import Desk
from screener.service.console import i18n
from screener.service.console.i18n import N_
from screener.service.runtime import Runtime
from screener.store.keys import ApiKey, Role

BASE = "/console"
SESSION_COOKIE = "screener_console"
LOGIN_COOKIE = "screener_console_login"
CSRF_FIELD = "csrf_token"
_CSRF_CONTEXT = b"screener.console.csrf.v1"

HOME = {
    Role.OPERATOR: "/review",
    Role.ADMIN: "/review",
    Role.RIGHTS_HOLDER: "/works",
    Role.PLATFORM: "/try",
}
STAFF = (Role.OPERATOR, Role.ADMIN)

# Messages a redirect may ask the next page to show (?done=...), translated when shown.
DONE = {
    "confirmed": N_("Confirmed: the output joined the work's references."),
    "rejected": N_("Rejected: recorded as a false positive."),
    "created": N_("Work registered."),
    "updated": N_("Saved."),
    "references": N_("References added."),
    "held": N_("Stored, but held for an operator: see the held images below and why."),
    "approved": N_("Approved: the image joined the work's references."),
    "dropped": N_("Rejected: the held image was dropped."),
    "removed": N_("Reference removed."),
    "deleted": N_("Work removed."),
    "policy": N_("The new policy is in force."),
    "notice": N_("Notice filed; the measures taken are listed below."),
    "thresholds": N_("The work's thresholds are saved."),
    "licensees": N_("The work's licensees are saved."),
    "notice_rejected": N_("Notice rejected: the references it added were removed."),
    "key_created": N_("Key created: copy it now, it is not shown again."),
    "key_revoked": N_("Key revoked."),
    "display_name": N_("Display name saved."),
    "signed_out": N_("Signed out."),
}

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals["BASE"] = BASE
templates.env.globals["CSRF_FIELD"] = CSRF_FIELD
templates.env.globals["LANGUAGES"] = i18n.NAMES
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True
)
templates.env.filters["script_lang"] = i18n.script_language


class SignInNeeded(Exception):
    """No session, or its key is no longer valid: the page redirects to sign-in."""

    def __init__(self, next_path: str, message: str | None = None) -> None:
        super().__init__(message or "sign in")
        self.next_path = next_path
        self.message = message


def safe_next(target: str) -> str:
    """``target`` if it is a page of this console to return to after sign-in, else "".

    A path under ``/console/`` only: no scheme or host, no backslash, no empty (``//``),
    ``.`` or ``..`` segment and no control character, looked for in the path as sent and
    after each round of percent-decoding (``%2e%2e``, ``%252e``, ``%5c``). The query is
    kept; the fragment is dropped.
    """
    if len(target) > 2000 or "\\" in target or any(c < " " or c == "\x7f" for c in target):
        return ""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return ""
    path, seen = parts.path, set[str]()
    while path not in seen and len(seen) < 5:
        seen.add(path)
        segments = path.split("/")
        if (
            not path.startswith(BASE + "/")
            or "\\" in path
            or any(c < " " or c == "\x7f" for c in path)
            or any(s in ("", ".", "..") for s in segments[1:-1])
            or segments[-1] in (".", "..")
        ):
            return ""
        path = unquote(path)
    if path not in seen:  # still changing after five rounds of decoding
        return ""
    return parts.path + (f"?{parts.query}" if parts.query else "")


class CsrfRefused(Exception):
    """A form came without its token, or with another session's."""


def csrf_token(api_key: str) -> str:
    return hmac.new(api_key.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


@dataclass(frozen=True)
class Viewer:
    """The signed-in key, its desk and its form token."""

    key: ApiKey
    desk: Desk
    csrf: str

    @property
    def staff(self) -> bool:
        return self.key.role in STAFF

    def require(self, *roles: Role) -> None:
        if self.key.role not in roles:
            raise Forbidden(
                i18n.gettext("A %(role)s key cannot open this page.")
                % {"role": role_name(self.key.role)}
            )


def viewer(request: Request) -> Viewer:
    value = request.cookies.get(SESSION_COOKIE)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not value:
        raise SignInNeeded(here)
    desk = runtime(request).desk
    try:
        key = desk.authenticate(value)
    except AuthError:
        raise SignInNeeded(here, N_("The key of this session is no longer valid.")) from None
    return Viewer(key, desk, csrf_token(value))


def checked_viewer(
    request: Request, csrf_token: Annotated[str, Form(alias=CSRF_FIELD)] = ""
) -> Viewer:
    """The viewer of a form post, refused unless the form carries the session's token."""
    found = viewer(request)
    if not csrf_token or not hmac.compare_digest(csrf_token, found.csrf):
        raise CsrfRefused
    return found


TheViewer = Annotated[Viewer, Depends(viewer)]
FormViewer = Annotated[Viewer, Depends(checked_viewer)]


ROLE_NAMES = {
    Role.OPERATOR: N_("operator"),
    Role.ADMIN: N_("admin"),
    Role.RIGHTS_HOLDER: N_("rights holder"),
    Role.PLATFORM: N_("platform"),
}


def role_name(role: Role) -> str:
    return i18n.gettext(ROLE_NAMES[role])


templates.env.filters["role_name"] = role_name


def page_context(request: Request, who: Viewer | None) -> dict[str, Any]:
    """What base.html needs on every page: the viewer, the language and its switch."""
    done = request.query_params.get("done")
    lang = i18n.language()
    switch = {
        tag: request.url.path
        + "?"
        + urlencode(
            [*((k, v) for k, v in request.query_params.multi_items() if k != "lang"), ("lang", tag)]
        )
        for tag in i18n.NAMES
        if tag != lang
    }
    return {
        "who": who,
        "key": None if who is None else who.key,
        "csrf": None if who is None else who.csrf,
        "role_name": None if who is None else role_name(who.key.role),
        "done": i18n.gettext(DONE[done]) if done in DONE else None,
        "path": request.url.path,
        "lang": lang,
        "switch": switch,
        "max_upload": runtime(request).settings.max_request_bytes,
    }


def render(
    request: Request,
    template: str,
    who: Viewer | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request, template, {**page_context(request, who), **context}, status_code=status
    )


def redirect(path: str, done: str | None = None) -> RedirectResponse:
    target = BASE + path + (f"?done={url_quote(done)}" if done else "")
    return RedirectResponse(target, status_code=303)


def set_session(response: Response, api_key: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        api_key,
        path=BASE,
        secure=True,
        httponly=True,
        samesite="strict",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=BASE, secure=True, httponly=True, samesite="strict")


def login_token() -> str:
    return secrets.token_urlsafe(24)
