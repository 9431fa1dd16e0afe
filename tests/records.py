"""Accuracy records made by hand, for tests of fitting and rescoring."""

from __future__ import annotations

from screener.bench import accuracy


def one_pair(group: str, truth: str | None, values: dict[str, float | None]) -> accuracy.Record:
    """A query of ``group`` with one candidate work, ``w``: a clean copy of it where
    ``truth`` is given, an untouched unrelated image where it is None."""
    category = "clean" if truth else "untouched"
    return accuracy.Record(
        f"{group}-x", category, group, truth, values, 0.0, None, "allow", 0.01, (("w", values),)
    )
