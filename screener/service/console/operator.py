"""Operators' pages: the review queue, checks and their evidence, the policy, the
dashboard. Also the check pages platforms and rights holders reach (each sees what the
desk lets its key see)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from screener.core import policy as policy_mod
from screener.core.errors import InputError, NotFound, PolicyError
from screener.core.regions import regions
from screener.service.console import geometry, plots
from screener.service.console.i18n import N_
from screener.service.console.i18n import gettext as _
from screener.service.console.web import STAFF, FormViewer, TheViewer, redirect, render, runtime
from screener.service.errors import status_of

router = APIRouter()

PAGE = 50
_REGIONS = {r.name: r for r in regions(True)}
REJECT_REASONS = (
    N_("not a copy of the work"),
    N_("a different character or subject"),
    N_("licensed or permitted use"),
    N_("generic style or common motif only"),
)
_MEDIA = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def media_type(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((m for magic, m in _MEDIA if data.startswith(magic)), "application/octet-stream")


def image_response(data: bytes) -> Response:
    return Response(
        data,
        media_type=media_type(data),
        headers={
            "Cache-Control": "private, max-age=300",
            "Content-Security-Policy": "default-src 'none'",
        },
    )


def box(name: object) -> dict[str, str] | None:
    """A named region ("grid01", "whole/d3", ...) as an outline over a 100x100 view."""
    region = _REGIONS.get(name.split("/", 1)[0]) if isinstance(name, str) else None
    if region is None:
        return None
    x0, y0, x1, y1 = (v * 100 for v in (region.left, region.top, region.right, region.bottom))
    return {
        "viewbox": "0 0 100 100",
        "points": f"{x0:.2f},{y0:.2f} {x1:.2f},{y0:.2f} {x1:.2f},{y1:.2f} {x0:.2f},{y1:.2f}",
    }


def quad(points: object, size: object) -> tuple[dict[str, str], dict[str, str]] | None:
    """Local-feature verification's outlines: in the query (pixels) and in the reference
    (fractions, drawn over a 100x100 view)."""
    if not isinstance(points, list) or len(points) != 4:
        return None
    width, height = size if isinstance(size, tuple) else (None, None)
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        return None
    try:
        corners = [(float(x), float(y)) for x, y in points]
    except (TypeError, ValueError):
        return None
    in_query, in_reference = geometry.outlines(corners, width, height)
    if len(in_query) < 3 or len(in_reference) < 3:
        return None
    return (
        {
            "viewbox": f"0 0 {width} {height}",
            "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in in_query),
        },
        {
            "viewbox": "0 0 100 100",
            "points": " ".join(f"{x * 100:.2f},{y * 100:.2f}" for x, y in in_reference),
        },
    )


def _named(region: object) -> str | None:
    return _("region %(name)s") % {"name": region} if isinstance(region, str) else None


def part_views(match: dict[str, Any], size: object) -> list[dict[str, Any]]:
    """The rigid parts that verified (``character.parts``), as outlines over the query's
    pixel view (clamped to the picture), numbered as in the evidence picture."""
    width, height = size if isinstance(size, tuple) else (None, None)
    character = match.get("character") or {}
    parts = character.get("parts") if isinstance(character, dict) else None
    if not isinstance(parts, list) or not isinstance(width, int) or not isinstance(height, int):
        return []
    views = []
    for index, part in enumerate(parts, start=1):
        try:
            corners = [
                (min(max(float(x), 0.0), width), min(max(float(y), 0.0), height))
                for x, y in part["quad"]
            ]
            inliers = int(part["inliers"])
        except (KeyError, TypeError, ValueError):
            continue
        views.append(
            {
                "index": index,
                "inliers": inliers,
                "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in corners),
            }
        )
    return views


def match_views(verdict: dict[str, Any], limit: int = 3) -> list[dict[str, Any]]:
    """The matches of a verdict with the outlines to draw on both pictures: the verified
    quad of local features where there is one (the whole reference maps to it), else the
    best-matching pair of named regions."""
    given = verdict.get("input") or {}
    size = (given.get("width"), given.get("height"))
    views = []
    for match in list(verdict.get("matches", []))[:limit]:
        best = match.get("best_region") or {}
        local = match.get("local") or {}
        outlines = quad(local.get("quad"), size)
        if outlines is not None:
            views.append(
                {
                    **match,
                    "parts": part_views(match, size),
                    "reference_id": local.get("reference_id"),
                    "query_box": outlines[0],
                    "reference_box": outlines[1],
                    "query_region": _("outlined: %(n)s local features agree")
                    % {"n": local.get("inliers")},
                    "reference_region": _("outlined: the part copied"),
                }
            )
            continue
        views.append(
            {
                **match,
                "parts": [],
                "reference_id": best.get("reference_id"),
                "query_box": box(best.get("query")),
                "reference_box": box(best.get("reference")),
                "query_region": _named(best.get("query")),
                "reference_region": _named(best.get("reference")),
            }
        )
    return views


# review -----------------------------------------------------------------------------------


@router.get("/review", response_class=HTMLResponse)
def review(request: Request, who: TheViewer) -> Response:
    who.require(*STAFF)
    items, total = who.desk.review_queue(who.key, limit=1)
    item = items[0] if items else None
    return render(
        request,
        "review.html",
        who,
        item=item,
        total=total,
        matches=match_views(item.verdict) if item else [],
        reasons=REJECT_REASONS,
    )


@router.post("/review/{check_id}/confirm")
def confirm(
    who: FormViewer,
    check_id: str,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    who.desk.confirm_review(who.key, check_id, None, note)
    return redirect("/review", "confirmed")


@router.post("/review/{check_id}/reject")
def reject(
    who: FormViewer,
    check_id: str,
    reason: Annotated[str, Form(max_length=200)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    text = " — ".join(part for part in (reason.strip(), note.strip()) if part)
    if not text:
        raise InputError(_("Say why it is not a copy: pick a reason or write one."))
    who.desk.reject_review(who.key, check_id, text)
    return redirect("/review", "rejected")


# checks and evidence ----------------------------------------------------------------------


def _date(name: str, value: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(_("%(name)s must be a date like 2025-01-31") % {"name": name}) from None


@router.get("/checks", response_class=HTMLResponse)
def checks(
    request: Request,
    who: TheViewer,
    decision: str = "",
    work: str = "",
    platform: str = "",
    since: str = "",
    until: str = "",
    page: int = 1,
) -> Response:
    who.require(*STAFF)
    form = {
        "decision": decision,
        "work": work,
        "platform": platform,
        "since": since,
        "until": until,
    }
    error = None
    items: list[Any] = []
    total = 0
    page = max(1, min(page, 100_000))
    try:
        items, total = who.desk.find_checks(
            who.key,
            offset=(page - 1) * PAGE,
            limit=PAGE,
            decision=decision or None,
            work_id=work.strip() or None,
            platform=platform.strip() or None,
            since=_date(_("From"), since),
            until=_date(_("To"), until),
        )
    except NotFound:
        error = _("No work %(id)r.") % {"id": work.strip()}
    except InputError as exc:
        error = str(exc)
    chain = who.desk.audit_verify(who.key)
    return render(
        request,
        "checks.html",
        who,
        status=422 if error else 200,
        items=items,
        total=total,
        form=form,
        error=error,
        page=page,
        pages=max(1, -(-total // PAGE)),
        chain=chain,
    )


@router.get("/checks/{check_id}", response_class=HTMLResponse)
def check_page(request: Request, who: TheViewer, check_id: str) -> Response:
    pack = who.desk.evidence(who.key, check_id)
    record = who.desk.get_check(who.key, check_id)
    kept = record.decision != "allow" and who.key.role.value != "rights_holder"
    return render(
        request,
        "check.html",
        who,
        record=record,
        pack=pack,
        matches=match_views(record.verdict, limit=5),
        kept_image=kept,
        risk=who.desk.risk_prompt_of(who.key, check_id),
    )


@router.get("/checks/{check_id}/evidence.json")
def evidence_json(who: TheViewer, check_id: str) -> Response:
    pack = who.desk.evidence(who.key, check_id)
    body = json.dumps(pack, ensure_ascii=False, indent=2, sort_keys=True)
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="evidence-{pack["check_id"]}.json"'},
    )


@router.get("/checks/{check_id}/image")
def check_image(who: TheViewer, check_id: str) -> Response:
    return image_response(who.desk.check_image(who.key, check_id))


@router.get("/checks/{check_id}/evidence.png")
def evidence_picture(who: TheViewer, check_id: str) -> Response:
    return image_response(who.desk.evidence_picture(who.key, check_id).png)


# policy -----------------------------------------------------------------------------------


def _policy_page(request: Request, who: Any, status: int = 200, **extra: Any) -> Response:
    current = who.desk.policy(who.key)
    return render(
        request,
        "policy.html",
        who,
        status=status,
        policy=current,
        text=policy_mod.dumps(who.desk.screener.policy),
        **extra,
    )


@router.get("/policy", response_class=HTMLResponse)
def policy_page(request: Request, who: TheViewer) -> Response:
    who.require(*STAFF)
    return _policy_page(request, who)


@router.post("/policy/preview", response_class=HTMLResponse)
def policy_preview(
    request: Request,
    who: FormViewer,
    policy_file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    who.require(*STAFF)
    data = policy_file.file.read() if policy_file is not None else b""
    name = (policy_file.filename if policy_file is not None else None) or _("the uploaded policy")
    if not data:
        return _policy_page(request, who, 422, error=_("Choose a policy file (YAML or JSON)."))
    try:
        preview = who.desk.preview_policy(who.key, data)
    except PolicyError as exc:
        return _policy_page(request, who, status_of(exc), error=str(exc), file_name=name)
    return render(request, "policy_preview.html", who, preview=preview, file_name=name)


@router.post("/policy/apply")
def policy_apply(
    request: Request,
    who: FormViewer,
    text: Annotated[str, Form(max_length=256 * 1024)],
    based_on: Annotated[str, Form(max_length=200)],
) -> Response:
    who.require(*STAFF)
    try:
        who.desk.replace_policy(who.key, text, based_on)
    except InputError as exc:
        return _policy_page(request, who, status_of(exc), error=str(exc))
    return redirect("/policy", "policy")


# dashboard --------------------------------------------------------------------------------


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, who: TheViewer, days: int = 14) -> Response:
    who.require(*STAFF)
    data = who.desk.dashboard(who.key, max(1, min(days, 366)))
    counts = data["counts"]
    return render(
        request,
        "dashboard.html",
        who,
        data=data,
        counts=counts,
        per_day=plots.stacked_days(
            counts.days,
            counts.per_day,
            {d: _(d) for d in ("allow", "review", "block")},
            _("checks per day by decision"),
        ),
        top_works=plots.bars(counts.top_works, _("flagged checks")),
        index_sizes=plots.bars(sorted(data["index_sizes"].items()), _("vectors")),
        days=len(counts.days),
        appeals_late=runtime(request).appeals.overdue(),
    )
