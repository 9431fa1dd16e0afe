"""Accuracy records made by hand, for tests of fitting and rescoring."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from screener.bench import accuracy


def one_pair(group: str, truth: str | None, values: dict[str, float | None]) -> accuracy.Record:
    """A query of ``group`` with one candidate work, ``w``: a clean copy of it where
    ``truth`` is given, an untouched unrelated image where it is None."""
    category = "clean" if truth else "untouched"
    return accuracy.Record(
        f"{group}-x", category, group, truth, values, 0.0, None, "allow", 0.01, (("w", values),)
    )


def agreement_records(
    seed: int, unrelated_agreement: Callable[[int, np.random.Generator], float | None]
) -> list[accuracy.Record]:
    """200 copies (SSCD 0.6-1.0, aligned agreement 0.95) and 2,000 unrelated images (SSCD
    -0.2-0.5, the agreement ``unrelated_agreement(i, rng)`` gives the i-th): records
    that the agreement separates perfectly, for fits that must not weigh it."""
    rng = np.random.default_rng(seed)
    copies = [
        one_pair(f"p{i}", "w", {"sscd_cosine": float(rng.uniform(0.6, 1.0)),
                               "aligned_agreement": 0.95})
        for i in range(200)
    ]  # fmt: skip
    unrelated = [
        one_pair(f"n{i}", None, {"sscd_cosine": float(rng.uniform(-0.2, 0.5)),
                                "aligned_agreement": unrelated_agreement(i, rng)})
        for i in range(2000)
    ]  # fmt: skip
    return copies + unrelated
