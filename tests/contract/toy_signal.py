"""A signal that exists only in the tests, to show that adding one is one registration.

``thumb`` is an 8x8 grayscale thumbnail, centred and scaled to unit length: a crude dense
descriptor that still tells a resized copy from another picture. The `thumb_signal`
fixture registers it with one call (its descriptor beside it, as a module in
``screener/models/`` would) and forgets it afterwards; nothing else in the package knows
its name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from PIL import Image

from screener import models
from screener.models import Fingerprint, Kind, SignalDescriptor

NAME = "thumb"
THUMB_SIGNAL = SignalDescriptor(
    evidence="thumb_cosine", metric="cosine", family="thumb", display="thumb", default_on=False
)


class Thumb:
    name = NAME
    kind: Kind = "dense"
    dim = 64
    spec_id = "thumb/8x8-gray-centred"

    def fingerprint(self, images: Sequence[Image.Image]) -> list[Fingerprint]:
        out = []
        for image in images:
            small = image.convert("L").resize((8, 8), Image.Resampling.BOX)
            row = np.asarray(small, dtype=np.float32).reshape(-1)
            row -= row.mean()
            norm = float(np.linalg.norm(row))
            out.append(Fingerprint((row / norm if norm else row).astype(np.float32)))
        return out


@pytest.fixture
def thumb_signal() -> Iterator[str]:
    models.register(NAME, descriptor=THUMB_SIGNAL)(Thumb)
    yield NAME
    models.unregister(NAME)
