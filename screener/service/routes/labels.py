"""AI-generated content labels (implicit metadata, optional visible banner)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile

from screener.core import decode
from screener.core.errors import ConfigurationError, LabelError
from screener.labels import credentials
from screener.labels.gb45438 import Label
from screener.service.routes.common import (
    AUTH_ERRORS,
    FormBool,
    Key,
    TheRuntime,
    errors,
    read_uploads,
)
from screener.service.runtime import Runtime
from screener.service.schemas import LabelOut
from screener.store.keys import ApiKey

router = APIRouter(prefix="/v1/label", tags=["labels"])

_MEDIA = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@router.post(
    "",
    response_class=Response,
    responses={
        200: {"content": {m: {} for m in _MEDIA.values()}, "description": "the labelled image"},
        **errors(*AUTH_ERRORS, 404, 413, 415, 422),
    },
)
def label(
    key: Key,
    rt: TheRuntime,
    image: Annotated[UploadFile, File()],
    provider: Annotated[str, Form(min_length=1, max_length=200, description="name or code")],
    content_id: Annotated[str, Form(min_length=1, max_length=200)],
    visible: Annotated[FormBool, Form(description="also draw a visible label")] = False,
    visible_text: Annotated[str | None, Form(max_length=100)] = None,
    c2pa: Annotated[
        FormBool, Form(description="also embed a signed C2PA manifest (signed last)")
    ] = False,
    check_id: Annotated[
        str | None,
        Form(max_length=40, description="the check of these bytes, named in the C2PA manifest"),
    ] = None,
) -> Response:
    """The image with an implicit label in its metadata (PNG text chunk and XMP; JPEG and
    WebP XMP and EXIF), and a visible label if asked. With `c2pa`, also C2PA content
    credentials: a `c2pa.created` action (digital source type trainedAlgorithmicMedia),
    the provider, and `org.screener.check` (check id, decision, policy and index
    versions), signed with the operator's certificate (`SCREENER_C2PA_CERT`/`_KEY`)."""
    upload = read_uploads([image], 1, "images")[0]
    done = rt.desk.label(
        key,
        upload.data,
        Label(provider=provider, content_id=content_id),
        visible=visible,
        visible_text=visible_text,
    )
    data = done.data
    if c2pa:
        data = credentials.sign(
            data,
            done.media_type,
            _claim(key, rt, provider, content_id, check_id, upload.data),
            _signing(rt),
        )
    rt.desk.record_label(
        key,
        upload.data,
        data,
        Label(provider=provider, content_id=content_id),
        visible=visible or visible_text is not None,
        c2pa=c2pa,
        check_id=check_id if c2pa else None,
    )
    return Response(data, media_type=done.media_type, headers={"X-Label-Format": done.format})


def _signing(rt: Runtime) -> credentials.Signing:
    settings = rt.settings
    if settings.c2pa_cert is None or settings.c2pa_key is None:
        raise LabelError(
            "C2PA signing is not configured on this service (SCREENER_C2PA_CERT and "
            "SCREENER_C2PA_KEY name the operator's PEM certificate chain and key)"
        )
    return credentials.Signing.load(settings.c2pa_cert, settings.c2pa_key, settings.c2pa_alg)


def _claim(
    key: ApiKey, rt: Runtime, provider: str, content_id: str, check_id: str | None, image: bytes
) -> credentials.Claim:
    if check_id is None:
        return credentials.Claim(provider, content_id)
    record = rt.desk.get_check(key, check_id)  # the caller's own check (else 404)
    # The operator's certificate vouches for the check: it must be this image's, not an
    # allowed check of another picture.
    if record.verdict.get("input", {}).get("sha256") != hashlib.sha256(image).hexdigest():
        raise LabelError(f"check {check_id} screened another image than the one to label")
    return credentials.Claim(
        provider,
        content_id,
        check_id=record.id,
        decision=record.decision,
        policy_version=record.verdict.get("policy_version"),
        index_version=record.verdict.get("index_version"),
    )


@router.post("/verify", response_model=LabelOut, responses=errors(*AUTH_ERRORS, 413, 415, 422))
def verify(key: Key, rt: TheRuntime, image: Annotated[UploadFile, File()]) -> Any:
    """Read an implicit label back (`labelled: false` if there is none), and the C2PA
    credentials beside it: present or not, validation state (`Trusted` against the
    operator's anchors, `Valid`, `Invalid`), failures, assertions. Verified offline."""
    upload = read_uploads([image], 1, "images")[0]
    found = rt.desk.read_label(key, upload.data)  # validates the image first
    media = _MEDIA.get(decode.sniff_format(upload.data)[0] or "")
    anchors = rt.settings.c2pa_trust_anchors
    report = (
        None  # a format this service neither labels nor reads credentials of
        if media is None
        else credentials.verify(upload.data, media, _read(anchors) if anchors else None)
    )
    return LabelOut(
        labelled=found is not None, label=None if found is None else asdict(found), c2pa=report
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read C2PA trust anchors {path}: {exc.strerror}") from None
