"""Policies put into force while the service runs: validated, compared with the one in
force, kept (with the version they replaced) so that a restart keeps them.

A policy file given in the settings still rules: a stored policy is restored at start only
while the configured policy is the one it replaced, so that deploying a new file is never
silently overridden by an older upload.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from screener.core import policy as policy_mod
from screener.core.errors import PolicyError
from screener.core.policy import Policy
from screener.store.catalog import Base

POLICY_TABLES = ("policy_versions",)
MAX_POLICY_BYTES = 256 * 1024


class PolicyVersionRow(Base):
    __tablename__ = "policy_versions"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(200))
    replaced_version: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True)
class Change:
    """One setting that differs: its dotted path and both values (None: absent)."""

    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class PolicyPreview:
    current: Policy
    proposed: Policy
    changes: tuple[Change, ...]
    text: str


def read(data: bytes | str, source: str = "the uploaded policy") -> tuple[Policy, str]:
    """Parse an uploaded policy (YAML or JSON, UTF-8); a `PolicyError` says why not."""
    if isinstance(data, bytes):
        if len(data) > MAX_POLICY_BYTES:
            raise PolicyError(f"{source} is larger than {MAX_POLICY_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError(f"{source} is not UTF-8 text") from None
    else:
        text = data
    if not text.strip():
        raise PolicyError(f"{source} is empty")
    return policy_mod.loads(text, source), text


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        if not value and prefix:
            flat[prefix] = {}
        return flat
    return {prefix: value}


def compare(current: Policy, proposed: Policy) -> tuple[Change, ...]:
    """Every setting that differs, in a stable order."""
    before, after = _flatten(current.to_dict()), _flatten(proposed.to_dict())
    return tuple(
        Change(path, before.get(path), after.get(path))
        for path in sorted(set(before) | set(after))
        if before.get(path) != after.get(path)
    )


def runtime_problem(current: Policy, proposed: Policy) -> str | None:
    """Why ``proposed`` cannot replace ``current`` in a running service, if it cannot."""
    if proposed.version == current.version:
        return f"the new policy has the same version ({current.version!r}) as the one in force"
    if proposed.matching.region_min_quality != current.matching.region_min_quality:
        return (
            "matching.region_min_quality is read when the models load: change it in the "
            "policy file and restart"
        )
    return None
