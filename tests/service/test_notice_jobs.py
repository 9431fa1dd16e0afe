"""A notice's re-screening as a background job over the check-fingerprint index (issue 20):
the notice answers before its job runs, the job finds what a scan of every released output
finds, a crash mid-job is resumed at the next start, retention ages stored fingerprints out
(verdicts stay), and a job is shown only to the holder who filed the notice and operators.

Real service (in-process app with its worker thread), real SQLite, real models.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, null, select, update
from sqlalchemy.orm import Session

from screener.core.samples import scene
from screener.duties.desk import Desk
from screener.matching.check_index import near_work
from screener.store.check_records import CheckFingerprintRow, CheckRow, NoticeRow
from screener.store.jobs import JobRow
from tests.service.conftest import Service, encode, running_service
from tests.service.test_api import copy_of, only


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("notice-jobs")


@pytest.fixture(scope="module")
def service(data_dir: Path) -> Iterator[Service]:
    with running_service(data_dir) as running:
        yield running


def desk_of(service: Service) -> Desk:
    desk: Desk = service.app.state.runtime.desk
    return desk


def job_of(service: Service, job_id: str, who: str) -> Any:
    return service.client.get(f"/v1/jobs/{job_id}", headers=service.h(who))


def test_the_notice_answers_before_its_job_runs_and_the_job_then_takes_the_measures(
    service: Service,
) -> None:
    work = scene(2001, (400, 300))
    copied = only(service.check("platform", copy_of(work)))
    other = only(service.check("platform", encode(scene(2002, (400, 300)))))
    assert copied["decision"] == other["decision"] == "allow"
    desk = desk_of(service)
    worker = desk.worker
    assert worker is not None
    with worker.paused():  # the worker may not start the job while we look
        filed = service.client.post(
            "/v1/notices",
            headers=service.h("holder"),
            data={"work_id": "job-work-1", "title": "Job work"},
            files=[("images", ("work.png", encode(work), "image/png"))],
        )
        assert filed.status_code == 201, filed.text
        body = filed.json()
        assert body["status"] == "received" and body["measures"] is None
        job_id = body["job"]["job_id"]
        assert body["job"]["state"] == "queued"
        waiting = job_of(service, job_id, "holder")
        assert waiting.status_code == 200
        assert waiting.json()["state"] == "queued" and waiting.json()["result"] is None
        # The service answers other requests meanwhile.
        assert service.client.get("/healthz").status_code == 200
        # A notice is not rejected while its job may still add its references.
        early = service.client.post(
            f"/v1/notices/{body['notice_id']}/reject",
            headers=service.h("operator"),
            json={"reason": "too early"},
        )
        assert early.status_code == 409 and job_id in early.text
    worker.wait_idle()
    done = job_of(service, job_id, "holder").json()
    assert done["state"] == "done", done
    assert done["kind"] == "notice" and done["notice_id"] == body["notice_id"]
    assert done["started_at"] and done["finished_at"] and done["error"] is None
    result = done["result"]
    assert copied["check_id"] in result["affected_check_ids"]
    assert other["check_id"] not in result["affected_check_ids"]
    # The index narrowed the work to re-score: the unrelated output was never a candidate.
    assert result["candidate_checks"] == result["rescreened_checks"] >= 1
    assert done["progress"] == {
        "done": result["rescreened_checks"],
        "total": result["rescreened_checks"],
    }
    notice = service.settled(body, "holder")
    assert notice["status"] == "measures_taken"
    assert notice["measures"]["affected_check_ids"] == result["affected_check_ids"]
    assert notice["job"]["state"] == "done"
    record = service.client.get(f"/v1/checks/{copied['check_id']}", headers=service.h("platform"))
    assert record.json()["rescreen"]["notice_id"] == body["notice_id"]


def test_a_job_is_shown_to_the_filer_and_operators_only(service: Service) -> None:
    work = scene(2011, (400, 300))
    copied = only(service.check("platform", copy_of(work)))
    filed = service.client.post(
        "/v1/notices",
        headers=service.h("holder"),
        data={"work_id": "job-work-2"},
        files=[("images", ("work.png", encode(work), "image/png"))],
    )
    assert filed.status_code == 201, filed.text
    notice = service.settled(filed.json(), "holder")
    job_id = notice["job"]["job_id"]

    mine = job_of(service, job_id, "holder")
    assert mine.status_code == 200
    affected = mine.json()["result"]["affected"]
    assert [a["check_id"] for a in affected] == [copied["check_id"]]
    assert all("platform" not in a for a in affected)  # as the notice shows it to a holder
    operator = job_of(service, job_id, "operator")
    assert operator.status_code == 200
    assert [a["platform"] for a in operator.json()["result"]["affected"]] == ["genco"]
    for who in ("holder2", "platform", "platform2"):
        refused = job_of(service, job_id, who)
        assert refused.status_code == 404, who
    assert job_of(service, "job_" + "0" * 24, "operator").status_code == 404
    unsigned = service.client.get(f"/v1/jobs/{job_id}")
    assert unsigned.status_code == 401


def test_the_index_finds_the_same_affected_checks_as_a_scan_of_every_output(
    service: Service,
) -> None:
    work = scene(2021, (400, 300))
    copies = [
        only(service.check("platform", copy_of(work)))["check_id"],
        only(service.check("platform2", encode(work, "JPEG", quality=70)))["check_id"],
    ]
    unrelated = [
        only(service.check("platform", encode(scene(2022 + i, (400, 300)))))["check_id"]
        for i in range(4)
    ]
    registered = service.register("holder", "job-work-3", encode(work))
    assert registered.status_code == 201, registered.text
    desk = desk_of(service)
    by_index = desk.rescreen("job-work-3")
    by_scan = desk.rescreen_by_scan("job-work-3")
    found = sorted(a["check_id"] for a in by_index["affected"])
    assert found == sorted(a["check_id"] for a in by_scan["affected"])
    assert sorted(copies) == found
    assert by_index["affected"] == sorted(by_scan["affected"], key=lambda a: a["check_id"])
    # The scan re-scored every released output; the index only those near the work.
    near = desk._candidate_checks(
        near_work(
            desk.check_index, desk.screener.catalog, "job-work-3", desk.screener.policy.notices
        )
    )
    assert set(copies) <= set(near)
    # Unrelated outputs are pruned unless some fingerprint falls within the radius where
    # evidence starts (scenes of one generator share parts): then they are re-scored too.
    assert len(set(unrelated) & set(near)) < len(unrelated)
    assert by_scan["rescreened"] > by_index["rescreened"] == len(near)


def test_a_job_left_running_by_a_crash_is_resumed_at_the_next_start(
    tmp_path: Path,
) -> None:
    work = scene(2031, (400, 300))
    with running_service(tmp_path) as first:
        copied = only(first.check("platform", copy_of(work)))["check_id"]
        filed = first.client.post(
            "/v1/notices",
            headers=first.h("holder"),
            data={"work_id": "job-crash"},
            files=[("images", ("work.png", encode(work), "image/png"))],
        )
        assert filed.status_code == 201, filed.text
        taken = first.settled(filed.json(), "holder")
        notice_id, job_id = taken["notice_id"], taken["job"]["job_id"]
        # Put things back as a crash mid-job leaves them: the references added (the
        # job's first step, its own transaction), then nothing more recorded. The job
        # row says running with half its progress; the output is not marked; the notice
        # has no measures.
        with Session(desk_of(first).engine) as session, session.begin():
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id)
                .values(state="running", done=1, total=2, result=None, finished_at=None)
            )
            session.execute(update(CheckRow).where(CheckRow.id == copied).values(rescreen=null()))
            session.execute(
                update(NoticeRow)
                .where(NoticeRow.id == notice_id)
                .values(status="received", measures=None, history=taken["history"][:1])
            )
    with running_service(tmp_path) as second:
        desk = desk_of(second)
        assert desk.worker is not None
        desk.worker.wait_idle()
        done = job_of(second, job_id, "holder").json()
        assert done["state"] == "done", done
        assert done["result"]["affected_check_ids"] == [copied]
        assert done["result"]["references_already_registered"] == 1
        notice = second.client.get(f"/v1/notices/{notice_id}", headers=second.h("holder")).json()
        assert notice["status"] == "measures_taken"
        assert [h["status"] for h in notice["history"]] == ["received", "measures_taken"]
        record = second.client.get(f"/v1/checks/{copied}", headers=second.h("platform"))
        assert record.json()["rescreen"]["notice_id"] == notice_id
        with Session(desk.engine) as session:
            jobs = session.scalars(select(JobRow).where(JobRow.notice_id == notice_id)).all()
            assert [j.state for j in jobs] == ["done"]  # resumed, not filed again
        assert desk.audit.verify().ok


def test_retention_ages_out_fingerprints_and_index_entries_and_keeps_verdicts(
    tmp_path: Path,
) -> None:
    work = scene(2041, (400, 300))
    with running_service(tmp_path) as first:
        old = only(first.check("platform", copy_of(work)))["check_id"]
        recent = only(first.check("platform", encode(scene(2042, (400, 300)))))["check_id"]
        desk = desk_of(first)
        before = desk.check_index.sizes()
        assert sum(before.values()) > 0
        with Session(desk.engine) as session, session.begin():
            session.execute(
                update(CheckRow)
                .where(CheckRow.id == old)
                .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=40))
            )
            old_ids = list(
                session.scalars(
                    select(CheckFingerprintRow.id).where(CheckFingerprintRow.check_id == old)
                )
            )
        assert old_ids
    # Restarted with a 30-day retention: the start-up ages out the old check's fingerprints.
    with running_service(tmp_path, check_retention_days=30) as second:
        desk = desk_of(second)
        assert desk.worker is not None
        desk.worker.wait_idle()
        with Session(desk.engine) as session:
            retention = session.scalars(select(JobRow).where(JobRow.kind == "retention")).one()
            left_old = session.scalar(
                select(func.count()).where(CheckFingerprintRow.check_id == old)
            )
            left_recent = session.scalar(
                select(func.count()).where(CheckFingerprintRow.check_id == recent)
            )
            table = session.scalar(select(func.count()).select_from(CheckFingerprintRow))
        assert retention.state == "done"
        assert retention.result is not None
        assert retention.result["fingerprints_removed"] == len(old_ids)
        assert left_old == 0 and left_recent
        index = desk.check_index
        assert sum(index.sizes().values()) == table
        held = {int(i) for idx in index.indexes.values() for i in idx.ids()}
        assert not held & set(old_ids)
        # The verdict record stays (audit); only the fingerprints went.
        record = second.client.get(f"/v1/checks/{old}", headers=second.h("platform"))
        assert record.status_code == 200 and record.json()["decision"] == "allow"
        # Operators see the retention job; a rights holder has no claim to it.
        assert job_of(second, retention.id, "operator").json()["state"] == "done"
        assert job_of(second, retention.id, "holder").status_code == 404
        # A notice now cannot find the aged-out output (its fingerprints are gone).
        filed = second.client.post(
            "/v1/notices",
            headers=second.h("holder"),
            data={"work_id": "job-retained"},
            files=[("images", ("work.png", encode(work), "image/png"))],
        )
        assert filed.status_code == 201, filed.text
        notice = second.settled(filed.json(), "holder")
        assert old not in notice["measures"]["affected_check_ids"]
        assert desk.audit.verify().ok


def test_a_damaged_check_index_is_rebuilt_from_the_table(tmp_path: Path) -> None:
    with running_service(tmp_path) as first:
        index = desk_of(first).check_index
        empty = index.sizes()
        only(first.check("platform", encode(scene(2051, (400, 300)))))
        sizes = index.sizes()
        # Kept in step as the allowed check is stored, before any notice searches it.
        assert all(sizes[signal] > empty[signal] for signal in sizes)
        paths = [index.path(signal) for signal in index.specs]
    assert all(p.exists() for p in paths)  # saved when the service stopped
    for path in paths:
        path.write_bytes(b"not an index")
    with running_service(tmp_path) as second:
        index = desk_of(second).check_index
        assert index.sizes() == sizes
        assert sum(sizes.values()) > 0


def test_fingerprints_gone_from_the_table_leave_the_index_at_the_next_start(
    tmp_path: Path,
) -> None:
    """A crash between an ageing-out's commit and its index save: the table lost rows the
    saved index still holds. The next start rebuilds that index from the table."""
    with running_service(tmp_path) as first:
        gone = only(first.check("platform", encode(scene(2061, (400, 300)))))["check_id"]
        only(first.check("platform", encode(scene(2062, (400, 300)))))
        desk = desk_of(first)
        held = sum(desk.check_index.sizes().values())
    with Session(desk.engine) as session, session.begin():
        removed = session.scalar(select(func.count()).where(CheckFingerprintRow.check_id == gone))
        assert removed
        session.execute(delete(CheckFingerprintRow).where(CheckFingerprintRow.check_id == gone))
    with running_service(tmp_path) as second:
        index = desk_of(second).check_index
        with Session(desk_of(second).engine) as session:
            table = session.scalar(select(func.count()).select_from(CheckFingerprintRow))
        assert sum(index.sizes().values()) == table == held - removed
