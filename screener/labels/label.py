"""An implicit AI-content label as a value: its fields and how each is checked (see
:mod:`screener.labels.gb45438` for the standard and where a label is stored)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from screener.core.errors import LabelError
from screener.core.text import check_text

MAX_FIELD: Final = 200  # characters in provider, content_id and each extra value
MAX_EXTRA: Final = 20  # entries in extra
MAX_EXTRA_KEY: Final = 64


@dataclass(frozen=True, kw_only=True)
class Label:
    """An implicit AI-content label (see the module docstring for how it is stored)."""

    ai_generated: bool = True
    provider: str  # provider name or code, 1..200 characters
    content_id: str  # content id, 1..200 characters
    produced_at: str | None = None  # ISO 8601; apply() fills in the current UTC time
    extra: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.ai_generated, bool):
            raise LabelError("ai_generated must be true or false.")
        _check_text("provider", self.provider, MAX_FIELD, allow_empty=False)
        _check_text("content_id", self.content_id, MAX_FIELD, allow_empty=False)
        if self.produced_at is not None:
            _check_text("produced_at", self.produced_at, 64, allow_empty=False)
            try:
                datetime.fromisoformat(self.produced_at)
            except ValueError as exc:
                raise LabelError(
                    f"produced_at must be an ISO 8601 date and time, not {self.produced_at!r}."
                ) from exc
        if not isinstance(self.extra, dict):
            raise LabelError("extra must be a mapping of strings to strings.")
        if len(self.extra) > MAX_EXTRA:
            raise LabelError(f"extra has {len(self.extra)} entries; at most {MAX_EXTRA} allowed.")
        for key, value in self.extra.items():
            _check_text("an extra key", key, MAX_EXTRA_KEY, allow_empty=False)
            _check_text(f"extra[{key!r}]", value, MAX_FIELD, allow_empty=True)
        object.__setattr__(self, "extra", dict(self.extra))


@dataclass(frozen=True)
class Labelled:
    """The result of :func:`apply`."""

    data: bytes  # the labelled image bytes
    format: str  # "PNG", "JPEG" or "WEBP"
    media_type: str
    label: Label  # the label as written (produced_at filled in)
    # The font the visible label was drawn with (a file path, or "Pillow default font
    # (Aileron Regular)"); None when no visible label was asked for.
    visible_font: str | None = None
    # The banner's (left, top, right, bottom) in the output image; None without one.
    visible_box: tuple[int, int, int, int] | None = None


def _check_text(name: str, value: object, limit: int, *, allow_empty: bool) -> None:
    check_text(name, value, limit, blank=allow_empty, error=LabelError)
