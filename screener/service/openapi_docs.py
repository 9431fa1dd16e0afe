"""What the OpenAPI schema says beyond the routes' own declarations: who may call each
operation, an example of what it answers (and of its JSON body), and image uploads as
binary files.

One table for all operations, so a reader (and tests/service/test_openapi_docs.py) sees
at a glance that none is missing: an operation added without an entry fails that test.
The examples are checked there against the operations' response models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

OPERATOR = "operators and admins"
EVERYONE = "any valid key (platform, rights holder, operator, admin)"
OWNERS = "rights holders (their own works) and operators and admins (any work)"

_AT = "2025-03-01T08:30:00+00:00"
_VERDICT: dict[str, Any] = {
    "decision": "block",
    "fused_score": 0.9931,
    "thresholds": {"review": 0.55, "block": 0.85},
    "matches": [
        {
            "work_id": "ultraman-1966",
            "title": "奥特曼",
            "signals": {"sscd_cosine": 0.91, "pdq_distance": 38},
            "fused_score": 0.9931,
            "decision": "block",
        }
    ],
    "versions": {"policy": "2025-02", "index": "idx-41"},
}
_RISK: dict[str, Any] = {
    "zh": "该图片与受保护作品《奥特曼》高度相似，已被拦截。",
    "en": "This image closely resembles the protected work Ultraman and was blocked.",
}
CHECK: dict[str, Any] = {
    "check_id": "chk_01J9Z6Q4ZK",
    "created_at": _AT,
    "platform": "genco",
    "user_ref": "session-8812",
    "decision": "block",
    "fused_score": 0.9931,
    "top_work_id": "ultraman-1966",
    "verdict": _VERDICT,
    "audit_seq": 1042,
    "review_status": None,
    "review": None,
    "rescreen": None,
    "action": "do_not_publish",
}
WORK: dict[str, Any] = {
    "work_id": "ultraman-1966",
    "title": "奥特曼",
    "owner": "tsuburaya",
    "aliases": ["Ultraman", "ウルトラマン"],
    "related_terms": ["光之巨人", "M78星云"],
    "thresholds": None,
    "licensees": [],
    "reference_count": 2,
    "created_at": _AT,
    "territories": [],
    "licensee_territories": {},
    "threshold_territories": [],
}
HELD: dict[str, Any] = {
    "held_id": 7,
    "work_id": "ultraman-1966",
    "owner": "tsuburaya",
    "source_name": "city-night.jpg",
    "format": "JPEG",
    "width": 1024,
    "height": 768,
    "findings": [
        {
            "rule": "background_bank",
            "measure": "sscd_cosine",
            "value": 0.83,
            "threshold": 0.6,
            "action": "hold",
            "reason": "looks like an ordinary picture",
        }
    ],
    "created_at": _AT,
}
NOTICE: dict[str, Any] = {
    "notice_id": "ntc_01J9Z7B2",
    "created_at": _AT,
    "updated_at": _AT,
    "owner": "tsuburaya",
    "work_id": "ultraman-1966",
    "new_work": False,
    "description": "Copies of our hero released on genco",
    "check_ids": ["chk_01J9Z6Q4ZK"],
    "status": "measures_taken",
    "history": [{"status": "received", "at": _AT, "by": "key_3"}],
    "measures": {"references_added": [12], "rescreened_checks": 38, "affected_check_ids": []},
    "reason": None,
}
JOB: dict[str, Any] = {
    "job_id": "job_01J9Z7C4",
    "kind": "notice",
    "notice_id": "ntc_01J9Z7B2",
    "state": "done",
    "progress": {"done": 38, "total": 38},
    "created_at": _AT,
    "started_at": _AT,
    "finished_at": _AT,
    "error": None,
    "result": {
        "references_added": [12],
        "candidate_checks": 38,
        "rescreened_checks": 38,
        "affected_check_ids": [],
        "affected": [],
    },
}
NOTICE["job"] = JOB
APPEAL: dict[str, Any] = {
    "appeal_id": "apl_01J9Z8",
    "check_id": "chk_01J9Z6Q4ZK",
    "platform": "genco",
    "created_at": _AT,
    "statement": "这是用户原创的角色，与奥特曼无关。",
    "contact_ref": "ticket-553",
    "status": "open",
    "respond_by": "2025-03-04T08:30:00+00:00",
    "decide_by": "2025-03-08T08:30:00+00:00",
    "responded_at": None,
    "works": ["ultraman-1966"],
    "responses": [],
    "decision": None,
    "history": [{"status": "open", "at": _AT}],
    "response_overdue": False,
    "decision_overdue": False,
    "overdue": False,
    "released": False,
}
KEY: dict[str, Any] = {
    "key_id": "key_9",
    "owner": "genco",
    "role": "platform",
    "created_at": _AT,
    "revoked_at": None,
    "description": "genco production",
    "key": None,
}
AUDIT: dict[str, Any] = {
    "seq": 1042,
    "at": _AT,
    "actor": "key_2",
    "action": "check",
    "subject": "chk_01J9Z6Q4ZK",
    "payload": {"decision": "block"},
    "prev_hash": "9f2c…",
    "hash": "a71e…",
}
LABEL: dict[str, Any] = {
    "labelled": True,
    "label": {"provider": "genco", "content_id": "img-77"},
    "c2pa": None,
}
PNG = "(PNG bytes)"


@dataclass(frozen=True)
class Doc:
    """Who may call an operation, and examples of its answer and (JSON) request body."""

    roles: str
    example: Any
    request: Any = None


def _page(item: dict[str, Any]) -> dict[str, Any]:
    return {"items": [item], "total": 1, "offset": 0, "limit": 50}


OPERATIONS: dict[str, Doc] = {
    "POST /v1/check": Doc(
        "platforms and operators",
        {
            "results": [
                {
                    "index": 0,
                    "filename": "out.png",
                    "check_id": "chk_01J9Z6Q4ZK",
                    "decision": "block",
                    "fused_score": 0.9931,
                    "risk_prompt": _RISK,
                    "audit_seq": 1042,
                    "verdict": _VERDICT,
                    "action": "do_not_publish",
                    "error": None,
                }
            ]
        },
    ),
    "GET /v1/checks": Doc(
        f"{EVERYONE}: platforms see their own checks, rights holders those that matched "
        "their works, operators and admins all; `takedown=true` lists the released outputs "
        "a later notice matched (`action` take_down)",
        _page(CHECK),
    ),
    "GET /v1/checks/{check_id}": Doc(
        "the check's platform, the rights holders whose work it matched, operators and admins",
        CHECK,
    ),
    "GET /v1/checks/{check_id}/evidence": Doc(
        "the check's platform, the rights holders whose work it matched (their match only), "
        "operators and admins",
        {"check_id": "chk_01J9Z6Q4ZK", "input": {"sha256": "5d1f…"}, "verdict": _VERDICT},
    ),
    "GET /v1/checks/{check_id}/evidence.png": Doc(
        "the check's platform, the rights holders whose work it matched, operators and admins",
        PNG,
    ),
    "POST /v1/prompt": Doc(
        "platforms and operators",
        {
            "prompt_check_id": "prm_01J9Z9",
            "prompt": "画一个奥特曼在城市里战斗",
            "decision": "review",
            "score": 1.0,
            "matches": [
                {
                    "work_id": "ultraman-1966",
                    "title": "奥特曼",
                    "owner": "tsuburaya",
                    "score": 1.0,
                    "licensed": False,
                    "terms": [{"term": "奥特曼", "matched_as": "奥特曼", "how": "name"}],
                }
            ],
            "risk_prompt": _RISK,
            "audit_seq": 1043,
        },
        {"prompt": "画一个奥特曼在城市里战斗", "user_ref": "session-8812"},
    ),
    "POST /v1/checks/{check_id}/appeal": Doc(
        "platforms, for their own checks decided review or block",
        APPEAL,
        {"statement": "这是用户原创的角色，与奥特曼无关。", "contact_ref": "ticket-553"},
    ),
    "GET /v1/appeals": Doc(
        f"{EVERYONE}: platforms see their own appeals, rights holders those against their "
        "works, operators and admins all",
        _page(APPEAL),
    ),
    "GET /v1/appeals/{appeal_id}": Doc(
        "the appeal's platform, the rights holders whose work it concerns, operators and admins",
        APPEAL,
    ),
    "POST /v1/appeals/{appeal_id}/response": Doc(
        "rights holders whose work held the output",
        {**APPEAL, "responded_at": _AT},
        {"text": "The outline and colours copy our character; we keep our objection."},
    ),
    "POST /v1/appeals/{appeal_id}/decision": Doc(
        OPERATOR,
        {**APPEAL, "status": "overturned", "released": True},
        {"outcome": "overturned", "reason": "A different character; the match was the pose."},
    ),
    "POST /v1/works": Doc(OWNERS, {**WORK, "references_added": [11, 12]}),
    "GET /v1/works": Doc(f"{OWNERS}: a rights holder lists their own", _page(WORK)),
    "GET /v1/works/{work_id}": Doc(
        OWNERS,
        {
            **WORK,
            "references": [
                {
                    "id": 12,
                    "sha256": "5d1f…",
                    "source_name": "ultraman-front.png",
                    "format": "PNG",
                    "width": 1024,
                    "height": 1024,
                    "origin": {"kind": "notice", "source": "ntc_01J9Z7B2"},
                }
            ],
        },
    ),
    "DELETE /v1/works/{work_id}": Doc(OWNERS, {"removed": True, "fingerprints_removed": 24}),
    "POST /v1/works/{work_id}/references": Doc(
        OWNERS, {**WORK, "reference_count": 3, "references_added": [13]}
    ),
    "DELETE /v1/works/{work_id}/references/{reference_id}": Doc(
        OWNERS, {"removed": True, "fingerprints_removed": 12}
    ),
    "PUT /v1/works/{work_id}/licensees": Doc(
        OWNERS, {**WORK, "licensees": ["genco"]}, {"licensees": ["genco"]}
    ),
    "PUT /v1/works/{work_id}/thresholds": Doc(
        OPERATOR,
        {**WORK, "thresholds": {"review": 0.5, "block": 0.8}},
        {"review": 0.5, "block": 0.8},
    ),
    "DELETE /v1/works/{work_id}/thresholds": Doc(OPERATOR, WORK),
    "GET /v1/references/held": Doc(
        "rights holders (their own held images) and operators and admins (all)",
        {"items": [HELD]},
    ),
    "GET /v1/works/{work_id}/held/{held_id}/image": Doc(OWNERS, PNG),
    "POST /v1/works/{work_id}/held/{held_id}/approve": Doc(
        OPERATOR, {**WORK, "reference_count": 3}, {"note": "the work's own night scene"}
    ),
    "POST /v1/works/{work_id}/held/{held_id}/reject": Doc(
        OPERATOR, WORK, {"note": "a stock photo"}
    ),
    "PUT /v1/works/{work_id}/territories": Doc(
        OWNERS, {**WORK, "territories": ["CN", "JP"]}, {"territories": ["CN", "JP"]}
    ),
    "PUT /v1/works/{work_id}/licensees/{licensee}/territories": Doc(
        OWNERS,
        {**WORK, "licensees": ["genco"], "licensee_territories": {"genco": ["CN"]}},
        {"territories": ["CN"]},
    ),
    "PUT /v1/works/{work_id}/thresholds/territories": Doc(
        OPERATOR, {**WORK, "threshold_territories": ["CN"]}, {"territories": ["CN"]}
    ),
    "POST /v1/notices": Doc(
        f"{OWNERS}; `outputs` (images of released outputs) find their checks "
        "(`measures.found_by_image`: a rights holder sees only checks matching its work)",
        {
            **NOTICE,
            "status": "received",
            "measures": None,
            "job": {
                **JOB,
                "state": "queued",
                "progress": {"done": 0, "total": 0},
                "started_at": None,
                "finished_at": None,
                "result": None,
            },
        },
    ),
    "GET /v1/notices": Doc(f"{OWNERS}: a rights holder lists their own notices", _page(NOTICE)),
    "GET /v1/notices/{notice_id}": Doc(OWNERS, NOTICE),
    "POST /v1/notices/{notice_id}/reject": Doc(
        OPERATOR,
        {**NOTICE, "status": "rejected", "reason": "not the notifier's work"},
        {"reason": "not the notifier's work"},
    ),
    "GET /v1/jobs/{job_id}": Doc(
        "the rights holder whose notice started the job, and operators and admins (any "
        "job); a rights holder sees no platform in `result.affected`",
        JOB,
    ),
    "GET /v1/review": Doc(
        OPERATOR,
        _page({**CHECK, "decision": "review", "review_status": "pending", "action": "hold"}),
    ),
    "POST /v1/review/{check_id}/confirm": Doc(
        OPERATOR,
        {**CHECK, "decision": "review", "review_status": "confirmed"},
        {"work_id": "ultraman-1966", "note": "copied face and colours"},
    ),
    "POST /v1/review/{check_id}/reject": Doc(
        OPERATOR,
        {**CHECK, "decision": "review", "review_status": "rejected", "action": "publish"},
        {"work_id": None, "note": "a different character"},
    ),
    "GET /v1/audit": Doc(OPERATOR, [AUDIT]),
    "GET /v1/audit/verify": Doc(
        OPERATOR,
        {
            "ok": True,
            "count": 1042,
            "broken_at": None,
            "reason": None,
            "head_seq": 1042,
            "head_hash": "a71e…",
        },
    ),
    "GET /v1/policy": Doc(
        OPERATOR, {"version": "2025-02", "bands": {"review": 0.55, "block": 0.85}}
    ),
    "POST /v1/keys": Doc(
        "admins",
        {**KEY, "key": "sk_live_3kq…"},
        {"role": "platform", "owner": "genco", "description": "genco production"},
    ),
    "GET /v1/keys": Doc("admins", [KEY]),
    "GET /v1/owners/{owner}": Doc(
        "operators and admins (any owner), every other key (its own owner)",
        {"owner": "tsuburaya", "display_name": "圆谷制作株式会社"},
    ),
    "PUT /v1/owners/{owner}": Doc(
        "operators and admins (any owner), every other key (its own owner)",
        {"owner": "tsuburaya", "display_name": "圆谷制作株式会社"},
        {"display_name": "圆谷制作株式会社"},
    ),
    "DELETE /v1/keys/{key_id}": Doc("admins", {**KEY, "revoked_at": _AT}),
    "POST /v1/label": Doc("platforms, operators and admins", PNG),
    "POST /v1/label/verify": Doc(EVERYONE, LABEL),
    "GET /healthz": Doc("anyone, without a key", {"status": "ok", "detail": {}}),
    "GET /readyz": Doc(
        "anyone, without a key", {"status": "ready", "detail": {"models": "loaded"}}
    ),
    "GET /metrics": Doc(
        "anyone who can reach the port, without a key (keep it off the public network)",
        'screener_verdicts_total{decision="block"} 12.0\n',
    ),
}


def _binary_files(node: Any) -> None:
    """Uploads as ``format: binary`` beside OpenAPI 3.1's ``contentMediaType``: Swagger UI
    shows a file picker only for the former (else "Try it out" sends text and gets 422)."""
    if isinstance(node, dict):
        if (
            node.get("contentMediaType") == "application/octet-stream"
            and node.get("type") == "string"
        ):
            node["format"] = "binary"
        for value in node.values():
            _binary_files(value)
    elif isinstance(node, list):
        for value in node:
            _binary_files(value)


def _document(operation: dict[str, Any], doc: Doc) -> None:
    said = operation.get("description") or operation.get("summary") or ""
    operation["description"] = f"**Who may call:** {doc.roles}.\n\n{said}".strip()
    for status, response in operation.get("responses", {}).items():
        if not status.startswith("2"):
            continue
        content = response.setdefault("content", {"application/json": {}})
        for media in content.values():
            media["example"] = doc.example
        break
    if doc.request is not None:
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            body["example"] = doc.request


def install_openapi(app: FastAPI) -> None:
    """Apply the table above to the app's schema where it is first built (then cached)."""
    build = app.openapi

    def schema() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        built = build()
        _binary_files(built)
        for path, operations in built.get("paths", {}).items():
            for method, operation in operations.items():
                doc = OPERATIONS.get(f"{method.upper()} {path}")
                if doc is not None:
                    _document(operation, doc)
        app.openapi_schema = built
        return built

    app.openapi = schema  # type: ignore[method-assign]
