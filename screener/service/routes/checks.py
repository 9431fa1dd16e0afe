"""Pre-publication checks, their records and their evidence packs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from screener.core.errors import InputError
from screener.core.territory import of_check as territory_of
from screener.duties.desk import CheckOutcome
from screener.matching.pipeline import CheckItem
from screener.service.errors import ServiceError, status_of
from screener.service.routes.common import (
    AUTH_ERRORS,
    CheckerKey,
    Key,
    Limit,
    Offset,
    TheRuntime,
    errors,
    page,
    read_uploads,
)
from screener.service.schemas import CheckOut, CheckPage, CheckResponse, CheckResult, ErrorDetail

router = APIRouter(prefix="/v1", tags=["checks"])


@router.post(
    "/check",
    response_model=CheckResponse,
    responses=errors(*AUTH_ERRORS, 413, 415, 422),
    summary="Screen generated images before release",
)
async def check(
    key: CheckerKey,
    rt: TheRuntime,
    images: Annotated[list[UploadFile], File(description="one or more images")],
    prompt: Annotated[str | None, Form(max_length=2000)] = None,
    user_ref: Annotated[
        str | None, Form(max_length=200, description="your opaque user or session reference")
    ] = None,
    territory: Annotated[
        str | None,
        Form(
            max_length=2,
            description="ISO 3166-1 alpha-2 code of the release territory; default: the "
            "platform's (settings), else everywhere",
        ),
    ] = None,
) -> Any:
    """Each image gets the verdict (decision, fused score, matches with per-signal values,
    thresholds, versions), a `check_id`, and for review or block a risk prompt for the end
    user. One bad image gets an error in its place; if every image is bad, the request
    fails with the first image's error."""
    desk = rt.desk
    uploads = await run_in_threadpool(read_uploads, images, rt.settings.max_images)
    if not uploads:
        raise ServiceError(422, "invalid_request", "send at least one image")
    where = territory_of(territory, rt.settings.platform_territories.get(key.owner))
    analyses = await rt.screen(
        [CheckItem(u.data, prompt, key.owner, territory=where) for u in uploads]
    )
    results: list[CheckResult] = []
    failures: list[InputError] = []
    for position, (upload, analysis) in enumerate(zip(uploads, analyses, strict=True)):
        if isinstance(analysis, InputError):
            failures.append(analysis)
            results.append(
                CheckResult(
                    index=position,
                    filename=upload.name,
                    error=ErrorDetail(code=analysis.code, message=str(analysis)),
                )
            )
            continue
        outcome: CheckOutcome = await run_in_threadpool(
            desk.record_check, key, upload, analysis, prompt, user_ref
        )
        rt.metrics.verdicts.labels(outcome.verdict.decision).inc()
        results.append(CheckResult(index=position, filename=upload.name, **outcome.to_dict()))
    if len(failures) == len(uploads):
        first = failures[0]
        status = status_of(first)
        raise ServiceError(status, first.code, f"{uploads[0].name}: {first}")
    return CheckResponse(results=results)


@router.get("/checks", response_model=CheckPage, responses=errors(*AUTH_ERRORS, 422))
def list_checks(
    key: Key,
    rt: TheRuntime,
    offset: Offset = 0,
    limit: Limit = 50,
    decision: Annotated[str | None, Query(pattern="^(allow|review|block)$")] = None,
    rescreened: bool | None = None,
    takedown: Annotated[
        bool | None,
        Query(
            description="true: only released outputs a later notice matched, to take down "
            "(`action` take_down); false: all others"
        ),
    ] = None,
) -> Any:
    """A platform's own checks; a rights holder's matches; every check for operators.
    `rescreened=true` lists released outputs a notice has since found to match;
    `takedown=true` the outputs to take down now. Each check's `action` says what to do
    with the output."""
    found = rt.desk.list_checks(
        key,
        offset=offset,
        limit=limit,
        decision=decision,
        rescreened=rescreened,
        takedown=takedown,
    )
    return page(CheckPage, CheckOut.of, found, offset, limit)


@router.get("/checks/{check_id}", response_model=CheckOut, responses=errors(*AUTH_ERRORS, 404))
def get_check(key: Key, rt: TheRuntime, check_id: str) -> Any:
    return CheckOut.of(rt.desk.get_check(key, check_id))


@router.get(
    "/checks/{check_id}/evidence",
    response_model=dict[str, Any],
    responses=errors(*AUTH_ERRORS, 404),
)
def evidence(key: Key, rt: TheRuntime, check_id: str) -> Any:
    """Input sha256, verdict, matches, thresholds, versions, timestamps, and the check's
    audit record with its position in the hash chain and the chain's current head."""
    return rt.desk.evidence(key, check_id)


@router.get(
    "/checks/{check_id}/evidence.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the evidence picture"},
        **errors(*AUTH_ERRORS, 404),
    },
)
async def evidence_picture(
    key: Key,
    rt: TheRuntime,
    check_id: str,
    work_id: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The check's image with the matched region outlined, the matched reference beside
    it and lines joining the keypoints that verified the match (PNG). For checks that were
    reviewed or blocked (allowed outputs are not kept); `work_id` picks another matched
    work than the top one."""
    picture = await run_in_threadpool(rt.desk.evidence_picture, key, check_id, work_id)
    return Response(
        picture.png,
        media_type="image/png",
        headers={"Cache-Control": "private, max-age=300"},
    )
