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

from screener import errors as e
from service.console import appeals, holder, keys, operator, platform
from service.console.web import (
    BASE,
    CSRF_FIELD,
    HOME,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    CsrfRefused,
    SignInNeeded,
    TheViewer,
    clear_session,
    csrf_token,
    login_token,
    redirect,
    render,
    runtime,
    safe_next,
    set_session,
    templates,
)
from service.errors import ServiceError, status_of
from service.runtime import Runtime

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


def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "who": None,
            "key": None,
            "csrf": None,
            "done": None,
            "path": request.url.path,
            "status": status,
            "title": title,
            "message": message,
        },
        status_code=status,
    )


_TITLES = {
    401: "Sign in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    415: "Not an image we can read",
    422: "Cannot do that",
    503: "Not ready",
}


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(SignInNeeded)
    async def sign_in(request: Request, exc: SignInNeeded) -> Response:
        if request.method != "GET":
            return _error_page(request, 401, _TITLES[401], "Your session has ended: sign in again.")
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
            "Form refused",
            "This form did not carry this session's security token (CSRF), so nothing was "
            "done. Reload the page and send the form again.",
        )

    @app.exception_handler(e.ScreenerError)
    async def screener_error(request: Request, exc: e.ScreenerError) -> Response:
        status = status_of(exc)
        if status == 404:
            # Never the object's data, and the same page whether it exists or is another's.
            return _error_page(request, 404, _TITLES[404], "There is nothing here for you.")
        return _error_page(request, status, _TITLES.get(status, "Error"), str(exc))

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        return _error_page(request, exc.status, _TITLES.get(exc.status, "Error"), exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ())[1:]) or 'form'}: {err.get('msg', '')}"
            for err in exc.errors()
        )
        return _error_page(request, 422, _TITLES[422], problems or "The form was incomplete.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "There is nothing here for you." if exc.status_code == 404 else str(exc.detail)
        return _error_page(request, exc.status_code, _TITLES.get(exc.status_code, "Error"), message)


def create_console(rt: Runtime) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = rt
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _install_errors(app)

    @app.get("/", include_in_schema=False)
    def home(who: TheViewer) -> Response:
        return redirect(HOME[who.key.role])

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "", expired: bool = False) -> Response:
        token = login_token()
        message = "Your session ended: sign in again." if expired else None
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
                error="That key is not valid (wrong, or revoked). Check it and try again.",
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
