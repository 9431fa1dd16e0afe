"""The training sample of the descriptor index's codebooks: SIFT descriptors of generated
pictures.

The compact descriptor index (:mod:`screener.index.descriptors`) quantises descriptors
with centroids and codebooks learnt from a sample. The sample must not come from what is
registered or from any evaluation images (that would fit the codebook to them), and it
must be the same on every machine: it is drawn here from pictures generated from a fixed
seed (shapes, strokes, gradients and noise over random backgrounds), which give SIFT the
corners, edges and blobs of real images. Training takes minutes on two cores, so the
codebook of the default layout is shipped (``screener/data/descriptors/``, written by
``python -m screener.matching.codebook``, which regenerates the same file); another layout
is trained once per process, when an index is first built. A saved index carries its
trained codebooks.
"""

from __future__ import annotations

import functools
import logging
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter

from screener.index.descriptors import Codebook, Layout, train
from screener.models.keypoints import SiftExtractor

log = logging.getLogger(__name__)

SEED = 20
SIDE = 448


def _picture(rng: np.random.Generator) -> Image.Image:
    top, bottom = rng.integers(0, 256, size=(2, 3))
    ramp = np.linspace(0.0, 1.0, SIDE)[:, None, None]
    pixels = (top * (1 - ramp) + bottom * ramp) * np.ones((1, SIDE, 1))
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(12, 40))):
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        x0, y0 = (int(v) for v in rng.integers(0, SIDE, size=2))
        w, h = (int(v) for v in rng.integers(8, SIDE // 3, size=2))
        shape = int(rng.integers(0, 4))
        if shape == 0:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        elif shape == 2:
            points = [tuple(int(v) for v in rng.integers(0, SIDE, size=2)) for _ in range(5)]
            draw.polygon(points, fill=colour)
        else:
            draw.line((x0, y0, x0 + w, y0 + h), fill=colour, width=int(rng.integers(1, 9)))
    noise = rng.normal(0, float(rng.uniform(0, 12)), size=(SIDE, SIDE, 3))
    noisy = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    blurred = Image.fromarray(noisy).filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.5))))
    return blurred


def sample(extractor: SiftExtractor, rows: int) -> npt.NDArray[np.uint8]:
    """At least ``rows`` descriptors (or all that 400 pictures give), the same every run."""
    rng = np.random.default_rng(SEED)
    found: list[npt.NDArray[np.uint8]] = []
    total = 0
    for _ in range(400):
        descriptors = extractor.extract(_picture(rng)).descriptors
        found.append(descriptors)
        total += len(descriptors)
        if total >= rows:
            break
    return np.concatenate(found)[:rows]


def codebook(extractor: SiftExtractor, layout: Layout) -> Codebook:
    """The codebook of ``layout`` trained on generated pictures seen by ``extractor``
    (once per process and extractor settings)."""
    return _codebook(extractor.features, extractor.contrast, extractor.edge, layout)


def packaged_path(layout: Layout) -> Path:
    folder = Path(str(resources.files("screener.data").joinpath("descriptors")))
    return folder / f"ivf{layout.lists}-pq{layout.code_bytes}.npy"


@functools.cache
def _codebook(features: int, contrast: float, edge: float, layout: Layout) -> Codebook:
    path = packaged_path(layout)
    if path.exists():
        return Codebook(layout, np.load(path, allow_pickle=False))
    log.warning("no packaged descriptor codebook for %s: training one (minutes)", layout.kind)
    extractor = SiftExtractor(features=features, contrast=contrast, edge=edge)
    return trained(extractor, layout)


def trained(extractor: SiftExtractor, layout: Layout) -> Codebook:
    return train(sample(extractor, max(40 * layout.lists, 20_000)), layout)


def main() -> None:
    """Write the packaged codebook of the default layout (to the path printed)."""
    layout = Layout()
    path = packaged_path(layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, trained(SiftExtractor(), layout).trained)
    sys.stdout.write(f"{path}\n")


if __name__ == "__main__":
    main()
