"""API keys: who is calling (an owner), with which role, and what that role may do.

A key string is ``sk_<id>_<secret>``: ``id`` is public (``k_`` and 8 base32 characters),
``secret`` is ``secrets.token_urlsafe(32)`` (256 random bits). Only a salted hash of the
secret is stored (HMAC-SHA256 keyed by a per-key random salt): the secrets are random and
long, so a deliberately slow password hash would add latency to every request and no
protection. The full string is returned once, by :meth:`KeyStore.create`.

Roles and what the helpers below let them do (no implicit hierarchy: ``require_role``
checks membership only, so name every role an action allows):

- ``platform``: a generator of images; runs checks and reads its own checks. It does not
  read or manage work records: the titles of matched works reach it in check results only.
- ``rights_holder``: registers, reads and removes its own works (``key.owner`` equals the
  work's owner), files notices.
- ``operator``: reviews; reads and manages every owner's works.
- ``admin``: everything an operator can, and manages keys.

Key creation and revocation are written to the audit log (when the store has one) in the
same transaction as the key change.
"""

from __future__ import annotations

import base64
import builtins
import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import DateTime, String, Text, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from screener.core.errors import AuthError, Forbidden, InputError, NotFound, is_plain_id, quote
from screener.store.audit import AuditLog, ensure_tables
from screener.store.catalog import Base

KEY_PREFIX = "sk_"
MAX_OWNER = 200
MAX_DESCRIPTION = 1000
MAX_DISPLAY_NAME = 200
INVALID_KEY = "invalid or revoked API key"
_KEY_RE = re.compile(r"sk_(k_[a-z2-7]{8})_([A-Za-z0-9_-]{43})")
_HASH_CONTEXT = b"screener.api-key.v1\x00"
_DUMMY_SALT = bytes(16)


class Role(StrEnum):
    PLATFORM = "platform"
    RIGHTS_HOLDER = "rights_holder"
    OPERATOR = "operator"
    ADMIN = "admin"


_ALL_OWNERS = frozenset({Role.OPERATOR, Role.ADMIN})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives back naive datetimes; every stored one is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner: Mapped[str] = mapped_column(String(MAX_OWNER), index=True)
    role: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str] = mapped_column(String(64))
    salt: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")


class OwnerProfileRow(Base):
    """What end users are told an owner is called (risk prompts name the rights holder):
    a display name instead of the account name the keys carry."""

    __tablename__ = "owner_profiles"
    owner: Mapped[str] = mapped_column(String(MAX_OWNER), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(MAX_DISPLAY_NAME))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class ApiKey:
    """A key's public facts; it holds neither the secret nor its hash."""

    id: str
    owner: str
    role: Role
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    description: str

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        owner=row.owner,
        role=Role(row.role),
        created_at=_aware(row.created_at),
        revoked_at=None if row.revoked_at is None else _aware(row.revoked_at),
        description=row.description or "",
    )


def _hash_secret(salt: bytes, secret: str) -> str:
    return hmac.new(salt, _HASH_CONTEXT + secret.encode("utf-8"), hashlib.sha256).hexdigest()


def _new_id() -> str:
    return "k_" + base64.b32encode(secrets.token_bytes(5)).decode("ascii").lower()


