"""The web console at /console: server-rendered pages for operators, rights holders and
platforms, over the same desk (and so the same role rules and audit records) as the API.

Mounted as its own app so that its errors are pages, not JSON; every asset it serves
ships inside this package.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from screener.core import errors as e
from screener.service.console import appeals, holder, keys, operator, platform
from screener.service.console.i18n import N_, ConsoleLanguage
from screener.service.console.i18n import gettext as _
from screener.service.console.web import (
    BASE,
    CSRF_FIELD,
    HOME,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    CsrfRefused,
    SignInNeeded,
    TheViewer,
    Viewer,
    clear_session,
    csrf_token,
    login_token,
    page_context,
    redirect,
    render,
    runtime,
    safe_next,
    set_session,
    templates,
)
from screener.service.errors import ServiceError, status_of
from screener.service.runtime import Runtime

STATIC = Path(__file__).parent / "static"
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Every console response: no framing, no inline script, nothing from other hosts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _signed_in(request: Request) -> Viewer | None:
    """The session's viewer where there is a valid one, so that an error page keeps the
    navigation; None otherwise (the page then offers sign-in)."""
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        return None
    try:
        desk = runtime(request).desk
        return Viewer(desk.authenticate(value), desk, csrf_token(value))
    except Exception:  # not ready, revoked, unknown: an error page without navigation
        return None


def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            **page_context(request, _signed_in(request)),
            "done": None,
            "status": status,
            "title": title,
            "message": message,
        },
        status_code=status,
    )


_TITLES = {
    401: N_("Sign in needed"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    405: N_("Not allowed"),
    409: N_("Conflict"),
    413: N_("Too large"),
    415: N_("Not an image we can read"),
    422: N_("Cannot do that"),
    503: N_("Not ready"),
}
_NOTHING_HERE = N_("There is nothing here for you.")


def _title(status: int) -> str:
    return _(_TITLES.get(status, N_("Error")))


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(SignInNeeded)
    async def sign_in(request: Request, exc: SignInNeeded) -> Response:
        if request.method != "GET":
            return _error_page(
                request, 401, _title(401), _("Your session has ended: sign in again.")
            )
        response = RedirectResponse(
            f"{BASE}/login?next={exc.next_path}" + ("&expired=1" if exc.message else ""), 303
        )
        if exc.message:
            clear_session(response)
        return response

    @app.exception_handler(CsrfRefused)
    async def csrf(request: Request, exc: CsrfRefused) -> Response:
        return _error_page(
            request,
            403,
            _("Form refused"),
            _(
                "This form did not carry this session's security token (CSRF), so nothing was "
                "done. Reload the page and send the form again."
            ),
        )

    @app.exception_handler(e.ScreenerError)
    async def screener_error(request: Request, exc: e.ScreenerError) -> Response:
        status = status_of(exc)
        if status == 404:
            # Never the object's data, and the same page whether it exists or is another's.
            return _error_page(request, 404, _title(404), _(_NOTHING_HERE))
        return _error_page(request, status, _title(status), str(exc))

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        return _error_page(request, exc.status, _title(exc.status), exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ())[1:]) or 'form'}: {err.get('msg', '')}"
            for err in exc.errors()
        )
        return _error_page(request, 422, _title(422), problems or _("The form was incomplete."))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = _(_NOTHING_HERE) if exc.status_code == 404 else str(exc.detail)
        return _error_page(request, exc.status_code, _title(exc.status_code), message)


def create_console(rt: Runtime) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = rt
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ConsoleLanguage, cookie_path=BASE)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _install_errors(app)

    @app.get("/", include_in_schema=False)
    def home(who: TheViewer) -> Response:
        return redirect(HOME[who.key.role])

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "", expired: bool = False) -> Response:
        token = login_token()
        message = _("Your session ended: sign in again.") if expired else None
        response = render(request, "login.html", login_csrf=token, next=next, message=message)
        response.set_cookie(
            LOGIN_COOKIE, token, path=BASE, secure=True, httponly=True, samesite="strict"
        )
        return response

    @app.post("/login")
    def login(
        request: Request,
        api_key: Annotated[str, Form(max_length=200)] = "",
        login_csrf: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(login_csrf, expected):
            raise CsrfRefused
        try:
            key = runtime(request).desk.authenticate(api_key.strip())
        except e.AuthError:
            token = login_token()
            page = render(
                request,
                "login.html",
                status=401,
                login_csrf=token,
                next=next,
                error=_("That key is not valid (wrong, or revoked). Check it and try again."),
            )
            page.set_cookie(
                LOGIN_COOKIE, token, path=BASE, secure=True, httponly=True, samesite="strict"
            )
            return page
        response = RedirectResponse(safe_next(next) or BASE + HOME[key.role], 303)
        set_session(response, api_key.strip())
        response.delete_cookie(LOGIN_COOKIE, path=BASE)
        return response

    @app.post("/logout")
    def logout(request: Request, token: Annotated[str, Form(alias=CSRF_FIELD)] = "") -> Response:
        value = request.cookies.get(SESSION_COOKIE, "")
        if value and not hmac.compare_digest(token, csrf_token(value)):
            raise CsrfRefused
        response = redirect("/login", "signed_out")
        clear_session(response)
        return response

    for module in (operator, holder, platform, appeals, keys):
        app.include_router(module.router)
    return app


__all__ = ["create_console"]
