"""The signal set: which fingerprinters run, and fingerprinting one image with its regions.

Decoding happens once and at one small size (``work_size`` on the long side); every
fingerprinter and every region is fed from that copy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from screener import models
from screener.core.cutout import cutout
from screener.core.errors import SignalUnavailable
from screener.core.proposals import ProposalRules, proposals
from screener.core.regions import FIXED, WHOLE, Region, figure, regions, window
from screener.core.settings import Settings
from screener.matching.threads import plan
from screener.models import Fingerprint, Fingerprinter, ModelUnavailable
from screener.models.hashes import PDQ
from screener.models.sscd import SSCD

log = logging.getLogger(__name__)

# The long side a picture is cut out at (`screener.core.cutout`): the semantic tower sees
# 224 px, and the cut-out's cost grows with the pixels.
FIGURE_SIDE = 256


def reduced(image: Image.Image) -> Image.Image:
    """An RGB copy of ``image`` no longer than ``FIGURE_SIDE`` on either side: what its
    figure is cut out of, for the semantic tower and for its colours."""
    small = image.convert("RGB")  # a copy, even of an RGB image
    small.thumbnail((FIGURE_SIDE, FIGURE_SIDE), Image.Resampling.BILINEAR)
    return small


def is_whole(region: str) -> bool:
    """The whole image, or one of its dihedral variants."""
    return region == WHOLE or region.startswith(f"{WHOLE}/")


def _options(name: str, settings: Settings) -> dict[str, object]:
    """The factory keywords of signal ``name``: the settings its descriptor names, and the
    thread plan's pool where the descriptor asks for it."""
    options = settings.signal_options(name)
    descriptor = models.descriptor(name)
    if descriptor.thread_plan:
        # A signal with its own thread setting (SCREENER_SEMANTIC_THREADS) is planned with
        # it; one without (SSCD) with sscd_threads.
        own = options.get("threads")
        threads = plan(settings, own if isinstance(own, int) else None)
        spinning = threads.model_spinning and descriptor.spins
        options |= {"threads": threads.model, "spinning": spinning}
    return options


@dataclass(frozen=True)
class RegionFingerprint:
    """One fingerprint of one region (or dihedral variant) of an image."""

    signal: str
    region: str
    fingerprint: Fingerprint


