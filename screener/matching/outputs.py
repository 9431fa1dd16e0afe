"""Finding released outputs from a copy of their image.

A rights holder who complains about an output has the image, not the check id the
platform got for it (and may not see allowed checks at all). The service keeps the
fingerprints of every allowed check, so it finds them itself: an image is the same output
as a check when the bytes are the same, or when one whole-image signal is at full evidence
by the policy's own ramps (closer than any unrelated pair the policy was fitted on). No
threshold of its own: what "closer than unrelated" means is the policy's.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from screener.core.fusion import evidence
from screener.core.policy import Policy
from screener.core.regions import WHOLE
from screener.matching.signals import EVIDENCE_NAME, RegionFingerprint


def whole(fingerprints: list[RegionFingerprint]) -> dict[str, RegionFingerprint]:
    """The whole-image fingerprint of each signal (not regions, not dihedral variants)."""
    return {fp.signal: fp for fp in fingerprints if fp.region == WHOLE}


def value(a: RegionFingerprint, b: RegionFingerprint, binary: bool) -> float:
    """The raw value of the signal between two fingerprints: Hamming distance for binary
    kinds, cosine for dense (unit) ones."""
    x, y = a.fingerprint.vector, b.fingerprint.vector
    if binary:
        return float(np.unpackbits(np.bitwise_xor(x, y)).sum())
    return float(np.dot(x.astype(np.float32), y.astype(np.float32)))


def same_output(
    query: Mapping[str, RegionFingerprint],
    stored: Mapping[str, RegionFingerprint],
    kinds: Mapping[str, str],
    policy: Policy,
) -> bool:
    """Whether a stored check's whole image is the queried image (see the module)."""
    for signal, mine in query.items():
        theirs = stored.get(signal)
        calibration = policy.signals.get(EVIDENCE_NAME.get(signal, ""))
        if theirs is None or calibration is None or calibration.weight <= 0:
            continue
        if mine.fingerprint.vector.shape != theirs.fingerprint.vector.shape:
            continue
        if evidence(value(mine, theirs, kinds[signal] == "binary"), calibration) >= 1.0:
            return True
    return False
