"""Where a work is protected, where each licence holds and where its own thresholds apply
(ISO 3166-1 alpha-2 codes; an empty list means everywhere)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from screener.duties.territories import TerritoryRules
from screener.service.routes.common import AUTH_ERRORS, Key, TheRuntime, errors
from screener.service.schemas import WorkOut

router = APIRouter(prefix="/v1/works", tags=["works"])


class Territories(BaseModel):
    model_config = ConfigDict(extra="forbid")
    territories: list[str] = Field(
        max_length=249, description="ISO 3166-1 alpha-2 codes, e.g. ['CN']; []: everywhere"
    )


@router.put(
    "/{work_id}/territories", response_model=WorkOut, responses=errors(*AUTH_ERRORS, 404, 422)
)
def protect_in(key: Key, rt: TheRuntime, work_id: str, body: Territories) -> Any:
    """Where the work is protected (its owner or operators). A check released elsewhere
    reports a match against it without holding the output."""
    return WorkOut.of(TerritoryRules(rt.desk).protect_in(key, work_id, body.territories))


@router.put(
    "/{work_id}/licensees/{licensee}/territories",
    response_model=WorkOut,
    responses=errors(*AUTH_ERRORS, 404, 422),
)
def license_in(key: Key, rt: TheRuntime, work_id: str, licensee: str, body: Territories) -> Any:
    """Where one listed licensee's licence holds: elsewhere its outputs are held as
    anyone's."""
    rules = TerritoryRules(rt.desk)
    return WorkOut.of(rules.license_in(key, work_id, licensee, body.territories))


@router.put(
    "/{work_id}/thresholds/territories",
    response_model=WorkOut,
    responses=errors(*AUTH_ERRORS, 404, 422),
)
def thresholds_in(key: Key, rt: TheRuntime, work_id: str, body: Territories) -> Any:
    """Where the work's own thresholds apply (operators); elsewhere the policy's bands."""
    return WorkOut.of(TerritoryRules(rt.desk).thresholds_in(key, work_id, body.territories))
