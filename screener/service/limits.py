"""The request body cap, enforced while the body streams in (before any parsing)."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from screener.service.observe import request_id


class _TooLarge(HTTPException):
    """Raised from ``receive``: an HTTPException, so the body parser passes it through."""


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413: by Content-Length up front, or as soon
    as a chunked body passes the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.limit
            except ValueError:
                await _refuse(send, 400, "bad_request", "Content-Length is not a number")
                return
            if too_big:
                await _refuse(send, 413, "request_too_large", self._message())
                return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(413, self._message())
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await _refuse(send, 413, "request_too_large", self._message())

    def _message(self) -> str:
        return f"the request body is larger than {self.limit} bytes"


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    payload: dict[str, Any] = {
        "error": {"code": code, "message": message},
        "request_id": request_id.get(),
    }
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
