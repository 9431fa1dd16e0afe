"""Fingerprinters: pixels in, vectors or bits out, each registered by name with a spec id
and the descriptor of its signal.

The modules are imported in the order their signals are listed and run in (the
registration order): the hashes, then SSCD, then CLIP, then the semantic signal.
"""

# isort: off
from screener.models import hashes
from screener.models import sscd
from screener.models import clip
from screener.models import semantic

# isort: on
from screener.models.base import (
    DihedralFingerprinter,
    Fingerprint,
    Fingerprinter,
    Kind,
    ModelUnavailable,
    create,
    descriptor,
    descriptors,
    names,
    register,
    unregister,
)
from screener.models.descriptor import SignalDescriptor

__all__ = [
    "DihedralFingerprinter",
    "Fingerprint",
    "Fingerprinter",
    "Kind",
    "ModelUnavailable",
    "SignalDescriptor",
    "clip",
    "create",
    "descriptor",
    "descriptors",
    "hashes",
    "names",
    "register",
    "semantic",
    "sscd",
    "unregister",
]
