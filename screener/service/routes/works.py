"""The registry of protected works: rights holders manage their own, operators all."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, UploadFile

from screener.matching.pipeline import Registered
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
from screener.service.schemas import HeldOut, Licensees, Removed, Thresholds, WorkOut, WorkPage

router = APIRouter(prefix="/v1/works", tags=["works"])


@router.post(
    "",
    status_code=201,
    response_model=WorkOut,
    responses=errors(*AUTH_ERRORS, 409, 413, 415, 422),
)
def create_work(
    key: RegistrarKey,
    rt: TheRuntime,
    work_id: Annotated[str, Form(min_length=1, max_length=200)],
    images: Annotated[list[UploadFile], File(description="reference images")],
    title: Annotated[str | None, Form(max_length=500)] = None,
    aliases: Annotated[
        list[str] | None, Form(description="other names and keywords, for prompt screening")
    ] = None,
    owner: Annotated[
        str | None, Form(max_length=200, description="operators only: whose work it is")
    ] = None,
    related_terms: Annotated[
        list[str] | None,
        Form(
            description="descriptive terms for prompt screening (weaker than names: two of "
            "them, or one beside image evidence, match)"
        ),
    ] = None,
) -> Any:
    """Register a work with its reference images (all are checked before any is stored).

    An image with too little content to be a work (a flat colour, a few pixels, a
    gradient) is refused with 422 naming the rule, the measured value and the threshold;
    one that looks like an ordinary picture of the background bank is stored but held for
    an operator (``references_held``, with why) and not screened against until approved.

    A taken work id gets one 409 whoever's work holds it."""
    uploads = read_uploads(images, rt.settings.max_images)
    done = rt.desk.create_work(
        key,
        work_id,
        uploads,
        title=title,
        aliases=aliases or [],
        owner=owner,
        related_terms=related_terms or [],
    )
    return _registered(done)


def _registered(done: Registered) -> WorkOut:
    return WorkOut.of(
        done.work,
        references_added=list(done.added_references),
        references_already_registered=done.skipped,
        references_held=[HeldOut.of(h) for h in done.held],
    )


@router.get("", response_model=WorkPage, responses=errors(*AUTH_ERRORS, 422))
def list_works(key: Key, rt: TheRuntime, offset: Offset = 0, limit: Limit = 50) -> Any:
    return page(WorkPage, WorkOut.of, rt.desk.list_works(key, offset, limit), offset, limit)


@router.get("/{work_id}", response_model=WorkOut, responses=errors(*AUTH_ERRORS, 404))
def get_work(key: Key, rt: TheRuntime, work_id: str) -> Any:
    view = rt.desk.get_work(key, work_id)
    return WorkOut.of(
        view.work,
        list(view.references),
        view.origins,
        references_held=[HeldOut.of(h) for h in view.held],
    )


@router.delete("/{work_id}", response_model=Removed, responses=errors(*AUTH_ERRORS, 404))
def delete_work(key: Key, rt: TheRuntime, work_id: str) -> Any:
    return Removed(fingerprints_removed=rt.desk.delete_work(key, work_id))


@router.post(
    "/{work_id}/references",
    response_model=WorkOut,
    responses=errors(*AUTH_ERRORS, 404, 413, 415, 422),
)
def add_references(
    key: RegistrarKey,
    rt: TheRuntime,
    work_id: str,
    images: Annotated[list[UploadFile], File(description="more reference images")],
) -> Any:
    done = rt.desk.add_references(key, work_id, read_uploads(images, rt.settings.max_images))
    return _registered(done)


@router.delete(
    "/{work_id}/references/{reference_id}",
    response_model=Removed,
    responses=errors(*AUTH_ERRORS, 404),
)
def remove_reference(
    key: Key, rt: TheRuntime, work_id: str, reference_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> Any:
    return Removed(fingerprints_removed=rt.desk.remove_reference(key, work_id, reference_id))


@router.put(
    "/{work_id}/licensees", response_model=WorkOut, responses=errors(*AUTH_ERRORS, 404, 422)
)
def set_licensees(key: Key, rt: TheRuntime, work_id: str, body: Licensees) -> Any:
    """Platform owners licensed to publish the work: their matches are reported, not
    blocked. Replaces the list."""
    return WorkOut.of(rt.desk.set_licensees(key, work_id, body.licensees))


@router.put(
    "/{work_id}/thresholds", response_model=WorkOut, responses=errors(*AUTH_ERRORS, 404, 422)
)
def set_thresholds(key: Key, rt: TheRuntime, work_id: str, body: Thresholds) -> Any:
    """The work's own review/block bands on the fused score (operators)."""
    given = {k: v for k, v in body.model_dump().items() if v is not None}
    return WorkOut.of(rt.desk.set_thresholds(key, work_id, given or None))


@router.delete("/{work_id}/thresholds", response_model=WorkOut, responses=errors(*AUTH_ERRORS, 404))
def clear_thresholds(key: Key, rt: TheRuntime, work_id: str) -> Any:
    return WorkOut.of(rt.desk.set_thresholds(key, work_id, None))
