"""AI-generated content labels (implicit metadata, optional visible banner)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile

from screener.labels import Label
from service.routes.common import AUTH_ERRORS, Key, TheRuntime, errors, read_uploads
from service.schemas import LabelOut

router = APIRouter(prefix="/v1/label", tags=["labels"])

_MEDIA = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@router.post(
    "",
    response_class=Response,
    responses={
        200: {"content": {m: {} for m in _MEDIA.values()}, "description": "the labelled image"},
        **errors(*AUTH_ERRORS, 413, 415, 422),
    },
)
def label(
    key: Key,
    rt: TheRuntime,
    image: Annotated[UploadFile, File()],
    provider: Annotated[str, Form(min_length=1, max_length=200, description="name or code")],
    content_id: Annotated[str, Form(min_length=1, max_length=200)],
    visible: Annotated[bool, Form(description="also draw a visible label")] = False,
    visible_text: Annotated[str | None, Form(max_length=100)] = None,
) -> Response:
    """The image with an implicit label in its metadata (PNG text chunk and XMP; JPEG and
    WebP XMP and EXIF), and a visible label if asked."""
    upload = read_uploads([image], 1, "images")[0]
    done = rt.desk.label(
        key,
        upload.data,
        Label(provider=provider, content_id=content_id),
        visible=visible,
        visible_text=visible_text,
    )
    return Response(done.data, media_type=done.media_type, headers={"X-Label-Format": done.format})


@router.post("/verify", response_model=LabelOut, responses=errors(*AUTH_ERRORS, 413, 415, 422))
def verify(key: Key, rt: TheRuntime, image: Annotated[UploadFile, File()]) -> Any:
    """Read an implicit label back (`labelled: false` if there is none)."""
    upload = read_uploads([image], 1, "images")[0]
    found = rt.desk.read_label(key, upload.data)
    return LabelOut(labelled=found is not None, label=None if found is None else asdict(found))
