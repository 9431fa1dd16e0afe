"""Fingerprinters: pixels in, vectors or bits out, each registered by name with a spec id."""

from screener.models import clip, hashes, semantic, sscd
from screener.models.base import (
    DihedralFingerprinter,
    Fingerprint,
    Fingerprinter,
    Kind,
    ModelUnavailable,
    create,
    names,
    register,
)

__all__ = [
    "DihedralFingerprinter",
    "Fingerprint",
    "Fingerprinter",
    "Kind",
    "ModelUnavailable",
    "clip",
    "create",
    "hashes",
    "names",
    "register",
    "semantic",
    "sscd",
]
