"""Rights holders' notices, and the measures the service takes on each."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile

from screener.service.routes.common import (
    AUTH_ERRORS,
    Key,
    Limit,
    Offset,
    RegistrarKey,
    TheRuntime,
    errors,
    page,
    read_uploads,
)
from screener.service.schemas import NoticeOut, NoticePage, Reason

router = APIRouter(prefix="/v1/notices", tags=["notices"])


@router.post(
    "",
    status_code=201,
    response_model=NoticeOut,
    responses=errors(*AUTH_ERRORS, 404, 409, 413, 415, 422),
)
def file_notice(
    key: RegistrarKey,
    rt: TheRuntime,
    work_id: Annotated[str, Form(min_length=1, max_length=200)],
    images: Annotated[
        list[UploadFile] | None,
        File(description="reference images (needed when the work is not yet registered)"),
    ] = None,
    check_ids: Annotated[
        list[str] | None, Form(description="released outputs complained about")
    ] = None,
    outputs: Annotated[
        list[UploadFile] | None,
        File(
            description="images of released outputs complained about: the service finds "
            "their checks and names them (`measures.found_by_image`)"
        ),
    ] = None,
    title: Annotated[str | None, Form(max_length=500)] = None,
    description: Annotated[str, Form(max_length=2000)] = "",
) -> Any:
    """File a notice. The service records it (`received`) and answers at once with the job
    (`job`, `GET /v1/jobs/{job_id}`) that adds the images to the work's references and
    re-screens the outputs it allowed earlier that the check-fingerprint index finds near
    the work; when the job is done the notice is `measures_taken`, listing the affected
    check ids."""
    uploads = read_uploads(images or [], rt.settings.max_images)
    complained = read_uploads(outputs or [], rt.settings.max_images)
    return NoticeOut.of(
        rt.desk.file_notice(
            key,
            work_id,
            uploads=uploads,
            check_ids=check_ids or [],
            outputs=complained,
            title=title,
            description=description,
        )
    )


@router.get("", response_model=NoticePage, responses=errors(*AUTH_ERRORS, 422))
def list_notices(
    key: Key,
    rt: TheRuntime,
    offset: Offset = 0,
    limit: Limit = 50,
    status: Annotated[str | None, Query(pattern="^(received|measures_taken|rejected)$")] = None,
) -> Any:
    found = rt.desk.list_notices(key, offset=offset, limit=limit, status=status)
    return page(NoticePage, NoticeOut.of, found, offset, limit)


@router.get("/{notice_id}", response_model=NoticeOut, responses=errors(*AUTH_ERRORS, 404))
def get_notice(key: Key, rt: TheRuntime, notice_id: str) -> Any:
    return NoticeOut.of(rt.desk.get_notice(key, notice_id))


@router.post(
    "/{notice_id}/reject",
    response_model=NoticeOut,
    responses=errors(*AUTH_ERRORS, 404, 409, 422),
)
def reject_notice(key: Key, rt: TheRuntime, notice_id: str, body: Reason) -> Any:
    """Operators: reject with a reason; the references the notice added are removed."""
    return NoticeOut.of(rt.desk.reject_notice(key, notice_id, body.reason))
