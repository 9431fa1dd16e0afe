"""Rights holders' pages (operators see every owner's): works, their reference images,
the checks that matched them, and notices."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from screener.core.errors import InputError
from screener.duties.desk import Upload
from screener.service.console.i18n import gettext as _
from screener.service.console.operator import image_response
from screener.service.console.web import STAFF, FormViewer, TheViewer, Viewer, redirect, render
from screener.service.errors import status_of
from screener.store.keys import Role

router = APIRouter()
# Reference and held ids as the API bounds them: a larger one would reach the database.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]

OWNERS = (Role.RIGHTS_HOLDER, Role.OPERATOR, Role.ADMIN)
PAGE = 50
MAX_FILES = 8


def uploads(files: list[UploadFile] | None) -> list[Upload]:
    chosen = [f for f in files or [] if f.filename]
    if len(chosen) > MAX_FILES:
        raise InputError(
            _("%(n)d images chosen; at most %(max)d at a time")
            % {"n": len(chosen), "max": MAX_FILES}
        )
    return [Upload(f.file.read(), (f.filename or "image")[:200]) for f in chosen]


def lines(text: str) -> list[str]:
    """Aliases or ids, one a line (commas also separate ids, never aliases' own text)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


# works ------------------------------------------------------------------------------------


def _works_page(request: Request, who: Viewer, status: int = 200, **extra: Any) -> Response:
    works, total = who.desk.list_works(who.key, 0, 500)
    return render(
        request,
        "works.html",
        who,
        status=status,
        works=works,
        total=total,
        form=extra.pop("form", {}),
        **extra,
    )


@router.get("/works", response_class=HTMLResponse)
def works(request: Request, who: TheViewer) -> Response:
    who.require(*OWNERS)
    return _works_page(request, who)


@router.post("/works")
def create_work(
    request: Request,
    who: FormViewer,
    work_id: Annotated[str, Form(max_length=200)] = "",
    title: Annotated[str, Form(max_length=500)] = "",
    aliases: Annotated[str, Form(max_length=20_000)] = "",
    related_terms: Annotated[str, Form(max_length=20_000)] = "",
    images: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    who.require(*OWNERS)
    form = {"work_id": work_id, "title": title, "aliases": aliases, "related_terms": related_terms}
    try:
        if not work_id.strip():
            raise InputError(_("Give the work an id (letters, digits, - and _)."))
        files = uploads(images)
        if not files:
            raise InputError(_("Add at least one reference image."))
        done = who.desk.create_work(
            who.key,
            work_id.strip(),
            files,
            title=title.strip() or None,
            aliases=lines(aliases),
            related_terms=lines(related_terms),
        )
    except InputError as exc:
        return _works_page(request, who, status_of(exc), form=form, error=str(exc))
    return redirect(f"/works/{work_id.strip()}", "held" if done.held else "created")


def _work_page(
    request: Request, who: Viewer, work_id: str, status: int = 200, **extra: Any
) -> Response:
    view = who.desk.get_work(who.key, work_id)
    matches, total = who.desk.find_checks(who.key, work_id=work_id, limit=20)
    return render(
        request,
        "work.html",
        who,
        status=status,
        work=view.work,
        references=view.references,
        origins=view.origins,
        readable=who.desk.readable_checks(
            who.key, [o.source for o in view.origins.values() if o.kind == "review" and o.source]
        ),
        held=view.held,
        policy_bands=who.desk.screener.policy.bands_for(work_id),
        matches=matches,
        matches_total=total,
        form=extra.pop("form", None)
        or {
            "title": view.work.title,
            "aliases": "\n".join(view.work.aliases),
            "related_terms": "\n".join(view.work.related_terms),
        },
        **extra,
    )


@router.get("/works/{work_id}", response_class=HTMLResponse)
def work(request: Request, who: TheViewer, work_id: str) -> Response:
    return _work_page(request, who, work_id)


@router.post("/works/{work_id}/edit")
def edit_work(
    request: Request,
    who: FormViewer,
    work_id: str,
    title: Annotated[str, Form(max_length=500)] = "",
    aliases: Annotated[str, Form(max_length=20_000)] = "",
    related_terms: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    try:
        who.desk.update_work(
            who.key,
            work_id,
            title=title,
            aliases=lines(aliases),
            related_terms=lines(related_terms),
        )
    except InputError as exc:
        if status_of(exc) == 404:
            raise
        form = {"title": title, "aliases": aliases, "related_terms": related_terms}
        return _work_page(request, who, work_id, status_of(exc), form=form, error=str(exc))
    return redirect(f"/works/{work_id}", "updated")


def _number(name: str, value: str) -> float | None:
    if not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise InputError(
            _("%(name)s must be a number between 0 and 1, like 0.85") % {"name": name}
        ) from None


@router.post("/works/{work_id}/thresholds")
def set_thresholds(
    request: Request,
    who: FormViewer,
    work_id: str,
    review: Annotated[str, Form(max_length=40)] = "",
    block: Annotated[str, Form(max_length=40)] = "",
    use_policy: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Operators: the work's own review and block thresholds, or the policy's again."""
    try:
        if use_policy:
            who.desk.set_thresholds(who.key, work_id, None)
        else:
            given = {
                name: number
                for name, number in (
                    ("review", _number(_("Review from"), review)),
                    ("block", _number(_("Block from"), block)),
                )
                if number is not None
            }
            if not given:
                raise InputError(_("Give a review or a block threshold, or use the policy's."))
            who.desk.set_thresholds(who.key, work_id, given)
    except InputError as exc:
        if status_of(exc) in (403, 404):
            raise
        return _work_page(request, who, work_id, status_of(exc), thresholds_error=str(exc))
    return redirect(f"/works/{work_id}", "thresholds")


@router.post("/works/{work_id}/licensees")
def set_licensees(
    request: Request,
    who: FormViewer,
    work_id: str,
    licensees: Annotated[str, Form(max_length=200_000)] = "",
) -> Response:
    """The platforms (owner names) licensed to publish the work, one a line."""
    try:
        who.desk.set_licensees(who.key, work_id, lines(licensees))
    except InputError as exc:
        if status_of(exc) in (403, 404):
            raise
        return _work_page(request, who, work_id, status_of(exc), licensees_error=str(exc))
    return redirect(f"/works/{work_id}", "licensees")


@router.post("/works/{work_id}/references")
def add_references(
    request: Request,
    who: FormViewer,
    work_id: str,
    images: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    try:
        files = uploads(images)
        if not files:
            raise InputError(_("Choose or drop at least one image."))
        done = who.desk.add_references(who.key, work_id, files)
    except InputError as exc:
        if status_of(exc) == 404:
            raise
        return _work_page(request, who, work_id, status_of(exc), upload_error=str(exc))
    return redirect(f"/works/{work_id}", "held" if done.held else "references")


@router.post("/works/{work_id}/references/{reference_id}/remove")
def remove_reference(who: FormViewer, work_id: str, reference_id: RowId) -> Response:
    who.desk.remove_reference(who.key, work_id, reference_id)
    return redirect(f"/works/{work_id}", "removed")


@router.post("/works/{work_id}/delete")
def delete_work(who: FormViewer, work_id: str) -> Response:
    who.desk.delete_work(who.key, work_id)
    return redirect("/works", "deleted")


@router.get("/works/{work_id}/references/{reference_id}/image")
def reference_image(who: TheViewer, work_id: str, reference_id: RowId) -> Response:
    return image_response(who.desk.reference_image(who.key, work_id, reference_id))


# references held for an operator -------------------------------------------------------


@router.get("/held", response_class=HTMLResponse)
def held_page(request: Request, who: TheViewer) -> Response:
    """Operators: every held reference with approve and reject; a rights holder: their
    own, with why they wait."""
    who.require(*OWNERS)
    return render(request, "held.html", who, held=who.desk.held_references(who.key))


@router.get("/works/{work_id}/held/{held_id}/image")
def held_image(who: TheViewer, work_id: str, held_id: RowId) -> Response:
    return image_response(who.desk.held_image(who.key, work_id, held_id))


@router.post("/works/{work_id}/held/{held_id}/approve")
def approve_held(
    who: FormViewer, work_id: str, held_id: RowId, note: Annotated[str, Form(max_length=2000)] = ""
) -> Response:
    who.desk.approve_held(who.key, work_id, held_id, note)
    return redirect("/held", "approved")


@router.post("/works/{work_id}/held/{held_id}/reject")
def reject_held(
    who: FormViewer, work_id: str, held_id: RowId, note: Annotated[str, Form(max_length=2000)] = ""
) -> Response:
    who.desk.reject_held(who.key, work_id, held_id, note)
    return redirect("/held", "dropped")


# notices ----------------------------------------------------------------------------------


def _notices_page(request: Request, who: Viewer, status: int = 200, **extra: Any) -> Response:
    items, total = who.desk.list_notices(who.key, limit=PAGE)
    works, _ = who.desk.list_works(who.key, 0, 500)
    return render(
        request,
        "notices.html",
        who,
        status=status,
        notices=items,
        total=total,
        works=works,
        form=extra.pop("form", {}),
        **extra,
    )


@router.get("/notices", response_class=HTMLResponse)
def notices(request: Request, who: TheViewer) -> Response:
    who.require(*OWNERS)
    return _notices_page(request, who)


@router.post("/notices")
def file_notice(
    request: Request,
    who: FormViewer,
    work_id: Annotated[str, Form(max_length=200)] = "",
    new_work_id: Annotated[str, Form(max_length=200)] = "",
    title: Annotated[str, Form(max_length=500)] = "",
    description: Annotated[str, Form(max_length=2000)] = "",
    check_ids: Annotated[str, Form(max_length=10_000)] = "",
    images: Annotated[list[UploadFile] | None, File()] = None,
    outputs: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    who.require(*OWNERS)
    form = {
        "work_id": work_id,
        "new_work_id": new_work_id,
        "title": title,
        "description": description,
        "check_ids": check_ids,
    }
    target = new_work_id.strip() or work_id.strip()
    try:
        if not target:
            raise InputError(_("Pick one of your works, or name a new one."))
        ids = [part for line in lines(check_ids) for part in line.replace(",", " ").split()]
        filed = who.desk.file_notice(
            who.key,
            target,
            uploads=uploads(images),
            check_ids=ids,
            outputs=uploads(outputs),
            title=title.strip() or None,
            description=description,
        )
    except InputError as exc:
        return _notices_page(request, who, status_of(exc), form=form, error=str(exc))
    return redirect(f"/notices/{filed.id}", "notice")


def _notice_page(
    request: Request, who: Viewer, notice_id: str, status: int = 200, **extra: Any
) -> Response:
    item = who.desk.get_notice(who.key, notice_id)
    measures = item.measures or {}
    named = [*item.check_ids, *measures.get("affected_check_ids", [])]
    return render(
        request,
        "notice.html",
        who,
        status=status,
        notice=item,
        readable=who.desk.readable_checks(who.key, named),
        **extra,
    )


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
def notice(request: Request, who: TheViewer, notice_id: str) -> Response:
    return _notice_page(request, who, notice_id)


@router.post("/notices/{notice_id}/reject")
def reject_notice(
    request: Request,
    who: FormViewer,
    notice_id: str,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Operators: reject a notice with a reason; the references it added are removed."""
    who.require(*STAFF)
    try:
        who.desk.reject_notice(who.key, notice_id, reason)
    except InputError as exc:
        if status_of(exc) == 404:
            raise
        return _notice_page(request, who, notice_id, status_of(exc), error=str(exc))
    return redirect(f"/notices/{notice_id}", "notice_rejected")
