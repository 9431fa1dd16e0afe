"""The signal set: which fingerprinters run, and fingerprinting one image with its regions.

Decoding happens once and at one small size (``work_size`` on the long side); every
fingerprinter and every region is fed from that copy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from screener import models
from screener.core.errors import SignalUnavailable
from screener.core.regions import WHOLE, Region, regions
from screener.core.settings import Settings
from screener.models import Fingerprint, Fingerprinter, ModelUnavailable
from screener.models.hashes import PDQ

log = logging.getLogger(__name__)

# The raw value each signal contributes to a verdict, named as it appears in evidence.
EVIDENCE_NAME = {
    "pdq": "pdq_hamming",
    "phash": "phash_hamming",
    "sscd": "sscd_cosine",
    "clip": "clip_cosine",
    "semantic": "semantic_cosine",
}
# The same signal where one side is a region (a crop of the work, or the work inside a
# larger picture): weaker evidence than whole against whole, so calibrated on its own.
REGION_EVIDENCE_NAME = {
    signal: name.replace("_", "_region_", 1) for signal, name in EVIDENCE_NAME.items()
}


def is_whole(region: str) -> bool:
    """The whole image, or one of its dihedral variants."""
    return region == WHOLE or region.startswith(f"{WHOLE}/")


@dataclass(frozen=True)
class RegionFingerprint:
    """One fingerprint of one region (or dihedral variant) of an image."""

    signal: str
    region: str
    fingerprint: Fingerprint


def _options(name: str, settings: Settings) -> dict[str, object]:
    if name == "sscd":
        return {
            "model": settings.sscd_model,
            "weights": settings.sscd_weights,
            "threads": settings.sscd_threads,
        }
    if name == "clip":
        return {
            "arch": settings.clip_arch,
            "pretrained": settings.clip_pretrained,
            "weights": settings.clip_weights,
            "threads": settings.clip_threads,
        }
    if name == "semantic":
        return {
            "onnx": settings.semantic_onnx,
            "size": settings.semantic_size,
            "mean": settings.semantic_mean,
            "std": settings.semantic_std,
            "output": settings.semantic_output,
            "cache_dir": settings.semantic_cache_dir or settings.data_dir / "models",
            "threads": settings.semantic_threads,
        }
    return {}


class SignalSet:
    """The fingerprinters that could be built from the settings, and those that could not."""

    def __init__(
        self,
        settings: Settings,
        region_min_quality: float,
        fingerprinters: Iterable[Fingerprinter] | None = None,
    ) -> None:
        self.settings = settings
        self.region_min_quality = region_min_quality
        self.available: dict[str, Fingerprinter] = {}
        self.missing: dict[str, str] = {}
        if fingerprinters is not None:
            self.available = {f.name: f for f in fingerprinters}
        else:
            for name in settings.signals:
                try:
                    self.available[name] = models.create(name, **_options(name, settings))
                except ModelUnavailable as exc:
                    self.missing[name] = str(exc)
        required_missing = {n: r for n, r in self.missing.items() if n in settings.require_signals}
        if required_missing:
            raise SignalUnavailable(
                "required signal(s) unavailable: "
                + "; ".join(f"{n}: {r}" for n, r in required_missing.items())
            )
        for name, reason in self.missing.items():
            log.warning("signal %s is NOT in use: %s", name, reason)
        if not self.available:
            raise SignalUnavailable("no signal can run: " + "; ".join(self.missing.values()))
        self._gate = PDQ()

    @property
    def names(self) -> list[str]:
        return list(self.available)

    @property
    def specs(self) -> dict[str, str]:
        return {name: f.spec_id for name, f in self.available.items()}

    def _crops(self, image: Image.Image) -> list[tuple[Region, Image.Image]]:
        """The whole image and every informative region (PDQ quality as the measure)."""
        crops = [
            (region, image.crop(region.box(*image.size)))
            for region in regions(self.settings.regions)
        ]
        whole, rest = crops[0], crops[1:]
        if not rest:
            return [whole]
        qualities = [f.quality or 0.0 for f in self._gate.fingerprint([c for _, c in rest])]
        return [whole] + [
            crop for crop, q in zip(rest, qualities, strict=True) if q >= self.region_min_quality
        ]

    def fingerprint(self, image: Image.Image, *, dihedral: bool) -> list[RegionFingerprint]:
        """Fingerprint the whole image and its regions with every available signal.

        With ``dihedral``, fingerprinters that can also hash the 8 rotations and flips of
        the whole image cheaply do so (query side: a flipped copy still matches).
        """
        return self.fingerprint_many([image], dihedral=dihedral)[0]

    def fingerprint_many(
        self, images: Sequence[Image.Image], *, dihedral: bool
    ) -> list[list[RegionFingerprint]]:
        """:meth:`fingerprint` for several images, with one model call per signal for all
        their regions (the service's micro-batches)."""
        crops = [self._crops(image) for image in images]
        flat = [crop for per_image in crops for _, crop in per_image]
        out: list[list[RegionFingerprint]] = [[] for _ in images]
        for name, fingerprinter in self.available.items():
            results = iter(fingerprinter.fingerprint(flat) if flat else [])
            for position, per_image in enumerate(crops):
                out[position] += [
                    RegionFingerprint(name, region.name, next(results)) for region, _ in per_image
                ]
            if dihedral and isinstance(fingerprinter, models.DihedralFingerprinter):
                for position, image in enumerate(images):
                    variants = fingerprinter.fingerprint_dihedral(image)
                    out[position] += [
                        RegionFingerprint(name, f"{WHOLE}/d{i}", fp)
                        for i, fp in enumerate(variants)
                        if i > 0
                    ]
        return out


# Backgrounds a transparent reference is also fingerprinted over (it is decoded over
# white): a character cut out of a transparent PNG reappears on any background.
EXTRA_BACKGROUNDS = {"black": (0, 0, 0), "grey": (128, 128, 128)}
BACKGROUND_MARK = "/bg-"


def over_background(
    image: Image.Image, alpha: Image.Image, background: tuple[int, int, int]
) -> Image.Image:
    """``image`` (composited over white with ``alpha``) composited over ``background``
    instead: the straight colours are recovered first, so anti-aliased edges stay right."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    a = np.asarray(alpha.resize(image.size), dtype=np.float32)[..., None] / 255.0
    straight = np.where(a > 0, (rgb - (1.0 - a) * 255.0) / np.maximum(a, 1e-6), 0.0)
    out = a * straight + (1.0 - a) * np.asarray(background, dtype=np.float32)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGB")


def background_variant(region: str, background: str) -> str:
    """The stored region name of a fingerprint taken over another background."""
    return f"{region}{BACKGROUND_MARK}{background}"


def is_background_variant(region: str) -> bool:
    """A fingerprint taken over another background than white (see `background_variant`)."""
    return BACKGROUND_MARK in region


def vector_bytes(fingerprint: Fingerprint) -> bytes:
    """The stored form of a fingerprint's vector."""
    return np.ascontiguousarray(fingerprint.vector).tobytes()


def from_stored(
    signal: str, region: str, vector: bytes, quality: float | None, binary: bool
) -> RegionFingerprint:
    """A stored fingerprint (:func:`vector_bytes`) as a fingerprint of that region again."""
    array = np.frombuffer(vector, dtype=np.uint8 if binary else np.float32)
    return RegionFingerprint(signal, region, Fingerprint(array, quality))
