"""Who is calling: the API key from ``Authorization: Bearer`` or ``X-API-Key``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from screener.core.errors import AuthError
from screener.duties.desk import Desk
from screener.service.runtime import Runtime
from screener.store.keys import ApiKey

_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")
_bearer = HTTPBearer(auto_error=False, description="an API key as a bearer token")


def runtime(request: Request) -> Runtime:
    found: Runtime = request.app.state.runtime
    return found


def desk(request: Request) -> Desk:
    return runtime(request).desk


def current_key(
    request: Request,
    header: Annotated[str | None, Security(_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    the_desk: Annotated[Desk, Depends(desk)],
) -> ApiKey:
    value = header or (bearer.credentials if bearer is not None else None)
    if not value:
        raise AuthError("an API key is needed: send 'Authorization: Bearer <key>' or 'X-API-Key'")
    key = the_desk.authenticate(value)
    request.state.key_id = key.id
    return key
