"""Operators' and admins' routes: the audit log, the policy, API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from screener.service.routes.common import AUTH_ERRORS, Key, TheRuntime, errors
from screener.service.schemas import (
    AuditRecordOut,
    DisplayName,
    KeyOut,
    NewKey,
    OwnerOut,
    VerifyOut,
)
from screener.store.audit import format_at

router = APIRouter(prefix="/v1", tags=["operations"])


@router.get("/audit", response_model=list[AuditRecordOut], responses=errors(*AUTH_ERRORS, 422))
def audit_records(
    key: Key,
    rt: TheRuntime,
    after: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Records with seq > `after`, oldest first (page on with the last seq)."""
    return [
        AuditRecordOut(
            seq=r.seq,
            at=format_at(r.at),
            actor=r.actor,
            action=r.action,
            subject=r.subject,
            payload=r.payload,
            prev_hash=r.prev_hash,
            hash=r.hash,
        )
        for r in rt.desk.audit_records(key, after, limit)
    ]


@router.get("/audit/verify", response_model=VerifyOut, responses=errors(*AUTH_ERRORS))
def audit_verify(key: Key, rt: TheRuntime) -> Any:
    """Walk the whole hash chain; `ok: false` names the first broken record."""
    report = rt.desk.audit_verify(key)
    return VerifyOut(
        ok=report.ok,
        count=report.count,
        broken_at=report.broken_at,
        reason=report.reason,
        head_seq=report.head_seq,
        head_hash=report.head_hash,
    )


@router.get("/policy", response_model=dict[str, Any], responses=errors(*AUTH_ERRORS))
def policy(key: Key, rt: TheRuntime) -> Any:
    """The policy in force: calibrations, weights, bands, version."""
    return rt.desk.policy(key)


@router.post("/keys", status_code=201, response_model=KeyOut, responses=errors(*AUTH_ERRORS, 422))
def create_key(key: Key, rt: TheRuntime, body: NewKey) -> Any:
    """Admins: a new key; the full key is in this response only."""
    made, secret = rt.desk.create_key(key, body.role, body.owner, body.description)
    return KeyOut.of(made, secret)


@router.get("/keys", response_model=list[KeyOut], responses=errors(*AUTH_ERRORS))
def list_keys(
    key: Key, rt: TheRuntime, owner: Annotated[str | None, Query(max_length=200)] = None
) -> Any:
    return [KeyOut.of(k) for k in rt.desk.list_keys(key, owner)]


@router.delete("/keys/{key_id}", response_model=KeyOut, responses=errors(*AUTH_ERRORS, 404))
def revoke_key(key: Key, rt: TheRuntime, key_id: str) -> Any:
    return KeyOut.of(rt.desk.revoke_key(key, key_id))


@router.get("/owners/{owner}", response_model=OwnerOut, responses=errors(*AUTH_ERRORS))
def get_owner(key: Key, rt: TheRuntime, owner: str) -> Any:
    """An owner's display name (its account name where none is set): operators and admins
    for any owner, every other key for its own."""
    return OwnerOut(owner=owner, display_name=rt.desk.display_name(key, owner))


@router.put("/owners/{owner}", response_model=OwnerOut, responses=errors(*AUTH_ERRORS, 422))
def set_owner(key: Key, rt: TheRuntime, owner: str, body: DisplayName) -> Any:
    """Set the name risk prompts give the owner (empty: its account name again):
    operators and admins for any owner, every other key for its own."""
    shown = rt.desk.set_display_name(key, owner, body.display_name)
    return OwnerOut(owner=owner, display_name=shown)
