"""Perceptual hashes: pHash (imagehash, 64 bits) and PDQ (pdqhash, 256 bits).

Both accept any RGB image but are fed the screener's one downscaled copy: hashing the full
image spends nearly all its time resizing and changes the hash by only a few bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version

import imagehash
import numpy as np
import pdqhash
from PIL import Image

from screener.models.base import Fingerprint, Kind, register

# PIL's transpose operations that, with the identity, make the 8 dihedral variants.
_DIHEDRAL: tuple[Image.Transpose | None, ...] = (
    None,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)


class PHash:
    """DCT perceptual hash of a 32x32 grayscale copy (imagehash), 64 bits."""

    name = "phash"
    kind: Kind = "binary"
    dim = 64

    def __init__(self) -> None:
        self.spec_id = f"phash/imagehash-{version('imagehash')}/8x8"

    def _hash(self, image: Image.Image) -> Fingerprint:
        bits = imagehash.phash(image, hash_size=8).hash.astype(np.uint8).reshape(-1)
        return Fingerprint(np.packbits(bits))

    def fingerprint(self, images: Sequence[Image.Image]) -> list[Fingerprint]:
        return [self._hash(image) for image in images]

    def fingerprint_dihedral(self, image: Image.Image) -> list[Fingerprint]:
        # Transposing the 32x32 gray copy is exact and far cheaper than the full image.
        small = image.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
        return [self._hash(small if op is None else small.transpose(op)) for op in _DIHEDRAL]


class PDQ:
    """Meta's PDQ hash (pdqhash), 256 bits, with its quality score scaled to [0, 1]."""

    name = "pdq"
    kind: Kind = "binary"
    dim = 256

    def __init__(self) -> None:
        self.spec_id = f"pdq/pdqhash-{version('pdqhash')}"

    @staticmethod
    def _pixels(image: Image.Image) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))

    def fingerprint(self, images: Sequence[Image.Image]) -> list[Fingerprint]:
        out = []
        for image in images:
            bits, quality = pdqhash.compute(self._pixels(image))
            out.append(Fingerprint(np.packbits(bits.astype(np.uint8)), quality / 100.0))
        return out

    def fingerprint_dihedral(self, image: Image.Image) -> list[Fingerprint]:
        hashes, quality = pdqhash.compute_dihedral(self._pixels(image))
        # pdqhash orders its variants: original, rot90, rot180, rot270, flipx, flipy,
        # flip+1, flip-1; only the set matters to matching.
        return [Fingerprint(np.packbits(h.astype(np.uint8)), quality / 100.0) for h in hashes]


@register("phash")
def _phash() -> PHash:
    return PHash()


@register("pdq")
def _pdq() -> PDQ:
    return PDQ()