def _text(name: str, value: object, limit: int, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise InputError(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise InputError(f"{name} is longer than {limit} characters")
    if any(ch < " " and ch not in "\t\n" for ch in value):
        raise InputError(f"{name} contains control characters")
    return value


def _role(role: object) -> Role:
    try:
        if not isinstance(role, str):
            raise ValueError(role)
        return Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InputError(f"unknown role {quote(role)}; expected one of {allowed}") from None


class KeyStore:
    """Create, authenticate, list and revoke API keys stored through ``engine``."""

    def __init__(self, engine: Engine, audit: AuditLog | None = None) -> None:
        self.engine = engine
        self.audit = audit
        ensure_tables(engine, ("api_keys", "owner_profiles"))

    def _begin(self, session: Session) -> None:
        if self.audit is not None:
            self.audit.lock(session)  # first, so the key change and its record serialise

    def _record(
        self, session: Session, actor: str, action: str, key_id: str, payload: dict[str, object]
    ) -> None:
        """Audit a key change inside its transaction (nothing without an audit log)."""
        if self.audit is not None:
            self.audit.append_in(session, actor, action, key_id, payload)

    def create(
        self, role: Role | str, owner: str, description: str = "", *, actor: str = "cli"
    ) -> tuple[ApiKey, str]:
        """Store a new key; returns it and the full key string, which is never shown again."""
        role = _role(role)
        owner = _text("owner", owner, MAX_OWNER)
        description = _text("description", description, MAX_DESCRIPTION, empty=True)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        with Session(self.engine) as session, session.begin():
            self._begin(session)
            key_id = _new_id()
            while session.get(ApiKeyRow, key_id) is not None:  # 40 random bits: rare
                key_id = _new_id()
            row = ApiKeyRow(
                id=key_id,
                owner=owner,
                role=role.value,
                secret_hash=_hash_secret(salt, secret),
                salt=salt.hex(),
                created_at=_now(),
                revoked_at=None,
                description=description,
            )
            session.add(row)
            session.flush()
            key = _key(row)
            self._record(
                session,
                actor,
                "key.create",
                key_id,
                {"key_id": key_id, "owner": owner, "role": role.value, "description": description},
            )
        return key, f"{KEY_PREFIX}{key_id}_{secret}"

    def authenticate(self, key_string: object) -> ApiKey:
        """The key a full key string names; :class:`AuthError` for anything else.

        The error is the same for a missing, malformed, unknown, revoked or wrong key, and
        an unknown id costs the same hash and comparison as a wrong secret.
        """
        match = _KEY_RE.fullmatch(key_string) if isinstance(key_string, str) else None
        if match is None:
            raise AuthError(INVALID_KEY)
        key_id, secret = match.groups()
        with Session(self.engine) as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                hmac.compare_digest(_hash_secret(_DUMMY_SALT, secret), "0" * 64)
                raise AuthError(INVALID_KEY)
            try:
                salt = bytes.fromhex(row.salt)
            except ValueError:
                raise AuthError(INVALID_KEY) from None
            good = hmac.compare_digest(_hash_secret(salt, secret), row.secret_hash)
            if not good or row.revoked_at is not None:
                raise AuthError(INVALID_KEY)
            return _key(row)

    def revoke(self, key_id: str, *, actor: str = "cli") -> ApiKey:
        """Revoke a key (idempotent: revoking a revoked key changes and records nothing)."""
        if not is_plain_id(key_id, 16):
            raise NotFound(f"no API key {quote(key_id)}")
        with Session(self.engine) as session, session.begin():
            self._begin(session)
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound(f"no API key {quote(key_id)}")
            if row.revoked_at is not None:
                return _key(row)
            row.revoked_at = _now()
            session.flush()
            key = _key(row)
            self._record(
                session,
                actor,
                "key.revoke",
                key_id,
                {"key_id": key_id, "owner": row.owner, "role": row.role},
            )
        return key

    def get(self, key_id: str) -> ApiKey:
        with Session(self.engine) as session:
            row = session.get(ApiKeyRow, key_id) if is_plain_id(key_id, 16) else None
            if row is None:
                raise NotFound(f"no API key {quote(key_id)}")
            return _key(row)

    def list(
        self, owner: str | None = None, *, include_revoked: bool = True
    ) -> builtins.list[ApiKey]:
        """Keys (oldest first), of one owner if given; never secrets or hashes."""
        query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        if owner is not None:
            if not is_plain_id(owner, MAX_OWNER):
                return []  # no key has such an owner (creation refuses one)
            query = query.where(ApiKeyRow.owner == owner)
        if not include_revoked:
            query = query.where(ApiKeyRow.revoked_at.is_(None))
        with Session(self.engine) as session:
            return [_key(row) for row in session.scalars(query)]

    def set_display_name(self, owner: str, display_name: str, *, actor: str = "cli") -> str:
        """Name ``owner`` for end users (an empty name removes it; the account name is
        shown again). Returns the name now in force."""
        if not is_plain_id(owner, MAX_OWNER):
            raise InputError("owner must be 1-200 characters, without control characters")
        name = _text("display name", display_name, MAX_DISPLAY_NAME, empty=True).strip()
        with Session(self.engine) as session, session.begin():
            self._begin(session)
            row = session.get(OwnerProfileRow, owner)
            if not name:
                if row is not None:
                    session.delete(row)
            elif row is None:
                session.add(OwnerProfileRow(owner=owner, display_name=name, updated_at=_now()))
            else:
                row.display_name, row.updated_at = name, _now()
            self._record(session, actor, "owner.display_name", owner, {"display_name": name})
        return name or owner

    def display_names(self, owners: Iterable[str]) -> dict[str, str]:
        """The display names set for ``owners`` (those without one are left out)."""
        wanted = sorted({o for o in owners if o})
        if not wanted:
            return {}
        with Session(self.engine) as session:
            rows = session.scalars(select(OwnerProfileRow).where(OwnerProfileRow.owner.in_(wanted)))
            return {r.owner: r.display_name for r in rows}


# authorisation (pure) ------------------------------------------------------------------------


def require_role(key: ApiKey, *roles: Role | str) -> None:
    """Raise :class:`Forbidden` unless the key has one of ``roles`` (and is not revoked)."""
    if key.revoked or key.role not in roles:
        wanted = " or ".join(str(r) for r in roles) or "(none)"
        raise Forbidden(f"this needs a key with role {wanted}; key {key.id} is {key.role}")


def acts_for(key: ApiKey, owner: str) -> bool:
    """Whether the key may act for ``owner``: its own owner, or any owner for operator/admin."""
    return not key.revoked and (key.role in _ALL_OWNERS or key.owner == owner)


def check_owner(key: ApiKey, owner: str) -> None:
    """Raise :class:`Forbidden` unless :func:`acts_for`. Checks ownership only: pair it with
    :func:`require_role` (or use :func:`can_read_work`/:func:`can_manage_work` for works)."""
    if not acts_for(key, owner):
        raise Forbidden(f"key {key.id} may not act for owner {quote(owner)}")


def can_read_work(key: ApiKey, work_owner: str) -> bool:
    """Operators and admins read every work, rights holders their own, platforms none."""
    if key.revoked:
        return False
    if key.role in _ALL_OWNERS:
        return True
    return key.role == Role.RIGHTS_HOLDER and key.owner == work_owner


def can_manage_work(key: ApiKey, work_owner: str) -> bool:
    """Register, change or remove a work: the same rule as reading, today."""
    return can_read_work(key, work_owner)
