"""The hash-chained audit log: appends, tamper detection, concurrency, transactions."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from screener.core.errors import InputError, NotFound, ScreenerError
from screener.store.audit import GENESIS_HASH, Anchor, AuditLog, chain_hash
from screener.store.catalog import Catalog, MetaRow, make_engine

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    catalog = Catalog(f"sqlite:///{tmp_path}/c.sqlite3")
    yield catalog
    catalog.close()


@pytest.fixture
def log(catalog: Catalog) -> AuditLog:
    return AuditLog(catalog.engine)


def fill(log: AuditLog, n: int = 5) -> None:
    for i in range(1, n + 1):
        log.append("cli", "work.register", f"work-{i}", {"n": i, "title": f"Wörk {i}"})


def sql(engine: Engine, statement: str, **params: Any) -> None:
    with engine.begin() as connection:
        connection.execute(text(statement), params)


def row(engine: Engine, seq: int) -> dict[str, Any]:
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT * FROM audit_log WHERE seq = :seq"), {"seq": seq}
        ).one()
    return dict(found._mapping)


# appending and reading ---------------------------------------------------------------------


def test_append_then_verify(log: AuditLog) -> None:
    assert log.verify().ok
    assert log.head() == Anchor(0, GENESIS_HASH)
    first = log.append("k_abcdefgh", "check", "chk-1", {"decision": "allow", "n": [1, 2]})
    assert first.seq == 1
    assert first.prev_hash == GENESIS_HASH
    assert first.at.tzinfo is not None
    assert first.payload == {"decision": "allow", "n": [1, 2]}
    fill(log, 9)
    report = log.verify()
    assert report.ok
    assert report.count == 10
    assert report.broken_at is None
    assert report.reason is None
    last = log.get(10)
    assert (report.head_seq, report.head_hash) == (10, last.hash)
    assert log.head() == Anchor(10, last.hash)
    assert log.get(1) == first
    assert log.get(2).prev_hash == first.hash


def test_records_pages_and_position(log: AuditLog) -> None:
    fill(log, 7)
    log.append("owner-a", "work.remove", "work-3", {})
    page = log.records(after=2, limit=3)
    assert [r.seq for r in page] == [3, 4, 5]
    assert [r.seq for r in log.records(after=page[-1].seq, limit=100)] == [6, 7, 8]
    assert log.records(after=8) == []
    assert log.position("work-3") == 8
    assert log.position("work-3", action="work.register") == 3
    assert log.position("work-3", action="notice.file") is None
    assert log.position("nothing") is None
    with pytest.raises(NotFound):
        log.get(99)
    with pytest.raises(InputError):
        log.records(limit=0)


def test_payload_is_stored_canonically(log: AuditLog, catalog: Catalog) -> None:
    log.append("cli", "check", "c", {"b": 1, "a": {"z": "é", "y": None}})
    assert row(catalog.engine, 1)["payload"] == '{"a":{"y":null,"z":"é"},"b":1}'


@pytest.mark.parametrize(
    ("actor", "action", "subject", "payload"),
    [
        ("", "check", "s", {}),
        ("cli", "", "s", {}),
        ("cli", "check", "", {}),
        ("x" * 201, "check", "s", {}),
        ("cli", "check", "s\x00", {}),
        ("cli", "check", "s", [1, 2]),
        ("cli", "check", "s", {"x": float("nan")}),
        ("cli", "check", "s", {"x": object()}),
        ("cli", "check", "s", {"x": "\ud800"}),
        ("cli", "check", "s", {"x": "y" * 300_000}),
    ],
)
def test_bad_records_are_refused(
    log: AuditLog, actor: str, action: str, subject: str, payload: Any
) -> None:
    with pytest.raises(InputError):
        log.append(actor, action, subject, payload)
    assert log.records() == []
    assert log.verify().ok


def test_batches_do_not_change_the_result(log: AuditLog) -> None:
    fill(log, 10)
    for batch in (1, 3, 10, 11):
        report = log.verify(batch=batch)
        assert report.ok
        assert report.count == 10


# tampering ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("payload", '{"n":99,"title":"Wörk 3"}'),
        ("payload", '{"n": 3, "title": "Wörk 3"}'),  # same JSON value, other bytes
        ("actor", "mallory"),
        ("action", "work.remove"),
        ("subject", "work-9"),
        ("at", "2001-01-01T00:00:00.000000+00:00"),
    ],
)
def test_an_edited_row_breaks_at_its_seq(
    log: AuditLog, catalog: Catalog, column: str, value: str
) -> None:
    fill(log)
    sql(catalog.engine, f"UPDATE audit_log SET {column} = :v WHERE seq = 3", v=value)
    report = log.verify()
    assert not report.ok
    assert report.broken_at == 3
    assert report.count == 2
    assert report.reason is not None
    assert "hash mismatch" in report.reason


def test_an_edited_and_rehashed_row_breaks_the_next_link(log: AuditLog, catalog: Catalog) -> None:
    fill(log)
    old = row(catalog.engine, 3)
    new_hash = chain_hash(
        old["prev_hash"], 3, old["at"], "mallory", old["action"], old["subject"], old["payload"]
    )
    sql(
        catalog.engine,
        "UPDATE audit_log SET actor = 'mallory', hash = :h WHERE seq = 3",
        h=new_hash,
    )
    report = log.verify()
    assert (report.ok, report.broken_at) == (False, 4)
    assert report.reason is not None
    assert "does not link" in report.reason


def test_a_deleted_middle_row_is_a_gap(log: AuditLog, catalog: Catalog) -> None:
    fill(log)
    sql(catalog.engine, "DELETE FROM audit_log WHERE seq = 3")
    report = log.verify()
    assert (report.ok, report.broken_at, report.count) == (False, 3, 2)
    assert report.reason is not None
    assert "missing" in report.reason


def test_a_deleted_and_renumbered_row_breaks_the_link(log: AuditLog, catalog: Catalog) -> None:
    fill(log)
    sql(catalog.engine, "DELETE FROM audit_log WHERE seq = 3")
    sql(catalog.engine, "UPDATE audit_log SET seq = seq - 1 WHERE seq > 3")
    sql(catalog.engine, "UPDATE audit_head SET seq = 4")
    report = log.verify()
    assert (report.ok, report.broken_at) == (False, 3)


def test_a_truncated_tail_is_caught_by_the_head(log: AuditLog, catalog: Catalog) -> None:
    fill(log)
    sql(catalog.engine, "DELETE FROM audit_log WHERE seq >= 4")
    report = log.verify()
    assert (report.ok, report.broken_at, report.count) == (False, 4, 3)
    assert report.reason is not None
    assert "truncated" in report.reason
    assert report.head_seq == 5


def test_truncating_log_and_head_together_needs_an_external_anchor(
    log: AuditLog, catalog: Catalog
) -> None:
    fill(log)
    anchor = log.head()
    assert log.verify(anchor).ok
    kept = row(catalog.engine, 3)["hash"]
    sql(catalog.engine, "DELETE FROM audit_log WHERE seq >= 4")
    sql(catalog.engine, "UPDATE audit_head SET seq = 3, hash = :h", h=kept)
    assert log.verify().ok  # consistent with itself: only the anchor can tell
    report = log.verify(anchor)
    assert (report.ok, report.broken_at) == (False, 4)
    assert report.reason is not None
    assert "anchor" in report.reason


def test_a_rewritten_chain_contradicts_an_external_anchor(log: AuditLog, catalog: Catalog) -> None:
    fill(log, 3)
    anchor = log.head()
    # Rewrite seq 2 and 3 consistently (what someone with database access could do).
    sql(catalog.engine, "DELETE FROM audit_log WHERE seq >= 2")
    sql(
        catalog.engine, "UPDATE audit_head SET seq = 1, hash = :h", h=row(catalog.engine, 1)["hash"]
    )
    log.append("mallory", "work.register", "work-2", {})
    log.append("mallory", "work.register", "work-3", {})
    assert log.verify().ok
    report = log.verify(anchor)
    assert (report.ok, report.broken_at) == (False, 3)


def test_a_forged_row_after_the_head_is_caught(log: AuditLog, catalog: Catalog) -> None:
    fill(log)
    last = row(catalog.engine, 5)
    at = "2030-01-01T00:00:00.000000+00:00"
    forged = chain_hash(last["hash"], 6, at, "cli", "work.remove", "work-1", "{}")
    sql(
        catalog.engine,
        "INSERT INTO audit_log (seq, at, actor, action, subject, payload, prev_hash, hash)"
        " VALUES (6, :at, 'cli', 'work.remove', 'work-1', '{}', :prev, :hash)",
        at=at,
        prev=last["hash"],
        hash=forged,
    )
    report = log.verify()
    assert (report.ok, report.broken_at, report.count) == (False, 6, 6)
    assert report.reason is not None
    assert "head" in report.reason


def test_a_row_replaced_in_the_middle_is_caught(log: AuditLog, catalog: Catalog) -> None:
    fill(log)
    old = row(catalog.engine, 3)
    sql(catalog.engine, "DELETE FROM audit_log WHERE seq = 3")
    forged = chain_hash(old["prev_hash"], 3, old["at"], "cli", "work.remove", "work-3", "{}")
    sql(
        catalog.engine,
        "INSERT INTO audit_log (seq, at, actor, action, subject, payload, prev_hash, hash)"
        " VALUES (3, :at, 'cli', 'work.remove', 'work-3', '{}', :prev, :hash)",
        at=old["at"],
        prev=old["prev_hash"],
        hash=forged,
    )
    report = log.verify()
    assert (report.ok, report.broken_at) == (False, 4)


def test_swapped_rows_are_caught(log: AuditLog, catalog: Catalog) -> None:
    fill(log)
    two, three = row(catalog.engine, 2), row(catalog.engine, 3)
    for seq, other in ((2, three), (3, two)):
        sql(
            catalog.engine,
            "UPDATE audit_log SET at = :at, actor = :actor, action = :action,"
            " subject = :subject, payload = :payload, prev_hash = :prev_hash, hash = :hash"
            " WHERE seq = :seq",
            seq=seq,
            **{k: v for k, v in other.items() if k != "seq"},
        )
    report = log.verify()
    assert (report.ok, report.broken_at) == (False, 2)


def test_a_missing_head_is_reported(log: AuditLog, catalog: Catalog) -> None:
    fill(log, 2)
    sql(catalog.engine, "DELETE FROM audit_head")
    report = log.verify()
    assert (report.ok, report.broken_at) == (False, 1)
    with pytest.raises(ScreenerError, match="head is missing"):
        log.append("cli", "check", "c", {})
    assert not AuditLog(log.engine).verify().ok  # opening it still works, to verify


# transactions and concurrency --------------------------------------------------------------


def test_append_in_rolls_back_with_the_callers_transaction(log: AuditLog) -> None:
    class Boom(Exception):
        pass

    def domain_write_that_fails() -> None:
        with Session(log.engine) as session, session.begin():
            log.lock(session)
            session.add(MetaRow(key="domain", value="write"))
            log.append_in(session, "cli", "work.register", "w", {"x": 1})
            raise Boom

    with pytest.raises(Boom):
        domain_write_that_fails()
    assert log.records() == []
    assert log.head() == Anchor(0, GENESIS_HASH)
    with Session(log.engine) as session:
        assert session.get(MetaRow, "domain") is None
    assert log.append("cli", "check", "c", {}).seq == 1
    assert log.verify().ok


def test_append_in_commits_with_the_callers_write(log: AuditLog) -> None:
    with Session(log.engine) as session, session.begin():
        session.add(MetaRow(key="domain", value="write"))  # a write first: still serialised
        session.flush()
        record = log.append_in(session, "cli", "work.register", "w", {})
    assert log.get(record.seq) == record
    with Session(log.engine) as session:
        assert session.get(MetaRow, "domain") is not None
    assert log.verify().ok


def test_threads_never_fork_the_chain(log: AuditLog) -> None:
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(25):
                log.append(f"thread-{thread}", "check", f"c-{thread}-{i}", {"i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [r.seq for r in log.records(limit=1000)] == list(range(1, 101))
    report = log.verify()
    assert (report.ok, report.count) == (True, 100)


WRITER = """
import sys
from screener.store.audit import AuditLog
from screener.store.catalog import make_engine
log = AuditLog(make_engine(sys.argv[1]))
for i in range(25):
    log.append("proc-" + sys.argv[2], "check", "c-%s-%d" % (sys.argv[2], i), {"i": i})
