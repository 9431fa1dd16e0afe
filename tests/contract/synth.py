"""Synthetic fingerprints shaped like the real ones.

Independent gaussians make every neighbour equally far, which flatters approximate
structures and hides bugs; real image embeddings come in tight clusters (near-duplicates of
one work) and real PDQ codes in families a few bit flips apart. These generators make both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from screener.index import IdArray


def unit_rows(x: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def clustered_vectors(
    rng: np.random.Generator, n: int, dim: int, *, clusters: int, noise: float
) -> npt.NDArray[np.float32]:
    """Unit vectors around ``clusters`` random unit centres, ``noise`` per coordinate."""
    centres = unit_rows(rng.standard_normal((clusters, dim)))
    members = rng.integers(0, clusters, n)
    return unit_rows(centres[members] + noise * rng.standard_normal((n, dim)))


def perturb_vectors(
    rng: np.random.Generator, x: npt.NDArray[np.float32], noise: float
) -> npt.NDArray[np.float32]:
    return unit_rows(x + noise * rng.standard_normal(x.shape))


def flip_bits(
    rng: np.random.Generator, codes: npt.NDArray[np.uint8], max_flips: int
) -> npt.NDArray[np.uint8]:
    """Each row with 0..max_flips distinct random bits flipped."""
    bits = np.unpackbits(codes, axis=1)
    for row in bits:
        n_flips = int(rng.integers(0, max_flips + 1))
        where = rng.choice(len(row), size=n_flips, replace=False)
        row[where] ^= 1
    return np.packbits(bits, axis=1)


def near_duplicate_codes(
    rng: np.random.Generator, bases: int, copies: int, bits: int, *, max_flips: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """(codes, base_codes): ``copies`` variants of each random base, 0..max_flips bits off."""
    base = rng.integers(0, 256, (bases, bits // 8), dtype=np.uint8)
    codes = flip_bits(rng, np.repeat(base, copies, axis=0), max_flips)
    return codes, base


def unique_ids(rng: np.random.Generator, n: int, high: int = 10**9) -> IdArray:
    """Sparse, unordered ids, so that no implementation can get away with positions."""
    return rng.choice(high, size=n, replace=False).astype(np.int64)
