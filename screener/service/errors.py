"""Every error the service returns, mapped from the screener's error types in one place.

The body is always ``{"error": {"code": ..., "message": ...}}`` with the request id, and
nothing internal (no traceback, no SQL) reaches the caller.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from screener.core import errors as e

log = logging.getLogger("service")

# Most specific first: the first class that matches decides the status.
STATUS: tuple[tuple[type[e.ScreenerError], int], ...] = (
    (e.AuthError, 401),
    (e.Forbidden, 403),
    (e.NotFound, 404),
    (e.Conflict, 409),
    (e.ImageTooLarge, 413),
    (e.UnsupportedFormat, 415),
    (e.InputError, 422),
    (e.ConfigurationError, 503),
    (e.IndexInconsistent, 503),
)


class ServiceError(Exception):
    """An error of the HTTP layer itself (limits, content types, start-up)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def body(request: Request, code: str, message: str, **extra: object) -> dict[str, object]:
    error: dict[str, object] = {"code": code, "message": message, **extra}
    return {"error": error, "request_id": getattr(request.state, "request_id", None)}


def status_of(exc: e.ScreenerError) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 500)


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route of the app answers at this path (a 405's ``Allow``): the
    router names only the first route whose path matched. Asks each route whether it
    would take the request with each method."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]
    return ", ".join(allowed)


BAD_BODY = "the body cannot be parsed (malformed multipart, bad Content-Length)"


def document_body_errors(app: FastAPI) -> None:
    """Add the 400 every operation with a body may answer (its parser's, before any route
    code runs) to the OpenAPI schema, once, where the schema is built."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    if "requestBody" in operation:
                        operation["responses"].setdefault(
                            "400",
                            {
                                "description": BAD_BODY,
                                "content": {
                                    "application/json": {
                                        "schema": {"$ref": "#/components/schemas/ErrorBody"}
                                    }
                                },
                            },
                        )
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    @app.exception_handler(e.ScreenerError)
    async def screener_error(request: Request, exc: e.ScreenerError) -> JSONResponse:
        status = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if status >= 500:
            log.error("%s: %s", exc.code, exc)
        return JSONResponse(body(request, exc.code, str(exc)), status, headers=headers)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(body(request, exc.code, exc.message), exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "where": ".".join(str(part) for part in err.get("loc", ())),
                "problem": str(err.get("msg", "")),
            }
            for err in exc.errors()
        ]
        message = "; ".join(f"{p['where']}: {p['problem']}" for p in problems) or "invalid request"
        return JSONResponse(body(request, "invalid_request", message, details=problems), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        code = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "request_too_large",
        }.get(exc.status_code, "http_error")
        return JSONResponse(body(request, code, str(exc.detail)), exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(
            body(request, "internal_error", "internal error; the request id names it in the log"),
            500,
        )
