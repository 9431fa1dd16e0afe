"""What each role sees of a check: one rule per role, applied alike to the check record
(``GET /v1/checks/{id}``, lists, the console) and to its evidence pack with the audit record.

A rights holder sees a check only as far as it concerns its own works: not the platform,
its user reference or the prompt, and no other owner's work. Platforms see their own
checks whole, operators and admins every check whole.

Nothing stored changes: the audit chain hashes the full payload and stays verifiable by
those who may read it. What is returned is cut, and every cut is named (``redacted``), so a
reader knows the payload shown is not the one hashed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from screener.store.check_records import CheckRecord, Notice
from screener.store.keys import ApiKey, Role

MATCH_LISTS = ("matches", "near_misses", "licensed", "outside_territory")


@dataclass(frozen=True)
class Rule:
    """What a role may not see of a check it may read."""

    # Fields blanked in the record, its verdict and the audit payload.
    hidden: tuple[str, ...] = ()
    # Works of other owners are left out of matches, the payload and review/rescreen notes.
    own_works_only: bool = False


RULES: dict[Role, Rule] = {
    Role.RIGHTS_HOLDER: Rule(hidden=("platform", "user_ref", "prompt"), own_works_only=True),
}
WHOLE = Rule()


def rule_for(key: ApiKey) -> Rule:
    return RULES.get(key.role, WHOLE)


@dataclass(frozen=True)
class Shown:
    """A check as one key may see it."""

    record: CheckRecord
    payload: dict[str, Any] | None
    redacted: tuple[str, ...]


def mentioned_works(record: CheckRecord, payload: dict[str, Any] | None = None) -> set[str]:
    """Every work id the record or payload names outside the verdict's match lists (whose
    entries carry their owner): what the caller must look up to apply :func:`redact`."""
    ids = {record.top_work_id}
    ids.update((part or {}).get("work_id") for part in (record.review, record.rescreen))
    if payload is not None:
        ids.add(payload.get("top_work_id"))
        ids.update(payload.get("matched_works") or [])
    return {i for i in ids if isinstance(i, str)}


def redact(
    key: ApiKey,
    record: CheckRecord,
    payload: dict[str, Any] | None = None,
    owned: Collection[str] = (),
) -> Shown:
    """``record`` and its audit ``payload`` as ``key`` may see them. ``owned``: the work ids
    among :func:`mentioned_works` that belong to ``key``'s owner."""
    rule = rule_for(key)
    cut: list[str] = []
    verdict = dict(record.verdict)
    own = set(owned)
    if rule.own_works_only:
        for part in MATCH_LISTS:
            own.update(m["work_id"] for m in verdict.get(part, []) if m.get("owner") == key.owner)
    mine: Callable[[Any], bool] = (lambda w: w in own) if rule.own_works_only else (lambda w: True)

    def keep(path: str, before: Any, after: Any) -> Any:
        if after != before:
            cut.append(path)
        return after

    fields: dict[str, Any] = {}
    for name in rule.hidden:
        if hasattr(record, name):
            blank = "" if name == "platform" else None
            fields[name] = keep(name, getattr(record, name), blank)
        if name in verdict:
            verdict[name] = keep(f"verdict.{name}", verdict[name], None)
    if rule.own_works_only:
        for part in MATCH_LISTS:
            listed = verdict.get(part, [])
            verdict[part] = keep(
                f"verdict.{part}", listed, [m for m in listed if mine(m["work_id"])]
            )
        top = record.top_work_id
        fields["top_work_id"] = keep("top_work_id", top, top if mine(top) else None)
        if "top_work_id" in verdict:
            top = verdict["top_work_id"]
            verdict["top_work_id"] = keep("verdict.top_work_id", top, top if mine(top) else None)
        for name in ("review", "rescreen"):
            part = getattr(record, name)
            shown = part if part is not None and mine(part.get("work_id")) else None
            fields[name] = keep(name, part, shown)
    shown_record = replace(record, verdict=verdict, **fields)

    shown_payload = None if payload is None else dict(payload)
    if shown_payload is not None:
        for name in rule.hidden:
            if name in shown_payload:
                shown_payload[name] = keep(f"chain.payload.{name}", shown_payload[name], None)
        if rule.own_works_only:
            listed = shown_payload.get("matched_works")
            if isinstance(listed, list):
                shown_payload["matched_works"] = keep(
                    "chain.payload.matched_works", listed, [w for w in listed if mine(w)]
                )
            if "top_work_id" in shown_payload:
                top = shown_payload["top_work_id"]
                shown_payload["top_work_id"] = keep(
                    "chain.payload.top_work_id", top, top if mine(top) else None
                )
    return Shown(shown_record, shown_payload, tuple(cut))


def found_by_image(item: Notice) -> set[str]:
    """The check ids a notice found by the images of outputs uploaded with it."""
    found: set[str] = set()
    for part in (*item.history, item.measures or {}):
        found |= found_in_measures(part)
    return found


def redact_notice(key: ApiKey, item: Notice, readable: Collection[str] = ()) -> Notice:
    """A notice as ``key`` may see it: the outputs its measures list, with the fields of a
    check the role may not see (a rights holder: the platform) left out, as
    ``GET /v1/checks/{id}`` leaves them out. A rights holder is named only those checks
    found by an uploaded output's image that it may open (``readable``: those matching its
    works); the rest are other platforms' released outputs it has no claim to."""
    rule = rule_for(key)
    if not rule.hidden:
        return item
    unseen = found_by_image(item) - set(readable) if rule.own_works_only else set()
    item = replace(
        item,
        check_ids=tuple(c for c in item.check_ids if c not in unseen),
        history=tuple(_cut_found(h, unseen) for h in item.history),
    )
    if item.measures is None:
        return item
    return replace(item, measures=redact_measures(key, dict(item.measures), readable))


def found_in_measures(measures: Mapping[str, Any]) -> set[str]:
    """The check ids a notice's measures (or its job's result) found by uploaded images."""
    found: set[str] = set()
    for ids in (measures.get("found_by_image") or {}).values():
        found.update(ids)
    return found


def redact_measures(
    key: ApiKey, measures: dict[str, Any], readable: Collection[str] = ()
) -> dict[str, Any]:
    """A notice's measures, or the result of the job that took them, as ``key`` may see
    them (see :func:`redact_notice`): checks found by image that ``key`` may not open are
    not named, and the affected checks lose the fields its role may not see."""
    rule = rule_for(key)
    if not rule.hidden:
        return measures
    unseen = found_in_measures(measures) - set(readable) if rule.own_works_only else set()
    measures = _cut_found(measures, unseen)
    named = measures.get("named_checks")
    if unseen and isinstance(named, dict):
        measures["named_checks"] = {c: v for c, v in named.items() if c not in unseen}
    affected = measures.get("affected")
    if isinstance(affected, list):
        measures["affected"] = [
            {k: v for k, v in a.items() if k not in rule.hidden} if isinstance(a, dict) else a
            for a in affected
        ]
    return measures


def _cut_found(part: dict[str, Any], unseen: set[str]) -> dict[str, Any]:
    found = part.get("found_by_image")
    if not unseen or not isinstance(found, dict):
        return dict(part)
    kept = {name: [c for c in ids if c not in unseen] for name, ids in found.items()}
    return {**part, "found_by_image": kept}