class SignalSet:
    """The fingerprinters that could be built from the settings, and those that could not."""

    def __init__(
        self,
        settings: Settings,
        region_min_quality: float,
        fingerprinters: Iterable[Fingerprinter] | None = None,
        proposal_rules: ProposalRules | None = None,
    ) -> None:
        self.settings = settings
        self.region_min_quality = region_min_quality
        # Query-side proposals (a content box, a collage's tiles): None, none proposed.
        self.proposal_rules = proposal_rules
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
        sscd = self.available.get("sscd")
        if settings.sscd_windows and isinstance(sscd, SSCD):
            try:
                sscd.prepare_windows()
            except ModelUnavailable as exc:
                raise SignalUnavailable(f"SCREENER_SSCD_WINDOWS cannot run: {exc}") from exc
        self._gate = PDQ()
        known = models.descriptors()
        self._figure_signals = {
            n for n in self.available if n in known and known[n].query_regions == "figure"
        }

    @property
    def names(self) -> list[str]:
        return list(self.available)

    @property
    def specs(self) -> dict[str, str]:
        return {name: f.spec_id for name, f in self.available.items()}

    def _crops(self, image: Image.Image, propose: bool) -> list[tuple[Region, Image.Image]]:
        """The whole image and every informative region (PDQ quality as the measure);
        with ``propose``, also the regions the picture itself proposes."""
        boxes = regions(self.settings.regions)
        if propose and self.settings.regions and self.proposal_rules is not None:
            boxes += proposals(np.asarray(image.convert("RGB")), self.proposal_rules)
        crops = [(region, image.crop(region.box(*image.size))) for region in boxes]
        whole, rest = crops[0], crops[1:]
        if not rest:
            return [whole]
        qualities = [f.quality or 0.0 for f in self._gate.fingerprint([c for _, c in rest])]
        return [whole] + [
            crop for crop, q in zip(rest, qualities, strict=True) if q >= self.region_min_quality
        ]

    @staticmethod
    def _figure(image: Image.Image) -> tuple[Region, Image.Image] | None:
        """The query's figure lifted off a smooth background, on white; None where the
        background is not smooth or no figure stands out."""
        found = cutout(np.asarray(reduced(image)))
        return None if found is None else (figure(found.box), Image.fromarray(found.pixels))

    def _figure_crops(
        self, crops: list[list[tuple[Region, Image.Image]]], images: Sequence[Image.Image]
    ) -> list[list[tuple[Region, Image.Image]]]:
        """What a ``query_regions="figure"`` signal sees of each query: the whole, the
        proposed regions and the figure, without the fixed cells."""
        out = []
        for per_image, image in zip(crops, images, strict=True):
            found = self._figure(image) if self.settings.regions else None
            out.append(
                [c for c in per_image if c[0].name not in FIXED] + ([found] if found else [])
            )
        return out

    def fingerprint(self, image: Image.Image, *, dihedral: bool) -> list[RegionFingerprint]:
        """Fingerprint the whole image and its regions with every available signal.

        With ``dihedral``, fingerprinters that can also hash the 8 rotations and flips of
        the whole image cheaply do so (query side: a flipped copy still matches).
        """
        return self.fingerprint_many([image], dihedral=dihedral)[0]

    def fingerprint_many(
        self, images: Sequence[Image.Image], *, dihedral: bool, propose: bool = False
    ) -> list[list[RegionFingerprint]]:
        """:meth:`fingerprint` for several images, with one model call per signal for all
        their regions (the service's micro-batches). ``propose``: the query side, which
        also fingerprints the regions `screener.core.proposals` finds in each picture."""
        fixed = [self._crops(image, propose) for image in images]
        figures = None
        out: list[list[RegionFingerprint]] = [[] for _ in images]
        for name, fingerprinter in self.available.items():
            crops = fixed
            if propose and name in self._figure_signals:
                figures = figures or self._figure_crops(fixed, images)
                crops = figures
            flat = [crop for per_image in crops for _, crop in per_image]
            results = iter(fingerprinter.fingerprint(flat) if flat else [])
            for position, per_image in enumerate(crops):
                out[position] += [
                    RegionFingerprint(name, region.name, next(results)) for region, _ in per_image
                ]
            if propose and self.settings.sscd_windows and isinstance(fingerprinter, SSCD):
                for position, image in enumerate(images):
                    out[position] += self._windows(fingerprinter, image)
            if dihedral and isinstance(fingerprinter, models.DihedralFingerprinter):
                for position, image in enumerate(images):
                    variants = fingerprinter.fingerprint_dihedral(image)
                    out[position] += [
                        RegionFingerprint(name, f"{WHOLE}/d{i}", fp)
                        for i, fp in enumerate(variants)
                        if i > 0
                    ]
        return out

    def _windows(self, sscd: SSCD, image: Image.Image) -> list[RegionFingerprint]:
        """Descriptors of many windows of the query from one SSCD trunk call, the whole
        map (which the whole-image fingerprint already covers) left out."""
        found = sscd.windows(
            image, self.settings.sscd_window_side, self.settings.sscd_window_fractions
        )
        return [RegionFingerprint(sscd.name, window(w.box).name, w.fingerprint) for w in found[1:]]


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
    return RegionFingerprint(signal, region, Fingerprint(stored_vector(vector, binary), quality))


def stored_vector(vector: bytes, binary: bool) -> npt.NDArray[Any]:
    """One stored vector (:func:`vector_bytes`) as an array again: packed bits (uint8) for
    a binary signal, float32 otherwise."""
    return np.frombuffer(vector, dtype=np.uint8 if binary else np.float32)


def stored_matrix(
    vectors: Sequence[bytes], binary: bool, width: int | None = None
) -> npt.NDArray[Any]:
    """Stored vectors (:func:`vector_bytes`) as one matrix, a row each. ``width``: the row
    length, needed only when ``vectors`` may be empty (else it follows from the bytes)."""
    rows = stored_vector(b"".join(vectors), binary)
    return rows.reshape(len(vectors), -1 if width is None else width)
