"""The `Fingerprinter` protocol and the registry of implementations (and their signals'
descriptors) by name.

A fingerprinter turns RGB pixels into one vector per image. Each names a ``spec_id`` that
changes whenever its output would change (library, weights, preprocessing), and that id is
stamped on everything it produces, so that vectors from different specs are never compared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from PIL import Image

from screener.models.descriptor import SignalDescriptor

Kind = Literal["binary", "dense"]


class ModelUnavailable(RuntimeError):
    """A fingerprinter cannot run here: a package or weights file is missing.

    The message names what is missing and how to provide it.
    """


@dataclass(frozen=True)
class Fingerprint:
    """One image's fingerprint.

    ``vector`` is packed bits (uint8) for binary kinds and a unit float32 vector for dense
    kinds. ``quality`` is the fingerprinter's own confidence in [0, 1] where it has one
    (PDQ's quality score / 100); ``None`` where it has none.
    """

    vector: npt.NDArray[Any]
    quality: float | None = None


@runtime_checkable
class Fingerprinter(Protocol):
    """Pixels in, fingerprints out."""

    name: str
    spec_id: str
    kind: Kind
    dim: int  # bits for binary kinds, floats for dense kinds

    def fingerprint(self, images: Sequence[Image.Image]) -> list[Fingerprint]:
        """Fingerprint RGB images, one result per image, in order."""
        ...


@runtime_checkable
class DihedralFingerprinter(Fingerprinter, Protocol):
    """A fingerprinter that can also hash the 8 rotations and flips of an image cheaply."""

    def fingerprint_dihedral(self, image: Image.Image) -> list[Fingerprint]:
        """The 8 dihedral variants of one image; the first is the image as it is."""
        ...


Factory = Callable[..., Fingerprinter]
_REGISTRY: dict[str, Factory] = {}
_DESCRIPTORS: dict[str, SignalDescriptor] = {}


def register(name: str, *, descriptor: SignalDescriptor) -> Callable[[Factory], Factory]:
    """Register a fingerprinter factory and its signal's descriptor under ``name`` (used as
    a decorator). Registration order is the order signals are listed and run in.

    Raises ``ValueError`` where another signal already gives one of its evidence names.
    """
    taken = {
        evidence: other
        for other, known in _DESCRIPTORS.items()
        if other != name
        for evidence in known.own_evidence
    }
    clashes = sorted(set(descriptor.own_evidence) & set(taken))
    if clashes:
        raise ValueError(
            f"signal {name!r} gives evidence {clashes} that signal {taken[clashes[0]]!r} gives"
        )

    def decorate(factory: Factory) -> Factory:
        _REGISTRY[name] = factory
        _DESCRIPTORS[name] = descriptor
        return factory

    return decorate


def unregister(name: str) -> None:
    """Forget the signal registered as ``name`` (a test's own signal, once it is done)."""
    _REGISTRY.pop(name, None)
    _DESCRIPTORS.pop(name, None)


def names() -> list[str]:
    """Names of every registered fingerprinter."""
    return sorted(_REGISTRY)


def descriptors() -> dict[str, SignalDescriptor]:
    """Every registered signal's descriptor by name, in registration order."""
    return dict(_DESCRIPTORS)


def descriptor(name: str) -> SignalDescriptor:
    """The descriptor of the signal registered as ``name``; ``KeyError`` names the known."""
    try:
        return _DESCRIPTORS[name]
    except KeyError:
        raise KeyError(f"unknown signal {name!r}; known: {', '.join(_DESCRIPTORS)}") from None


def create(name: str, **options: Any) -> Fingerprinter:
    """Build the fingerprinter registered as ``name``.

    Raises ``KeyError`` for an unknown name and ``ModelUnavailable`` when its package or
    weights cannot be had.
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown fingerprinter {name!r}; known: {', '.join(names())}") from None
    return factory(**options)


def unit_rows(matrix: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Scale each row to unit L2 length (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit: npt.NDArray[np.float32] = (matrix / norms).astype(np.float32)
    return unit
