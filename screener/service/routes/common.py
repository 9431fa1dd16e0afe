"""What several routers share: the key and desk dependencies, uploads, error responses,
listing pages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, UploadFile
from pydantic import BaseModel, BeforeValidator

from screener.duties.desk import Desk, Upload
from screener.service.auth import current_key, desk, runtime
from screener.service.errors import ServiceError
from screener.service.runtime import Runtime
from screener.service.schemas import ErrorBody
from screener.store.keys import ApiKey

Key = Annotated[ApiKey, Depends(current_key)]
TheDesk = Annotated[Desk, Depends(desk)]
TheRuntime = Annotated[Runtime, Depends(runtime)]


def _checker(key: Annotated[ApiKey, Depends(current_key)], the_desk: TheDesk) -> ApiKey:
    the_desk.authorise_check(key)
    return key


def _registrar(key: Annotated[ApiKey, Depends(current_key)], the_desk: TheDesk) -> ApiKey:
    the_desk.authorise_works(key)
    return key


# Keys whose role is checked as a dependency, before the body is validated or its images
# counted: a key that may not upload learns nothing about its upload (422, 413) first.
CheckerKey = Annotated[ApiKey, Depends(_checker)]
RegistrarKey = Annotated[ApiKey, Depends(_registrar)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]

_ERRORS: dict[int, str] = {
    401: "no key, or a wrong or revoked one",
    403: "the key's role may not do this",
    404: "no such object (or not one this key may see)",
    409: "conflicts with the current state",
    413: "too large: request body, image bytes or pixels, or too many images",
    415: "not a supported image format",
    422: "invalid request or image",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorBody, "description": _ERRORS[s]} for s in statuses}


AUTH_ERRORS = (401, 403)

PageT = TypeVar("PageT", bound=BaseModel)
RowT = TypeVar("RowT")


def page(
    model: type[PageT],
    out: Callable[[RowT], BaseModel],
    found: tuple[Sequence[RowT], int],
    offset: int,
    limit: int,
) -> PageT:
    """One window of a listing (the rows and the total a desk found) as its page model."""
    rows, total = found
    return model(items=[out(r) for r in rows], total=total, offset=offset, limit=limit)


def read_uploads(files: list[UploadFile], limit: int, what: str = "images") -> list[Upload]:
    if len(files) > limit:
        raise ServiceError(
            413, "too_many_images", f"{len(files)} {what} sent; at most {limit} per request"
        )
    uploads = []
    for position, item in enumerate(files):
        data = item.file.read()
        uploads.append(Upload(data, (item.filename or f"image-{position + 1}")[:200]))
    return uploads


def _form_bool(value: object) -> object:
    """A multipart field the schema calls a boolean takes the two words it is written as,
    ``true`` or ``false``: the lax spellings pydantic would also read ("0", "yes", "on")
    are not in the schema, and a client that sends them gets a 422 saying so."""
    if isinstance(value, str):
        if value not in ("true", "false"):
            raise ValueError(f"must be true or false, not {value[:20]!r}")
        return value == "true"
    return value


# A boolean form field, read as the schema documents it.
FormBool = Annotated[bool, BeforeValidator(_form_bool)]
