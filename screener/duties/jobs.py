"""Background jobs: the work a request asks for but need not wait for (a notice's
re-screening, the ageing-out of stored check fingerprints), run one at a time by a worker
thread of the service, recorded in the ``jobs`` table with their progress.

Without a worker (the library, the CLI, a test's own desk) a job runs in the caller's
thread as soon as it is recorded, so a notice filed there returns with its measures
taken. A job left queued or running by a crash is run again from the start at the next
start-up: a job writes its result in one transaction with the records it changes, so
running it again repeats nothing already recorded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Collection, Iterator
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from screener.core.errors import NotFound, is_plain_id, quote
from screener.duties import redaction
from screener.duties.checks import CheckDuties
from screener.matching.check_index import CheckIndex
from screener.store.check_records import CheckFingerprintRow, CheckRow, new_id, now
from screener.store.jobs import LIVE, Job, JobRow, job
from screener.store.keys import ApiKey, Role

log = logging.getLogger(__name__)

_AGE_OUT_BATCH = 5_000


class JobWorker:
    """One thread that runs the jobs handed to it, in order, and asks ``tick`` for more
    every ``every_s`` seconds it has waited (the retention schedule)."""

    def __init__(
        self,
        run: Callable[[str], None],
        tick: Callable[[], str | None] | None = None,
        every_s: float = 3600.0,
    ) -> None:
        self._run = run
        self._tick = tick
        self._every = every_s
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._gate = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="screener-jobs", daemon=True)
        self._thread.start()

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the worker between jobs while the block runs (jobs submitted meanwhile
        stay queued): for an operator's maintenance, and for tests that look at a job
        before it ran."""
        with self._gate:
            yield

    def wait_idle(self) -> None:
        """Return once every job handed over so far has run (the queue is empty)."""
        self._queue.join()

    def close(self, timeout: float = 30.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _ask_for_more(self) -> None:
        try:
            due = self._tick() if self._tick else None
        except Exception:  # a database away for a moment: ask again at the next tick
            log.exception("could not schedule the next job")
            return
        if due is not None:
            self._queue.put(due)

    def _loop(self) -> None:
        while True:
            try:
                job_id = self._queue.get(timeout=self._every)
            except queue.Empty:
                self._ask_for_more()
                continue
            if job_id is None:
                return
            with self._gate:
                try:
                    self._run(job_id)
                except Exception:  # recorded on the job by run_job; keep serving others
                    log.exception("job %s failed", job_id)
                finally:
                    self._queue.task_done()


class JobDuties(CheckDuties):
    """The jobs table, the worker that runs it and the check-fingerprint index the jobs
    search; who may read which job."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker: JobWorker | None = None
        self._check_index: CheckIndex | None = None
        self._index_lock = threading.Lock()

    # the check-fingerprint index ----------------------------------------------------------

    @property
    def check_index(self) -> CheckIndex:
        """The index of stored check fingerprints, opened (and caught up) on first use."""
        with self._index_lock:
            if self._check_index is None:
                index = CheckIndex(
                    self.engine,
                    self.screener.signals.available,
                    self.screener.settings.index_dir / "checks",
                )
                index.open()
                self._check_index = index
            return self._check_index

    def checks_stored(self) -> None:
        """Bring the index in step with checks just stored (if it is open)."""
        if self._check_index is not None:
            self._check_index.catch_up()

    # the worker ---------------------------------------------------------------------------

    def start_jobs(self) -> int:
        """Start the worker thread and hand it every job a crash left queued or running,
        the measures of notices left without a job, and, with retention set, an ageing-out;
        returns how many jobs it was handed."""
        if self.worker is not None:
            return 0
        _ = self.check_index  # opened (caught up, or rebuilt) now, then kept in step
        self.worker = JobWorker(
            self.run_job, self._retention_due, self.screener.settings.retention_every_hours * 3600
        )
        waiting = self.live_jobs()
        for job_id in waiting:
            self.worker.submit(job_id)
        return len(waiting)

    def stop_jobs(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.close()
        if self._check_index is not None:
            self._check_index.save()

    def live_jobs(self) -> list[str]:
        """Jobs queued or running (oldest first), with a retention job added when due."""
        with Session(self.engine) as session:
            ids = list(
                session.scalars(
                    select(JobRow.id)
                    .where(JobRow.state.in_(LIVE))
                    .order_by(JobRow.created_at, JobRow.id)
                )
            )
        due = self._retention_due()
        return [*ids, due] if due is not None and due not in ids else ids

    def _retention_due(self) -> str | None:
        if self.screener.settings.check_retention_days <= 0:
            return None
        with Session(self.engine) as session, session.begin():
            live = session.scalar(
                select(JobRow.id).where(JobRow.kind == "retention", JobRow.state.in_(LIVE))
            )
            return live or self.new_job(session, "retention")

    def new_job(
        self, session: Session, kind: str, *, notice_id: str | None = None, owner: str | None = None
    ) -> str:
        job_id = new_id("job")
        session.add(
            JobRow(
                id=job_id,
                kind=kind,
                notice_id=notice_id,
                owner=owner,
                state="queued",
                done=0,
                total=0,
                created_at=now(),
            )
        )
        session.flush()
        return job_id

    def dispatch(self, job_id: str) -> None:
        """Hand ``job_id`` to the worker, or run it here where there is none."""
        if self.worker is not None:
            self.worker.submit(job_id)
        else:
            self.run_job(job_id)

    def run_job(self, job_id: str) -> None:
        """Run one job from the start; a failure is recorded on it (and raised)."""
        with Session(self.engine) as session, session.begin():
            row = session.get(JobRow, job_id)
            if row is None or row.state not in LIVE:
                return
            row.state, row.started_at, row.done, row.total = "running", now(), 0, 0
            kind, notice_id = row.kind, row.notice_id
        try:
            if kind == "notice":
                assert notice_id is not None
                self.run_notice_job(job_id, notice_id)
            else:
                self.age_out(job_id)
        except Exception as exc:
            with Session(self.engine) as session, session.begin():
                row = session.get(JobRow, job_id)
                if row is not None:
                    row.state, row.finished_at = "failed", now()
                    row.error = f"{type(exc).__name__}: {exc}"
            raise

    def run_notice_job(self, job_id: str, notice_id: str) -> None:
        raise NotImplementedError  # NoticeDuties takes the measures

    def progress(self, job_id: str, done: int, total: int) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(JobRow, job_id)
            if row is not None:
                row.done, row.total = done, total

    @staticmethod
    def finish(session: Session, job_id: str, result: dict[str, Any], done: int) -> None:
        """Mark ``job_id`` done in ``session`` (the transaction that records its result)."""
        row = session.get(JobRow, job_id)
        assert row is not None
        row.state, row.finished_at, row.result, row.error = "done", now(), result, None
        row.done = row.total = done

    # reading --------------------------------------------------------------------------------

    def get_job(self, key: ApiKey, job_id: str) -> Job:
        """A job as ``key`` may see it: operators every job, a rights holder the jobs of
        its own notices (with a check's fields its role may not see left out); anyone
        else, and an id that names nothing, gets the same `NotFound`."""
        with Session(self.engine) as session:
            row = session.get(JobRow, job_id) if is_plain_id(job_id, 40) else None
            if row is None or not self._may_read(key, row.owner):
                raise NotFound(f"no job {quote(job_id)}")
            found = job(row)
        return self._job_for(key, found)

    def _job_for(self, key: ApiKey, item: Job) -> Job:
        """``item`` as ``key`` may see it, with the checks found by image it may open."""
        found = redaction.found_in_measures(item.result or {})
        own = redaction.rule_for(key).own_works_only
        readable = self.readable_checks(key, sorted(found)) if own and found else set()
        return redact_job(key, item, readable)

    @staticmethod
    def _may_read(key: ApiKey, owner: str | None) -> bool:
        if key.role in (Role.OPERATOR, Role.ADMIN):
            return True
        return key.role == Role.RIGHTS_HOLDER and owner is not None and owner == key.owner

    def job_of_notice(self, key: ApiKey, notice_id: str) -> dict[str, Any] | None:
        """The latest job of a notice ``key`` may already read, as it may see it."""
        with Session(self.engine) as session:
            row = session.scalars(
                select(JobRow)
                .where(JobRow.notice_id == notice_id)
                .order_by(JobRow.created_at.desc(), JobRow.id.desc())
                .limit(1)
            ).first()
            found = job(row) if row is not None else None
        return None if found is None else self._job_for(key, found).to_dict()

    # retention ------------------------------------------------------------------------------

    def age_out(self, job_id: str | None = None) -> dict[str, Any]:
        """Delete the stored fingerprints of checks older than the retention period, then
        their index entries; the checks' verdict records stay. Returns what was removed."""
        days = self.screener.settings.check_retention_days
        cutoff = now() - dt.timedelta(days=days)
        removed: dict[str, list[int]] = {}
        total = 0
        while days > 0:
            with Session(self.engine) as session, session.begin():
                rows = session.execute(
                    select(CheckFingerprintRow.id, CheckFingerprintRow.signal)
                    .join(CheckRow, CheckRow.id == CheckFingerprintRow.check_id)
                    .where(CheckRow.created_at < cutoff)
                    .order_by(CheckFingerprintRow.id)
                    .limit(_AGE_OUT_BATCH)
                ).all()
                if not rows:
                    break
                session.execute(
                    delete(CheckFingerprintRow).where(
                        CheckFingerprintRow.id.in_([int(r[0]) for r in rows])
                    )
                )
            for fid, signal in rows:
                removed.setdefault(signal, []).append(int(fid))
            total += len(rows)
            if job_id is not None:
                self.progress(job_id, total, total)
        index = self.check_index
        for signal, ids in removed.items():
            index.remove(signal, ids)
        index.save()
        result = {
            "retention_days": days,
            "before": cutoff.isoformat(),
            "fingerprints_removed": total,
        }
        with Session(self.engine) as session, session.begin():
            self.audit.lock(session)
            if job_id is not None:
                self.finish(session, job_id, result, total)
            if total:
                self.audit.append_in(session, "service", "checks.age_out", job_id or "", result)
        return result


def redact_job(key: ApiKey, item: Job, readable: Collection[str] = ()) -> Job:
    """A job as ``key`` may see it: its result as the notice's measures show them
    (:func:`redaction.redact_measures`: no check found by image that ``key`` may not open,
    ``readable`` being those it may, and the affected checks without the fields its role
    may not see)."""
    if not item.result:
        return item
    return Job(
        **{**item.__dict__, "result": redaction.redact_measures(key, dict(item.result), readable)}
    )
