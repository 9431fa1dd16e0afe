"""Liveness, readiness and metrics (no key needed: keep them off the public network)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from screener.service.routes.common import TheRuntime
from screener.service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Any:
    """The process is alive."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(rt: TheRuntime) -> Any:
    """Models and indexes are loaded: send traffic."""
    if rt.ready:
        screener = rt.desk.screener
        return Health(
            status="ready",
            detail={
                "signals": screener.signals.names,
                "signals_missing": screener.signals.missing,
                "policy": screener.policy.version,
                "index": screener.index_version(),
                "batching": rt.settings.batching,
            },
        )
    state = "failed" if rt.failure else "starting"
    detail = {"reason": rt.failure} if rt.failure else {}
    return JSONResponse(Health(status=state, detail=detail).model_dump(), status_code=503)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(rt: TheRuntime) -> Response:
    """Prometheus text format."""
    await run_in_threadpool(rt.refresh_gauges)
    return Response(generate_latest(rt.metrics.registry), media_type=CONTENT_TYPE_LATEST)