"""


def test_processes_never_fork_the_chain(log: AuditLog, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.sqlite3"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, str(p)], cwd=REPO_ROOT)
        for p in range(2)
    ]
    for i in range(10):  # and this process at the same time
        log.append("main", "check", f"c-main-{i}", {})
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    records = log.records(limit=1000)
    assert [r.seq for r in records] == list(range(1, 61))
    assert sorted(r.actor for r in records).count("proc-1") == 25
    assert log.verify().ok


def test_postgres_appends_serialise_and_verify(postgres_url: str) -> None:
    """On a real PostgreSQL server (the ``postgres`` fixture): concurrent appends stay one chain."""
    engine = make_engine(postgres_url)
    try:
        log = AuditLog(engine)
        threads = [
            threading.Thread(
                target=lambda t=t: [log.append(f"t{t}", "check", f"c{i}", {}) for i in range(25)]
            )
            for t in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.seq for r in log.records(limit=1000)] == list(range(1, 101))
        assert log.verify(batch=7).ok
        sql(engine, "UPDATE audit_log SET actor = 'x' WHERE seq = 10")
        assert log.verify().broken_at == 10
        sql(engine, "DELETE FROM audit_log WHERE seq >= 10")
        report = log.verify()
        assert report.reason is not None
        assert "truncated" in report.reason
    finally:
        engine.dispose()


# properties --------------------------------------------------------------------------------

TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=12,
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
RECORD = st.tuples(TEXT, TEXT, TEXT, st.dictionaries(TEXT, JSON, max_size=4))
FIELDS = ("at", "actor", "action", "subject", "payload", "prev_hash", "hash")


def memory_log() -> AuditLog:
    return AuditLog(make_engine("sqlite://"), clock=lambda: dt.datetime.now(dt.UTC))


@settings(max_examples=40, deadline=None)
@given(st.lists(RECORD, max_size=12))
def test_any_appends_verify(records: list[tuple[str, str, str, dict[str, Any]]]) -> None:
    log = memory_log()
    for actor, action, subject, payload in records:
        log.append(actor, action, subject, payload)
    report = log.verify(batch=5)
    assert report.ok
    assert report.count == len(records)
    stored = log.records(limit=100)
    assert [(r.actor, r.action, r.subject) for r in stored] == [r[:3] for r in records]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    records=st.lists(RECORD, min_size=1, max_size=4),
    data=st.data(),
)
def test_any_single_byte_change_breaks_the_chain(
    records: list[tuple[str, str, str, dict[str, Any]]], data: st.DataObject
) -> None:
    log = memory_log()
    for actor, action, subject, payload in records:
        log.append(actor, action, subject, payload)
    assert log.verify().ok
    n = len(records)
    target = data.draw(st.sampled_from(["row", "seq", "head_seq", "head_hash"]))
    if target == "seq":
        seq = data.draw(st.integers(1, n))
        new = data.draw(st.integers(-3, n + 3).filter(lambda v: v < 1 or v > n))
        sql(log.engine, "UPDATE audit_log SET seq = :new WHERE seq = :seq", new=new, seq=seq)
    elif target == "head_seq":
        new = data.draw(st.integers(-3, n + 3).filter(lambda v: v != n))
        sql(log.engine, "UPDATE audit_head SET seq = :new", new=new)
    else:
        if target == "head_hash":
            table, column, where = "audit_head", "hash", "id = 1"
        else:
            seq = data.draw(st.integers(1, n))
            table, column, where = "audit_log", data.draw(st.sampled_from(FIELDS)), f"seq = {seq}"
        with log.engine.connect() as connection:
            old: str = connection.execute(
                text(f"SELECT {column} FROM {table} WHERE {where}")
            ).one()[0]
        raw = bytearray(old.encode("utf-8"))
        position = data.draw(st.integers(0, len(raw) - 1))
        value = data.draw(st.integers(0, 255).filter(lambda b: b != raw[position]))
        raw[position] = value
        try:
            changed = raw.decode("utf-8")
        except UnicodeDecodeError:
            assume(False)
            return
        sql(log.engine, f"UPDATE {table} SET {column} = :v WHERE {where}", v=changed)
    report = log.verify()
    assert not report.ok
    assert report.broken_at is not None
