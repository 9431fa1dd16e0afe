"""A stored verdict (the dict a check keeps) read back into a :class:`Verdict`, for what
is derived from one later: the risk prompt shown again on a check's page."""

from __future__ import annotations

from typing import Any

from screener.core.verdict import Match, RegionPair, Verdict


def match_from_dict(data: dict[str, Any]) -> Match:
    return Match(
        work_id=str(data["work_id"]),
        title=str(data.get("title") or data["work_id"]),
        owner=str(data.get("owner") or ""),
        fused_score=float(data.get("fused_score", 0.0)),
        decision=str(data.get("decision", "")),
        thresholds=dict(data.get("thresholds") or {}),
        signals=dict(data.get("signals") or {}),
        contributions=dict(data.get("contributions") or {}),
        regions={k: RegionPair(**v) for k, v in (data.get("regions") or {}).items()},
        licensed=bool(data.get("licensed", False)),
        local=data.get("local"),
        outside_territory=bool(data.get("outside_territory", False)),
        log_odds=float(data.get("log_odds", 0.0)),
        character=data.get("character"),
    )


def verdict_from_dict(data: dict[str, Any]) -> Verdict:
    return Verdict(
        decision=str(data["decision"]),
        fused_score=float(data.get("fused_score", 0.0)),
        top_work_id=data.get("top_work_id"),
        matches=tuple(match_from_dict(m) for m in data.get("matches", [])),
        near_misses=tuple(match_from_dict(m) for m in data.get("near_misses", [])),
        thresholds=dict(data.get("thresholds") or {}),
        policy_version=str(data.get("policy_version", "")),
        index_version=str(data.get("index_version", "")),
        models=dict(data.get("models") or {}),
        signals_used=tuple(data.get("signals_used", ())),
        signals_missing=dict(data.get("signals_missing") or {}),
        input=dict(data.get("input") or {}),
        prompt=data.get("prompt"),
        timings_ms=dict(data.get("timings_ms") or {}),
        licensed=tuple(match_from_dict(m) for m in data.get("licensed", [])),
        territory=data.get("territory"),
        outside_territory=tuple(match_from_dict(m) for m in data.get("outside_territory", [])),
        log_odds=float(data.get("log_odds", 0.0)),
    )
