"""Background jobs (a notice's re-screening, the ageing-out of check fingerprints): their
state and progress, to the rights holder whose notice started one and to operators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from screener.service.routes.common import AUTH_ERRORS, Key, TheRuntime, errors
from screener.service.schemas import JobOut

router = APIRouter(prefix="/v1/jobs", tags=["notices"])


@router.get("/{job_id}", response_model=JobOut, responses=errors(*AUTH_ERRORS, 404))
def get_job(key: Key, rt: TheRuntime, job_id: str) -> Any:
    """A job's state (queued, running, done, failed), progress and, once done, its result
    (a notice's: the checks it re-screened and those that now match)."""
    return JobOut.of(rt.desk.get_job(key, job_id))
