"""API keys: creation, authentication, revocation, secrecy, roles and their audit trail."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from screener.core.errors import AuthError, Forbidden, InputError, NotFound
from screener.store.audit import AuditLog
from screener.store.catalog import Catalog
from screener.store.keys import (
    INVALID_KEY,
    ApiKey,
    KeyStore,
    Role,
    acts_for,
    can_manage_work,
    can_read_work,
    check_owner,
    require_role,
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "c.sqlite3"


@pytest.fixture
def catalog(db: Path) -> Iterator[Catalog]:
    catalog = Catalog(f"sqlite:///{db}")
    yield catalog
    catalog.close()


@pytest.fixture
def audit(catalog: Catalog) -> AuditLog:
    return AuditLog(catalog.engine)


@pytest.fixture
def store(catalog: Catalog, audit: AuditLog) -> KeyStore:
    return KeyStore(catalog.engine, audit)


def test_create_returns_the_key_once_and_authenticates(store: KeyStore) -> None:
    key, key_string = store.create(Role.RIGHTS_HOLDER, "acme", "upload bot", actor="admin-1")
    match = re.fullmatch(r"sk_(k_[a-z2-7]{8})_([A-Za-z0-9_-]{43})", key_string)
    assert match is not None
    assert match.group(1) == key.id
    assert key.owner == "acme"
    assert key.role is Role.RIGHTS_HOLDER
    assert key.description == "upload bot"
    assert key.revoked_at is None
    assert not key.revoked
    assert key.created_at.tzinfo is not None
    assert store.authenticate(key_string) == key
    assert store.get(key.id) == key


def test_only_a_hash_of_the_secret_is_stored(store: KeyStore, catalog: Catalog, db: Path) -> None:
    key, key_string = store.create("platform", "gen-co")
    secret = key_string[len(f"sk_{key.id}_") :]
    assert key_string == f"sk_{key.id}_{secret}"
    store.authenticate(key_string)
    # Every value of every row of every table, and the raw database files.
    with closing(sqlite3.connect(db)) as connection:
        tables = [
            t for (t,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        values = [
            repr(r) for t in tables for r in connection.execute(f'SELECT * FROM "{t}"').fetchall()
        ]
        stored = connection.execute(
            "SELECT secret_hash, salt FROM api_keys WHERE id = ?", (key.id,)
        ).fetchone()
    assert stored is not None
    assert len(stored[0]) == 64
    assert len(stored[1]) == 32
    assert not any(secret in value for value in values)
    catalog.close()
    for path in db.parent.iterdir():
        if path.name.startswith(db.name):
            assert secret.encode() not in path.read_bytes()


def test_failures_all_look_the_same(store: KeyStore) -> None:
    key, key_string = store.create(Role.PLATFORM, "gen-co")
    other, other_string = store.create(Role.PLATFORM, "gen-co")
    store.revoke(other.id)
    wrong_secret = key_string[:-1] + ("A" if key_string[-1] != "A" else "B")
    unknown_id = "sk_k_aaaaaaaa_" + key_string[14:]
    assert unknown_id != key_string
    swapped = f"sk_{other.id}_{key_string[14:]}"
    attempts: list[Any] = [
        wrong_secret,
        unknown_id,
        swapped,
        other_string,  # revoked
        "",
        None,
        12345,
        b"sk_" + key_string[3:].encode(),
        "sk_",
        "Bearer " + key_string,
        key_string + "x",
        key_string[:-1],
        key_string.upper(),
        " " + key_string,
        key_string + "\n",
    ]
    for attempt in attempts:
        with pytest.raises(AuthError) as raised:
            store.authenticate(attempt)
        assert str(raised.value) == INVALID_KEY
        assert raised.value.code == "unauthorized"
    assert store.authenticate(key_string) == key


def test_revoke(store: KeyStore) -> None:
    key, key_string = store.create(Role.OPERATOR, "trust-and-safety")
    revoked = store.revoke(key.id, actor="admin-1")
    assert revoked.revoked
    assert revoked.revoked_at is not None
    assert revoked.revoked_at.tzinfo is not None
    assert store.revoke(key.id) == revoked  # idempotent
    with pytest.raises(AuthError):
        store.authenticate(key_string)
    with pytest.raises(NotFound):
        store.revoke("k_aaaaaaaa")
    with pytest.raises(NotFound):
        store.get("k_aaaaaaaa")


def test_list_and_reprs_never_show_secrets(store: KeyStore) -> None:
    a, a_string = store.create(Role.RIGHTS_HOLDER, "acme")
    b, b_string = store.create(Role.PLATFORM, "gen-co")
    c, _ = store.create(Role.RIGHTS_HOLDER, "acme")
    store.revoke(c.id)
    assert [k.id for k in store.list()] == [a.id, b.id, c.id]
    assert {k.id for k in store.list(owner="acme")} == {a.id, c.id}
    assert [k.id for k in store.list(owner="acme", include_revoked=False)] == [a.id]
    assert store.list(owner="nobody") == []
    shown = repr(store.list()) + str(store.list()) + repr(a) + str(b)
    for key_string in (a_string, b_string):
        assert key_string[14:] not in shown
        assert key_string not in shown
    assert "hash" not in shown
    assert "salt" not in shown


@pytest.mark.parametrize(
    ("role", "owner", "description"),
    [
        ("superuser", "acme", ""),
        ("", "acme", ""),
        (Role.ADMIN, "", ""),
        (Role.ADMIN, "   ", ""),
        (Role.ADMIN, "a" * 201, ""),
        (Role.ADMIN, "ac\x00me", ""),
        (Role.ADMIN, "acme", "d" * 1001),
    ],
)
def test_bad_keys_are_refused(
    store: KeyStore, audit: AuditLog, role: str, owner: str, description: str
) -> None:
    with pytest.raises(InputError):
        store.create(role, owner, description)
    assert store.list() == []
    assert audit.records() == []


def test_create_and_revoke_are_audited(store: KeyStore, audit: AuditLog) -> None:
    key, key_string = store.create(Role.ADMIN, "ops", "break glass", actor="cli")
    store.revoke(key.id, actor="k_bbbbbbbb")
    store.revoke(key.id, actor="k_bbbbbbbb")  # already revoked: no second record
    records = audit.records()
    assert [(r.action, r.subject, r.actor) for r in records] == [
        ("key.create", key.id, "cli"),
        ("key.revoke", key.id, "k_bbbbbbbb"),
    ]
    assert records[0].payload == {
        "key_id": key.id,
        "owner": "ops",
        "role": "admin",
        "description": "break glass",
    }
    assert records[1].payload == {"key_id": key.id, "owner": "ops", "role": "admin"}
    assert key_string[14:] not in repr(records)
    assert audit.position(key.id) == 2
    assert audit.verify().ok


def test_a_failed_audit_append_undoes_the_key(
    store: KeyStore, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("audit down")

    key, _ = store.create(Role.PLATFORM, "gen-co")
    monkeypatch.setattr(audit, "append_in", fail)
    with pytest.raises(RuntimeError):
        store.create(Role.PLATFORM, "gen-co")
    with pytest.raises(RuntimeError):
        store.revoke(key.id)
    assert [k.id for k in store.list()] == [key.id]
    assert not store.get(key.id).revoked


def test_a_store_without_audit_log(catalog: Catalog) -> None:
    store = KeyStore(catalog.engine)
    key, key_string = store.create(Role.PLATFORM, "gen-co")
    assert store.authenticate(key_string) == key
    assert store.revoke(key.id).revoked


# authorisation ---------------------------------------------------------------------------


def make_key(role: Role, owner: str = "acme", *, revoked: bool = False) -> ApiKey:
    now = dt.datetime.now(dt.UTC)
    return ApiKey("k_aaaaaaaa", owner, role, now, now if revoked else None, "")


def test_require_role() -> None:
    platform = make_key(Role.PLATFORM)
    require_role(platform, Role.PLATFORM, Role.ADMIN)
    require_role(platform, "platform")
    with pytest.raises(Forbidden) as raised:
        require_role(platform, Role.OPERATOR, Role.ADMIN)
    assert raised.value.code == "forbidden"
    with pytest.raises(Forbidden):
        require_role(make_key(Role.ADMIN), Role.OPERATOR)  # no implicit hierarchy
    with pytest.raises(Forbidden):
        require_role(make_key(Role.PLATFORM, revoked=True), Role.PLATFORM)
    with pytest.raises(Forbidden):
        require_role(platform)


@pytest.mark.parametrize(
    ("role", "key_owner", "work_owner", "allowed"),
    [
        (Role.RIGHTS_HOLDER, "acme", "acme", True),
        (Role.RIGHTS_HOLDER, "acme", "other", False),
        (Role.PLATFORM, "acme", "acme", False),
        (Role.PLATFORM, "gen-co", "acme", False),
        (Role.OPERATOR, "ts", "acme", True),
        (Role.ADMIN, "ops", "acme", True),
    ],
)
def test_work_access(role: Role, key_owner: str, work_owner: str, allowed: bool) -> None:
    key = make_key(role, key_owner)
    assert can_read_work(key, work_owner) is allowed
    assert can_manage_work(key, work_owner) is allowed
    revoked = make_key(role, key_owner, revoked=True)
    assert not can_read_work(revoked, work_owner)
    assert not can_manage_work(revoked, work_owner)


def test_check_owner() -> None:
    check_owner(make_key(Role.PLATFORM, "gen-co"), "gen-co")
    check_owner(make_key(Role.RIGHTS_HOLDER, "acme"), "acme")
    check_owner(make_key(Role.OPERATOR, "ts"), "acme")
    check_owner(make_key(Role.ADMIN, "ops"), "acme")
    assert acts_for(make_key(Role.ADMIN, "ops"), "anyone")
    for key in (
        make_key(Role.RIGHTS_HOLDER, "acme"),
        make_key(Role.PLATFORM, "gen-co"),
        make_key(Role.RIGHTS_HOLDER, "other", revoked=True),
    ):
        with pytest.raises(Forbidden):
            check_owner(key, "other")
