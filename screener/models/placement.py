"""Where a registered work was pasted into a query, found by the work's own pixels.

A work pasted small into a new photograph (an icon, a logo, a character on a scene) fills too
little of any fixed region for a global descriptor to see it, and flat art gives local
features too few keypoints to say where it is. For a candidate work this module searches
the query for the work itself: the reference, reduced to a few sizes, is slid over a small
copy of the query and compared by masked normalised correlation (only the pixels the
reference's alpha covers), the best size and place found on a coarse copy are refined on a
finer one, and the box found is returned in shares of the query's sides.

Then `masked_crop` cuts that box out of the query and keeps only the pixels under the
reference's alpha, on white, as the reference itself is fingerprinted: a transparent work
pasted onto a photograph is compared without the photograph behind it. (Measured on a
development suite: SSCD's cosine of an exact crop of an icon pasted at 30 % onto a photo
was 0.31 median with the photo behind it; masked like this, 0.74.)

Pure: numpy, OpenCV and Pillow in, boxes and images out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

Pixels = npt.NDArray[np.float32]
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class PlaceParams:
    """How the search runs: query short sides of the coarse and the fine pass, the sizes
    tried (the work's long side as a share of the query's short side, ``steps`` of them
    from ``smallest`` to ``largest``, spaced evenly in ratio), and the fine pass's sizes
    around the coarse one."""

    coarse_side: int = 64
    fine_side: int = 192
    smallest: float = 0.2
    largest: float = 0.8
    steps: int = 6
    refine: tuple[float, ...] = (0.9, 0.95, 1.0, 1.05, 1.1)
    # Templates under this many pixels a side (or covering fewer opaque pixels) are not tried.
    min_template: int = 8
    # "ccoeff": correlation of the pixels less their means (tells works apart: a flat
    # template correlates with any bright patch otherwise); "ccorr": of the pixels as they
    # are (half the cost).
    method: str = "ccoeff"

    def __post_init__(self) -> None:
        if not (16 <= self.coarse_side <= self.fine_side):
            raise ValueError("coarse_side must be at least 16 and at most fine_side")
        if not (0 < self.smallest < self.largest <= 1) or self.steps < 1:
            raise ValueError("0 < smallest < largest <= 1, and at least one step")
        if self.method not in ("ccoeff", "ccorr"):
            raise ValueError("method is ccoeff or ccorr")
        if not self.refine or min(self.refine) <= 0:
            raise ValueError("refine holds positive size factors")

    @property
    def sizes(self) -> Pixels:
        return np.geomspace(self.smallest, self.largest, self.steps).astype(np.float32)


DEFAULT = PlaceParams()
# The other way round (`within`): the query, as a part of a reference, is a larger share of
# it than a pasted work is of a scene.
WITHIN = PlaceParams(smallest=0.35, largest=1.0)


@dataclass(frozen=True)
class Template:
    """A reference as the search uses it: its pixels (RGB, float32) and its alpha (None
    where opaque), at ``TEMPLATE_SIDE`` on the long side at most."""

    rgb: Image.Image
    alpha: Image.Image | None


@dataclass(frozen=True)
class Placement:
    """The box (left, top, right, bottom, in shares of the query's width and height) where
    the template matched best, and its masked normalised correlation there (0-1)."""

    box: tuple[float, float, float, float]
    score: float


# A stored reference is decoded at long side 256 and kept whole: the finest template
# needed is ``largest * fine_side`` (154 px by default), and a query found within a
# reference is compared with the reference's pixels there (`within`).
TEMPLATE_SIDE = 256


def template_of(image: Image.Image, alpha: Image.Image | None) -> Template:
    """A reference's :class:`Template`, from its flattened image and its alpha (None: opaque).
    An alpha that covers every pixel is dropped: the search is then unmasked."""
    scale = min(1.0, TEMPLATE_SIDE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    rgb = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    kept: Image.Image | None = None
    if alpha is not None:
        small = alpha.convert("L").resize(size, Image.Resampling.BILINEAR)
        if int(np.asarray(small).min()) < 128:
            kept = small
    return Template(rgb, kept)


def _pixels(image: Image.Image, size: tuple[int, int]) -> Pixels:
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR), dtype=np.float32)


@dataclass(frozen=True)
class Query:
    """A query reduced once for every template searched in it: short side
    ``coarse_side`` and ``fine_side``, and the scale from its pixels to each copy."""

    coarse: Pixels
    fine: Pixels
    coarse_scale: float
    fine_scale: float


def _reduced(query: Image.Image, short_side: int) -> tuple[Pixels, float]:
    scale = short_side / min(query.size)
    size = (max(1, round(query.width * scale)), max(1, round(query.height * scale)))
    return _pixels(query.convert("RGB"), size), scale


def query_of(image: Image.Image, params: PlaceParams = DEFAULT) -> Query:
    """The query's two reduced copies."""
    coarse, coarse_scale = _reduced(image, params.coarse_side)
    fine, fine_scale = _reduced(image, params.fine_side)
    return Query(coarse, fine, coarse_scale, fine_scale)


@dataclass(frozen=True)
class Coarse:
    """The coarse pass's best: its correlation, the size tried (a share of the query's
    short side) and the box in the coarse copy's pixels (x, y, width, height)."""

    score: float
    size: float
    box: tuple[int, int, int, int]


def _match(
    query: Pixels, template: Template, long_side: float, params: PlaceParams
) -> tuple[float, int, int, int, int] | None:
    """The best masked correlation of the template at ``long_side`` px over ``query``:
    (score, x, y, width, height) in ``query``'s pixels; None where it does not fit."""
    import cv2

    min_side = params.min_template
    ratio = long_side / max(template.rgb.size)
    w = round(template.rgb.width * ratio)
    h = round(template.rgb.height * ratio)
    if min(w, h) < min_side or w > query.shape[1] or h > query.shape[0]:
        return None
    rgb = _pixels(template.rgb, (w, h))
    mask = None
    if template.alpha is not None:
        covered = _pixels(template.alpha, (w, h)) >= 128
        if int(covered.sum()) < min_side * min_side:
            return None
        mask = np.repeat(covered[:, :, None], 3, axis=2).astype(np.float32)
    method = cv2.TM_CCOEFF_NORMED if params.method == "ccoeff" else cv2.TM_CCORR_NORMED
    scores = cv2.matchTemplate(query, rgb, method, mask=mask)
    scores = np.nan_to_num(scores, nan=-1.0, posinf=-1.0, neginf=-1.0)
    _, best, _, (x, y) = cv2.minMaxLoc(scores)
    return float(best), int(x), int(y), w, h


def coarse(query: Query, template: Template, params: PlaceParams = DEFAULT) -> Coarse | None:
    """The best size and place of ``template`` on the query's coarse copy; None where no
    size of it fits. Its score ranks candidate works cheaply."""
    short = min(query.coarse.shape[:2])
    best: Coarse | None = None
    for size in params.sizes:
        found = _match(query.coarse, template, float(size) * short, params)
        if found is not None and (best is None or found[0] > best.score):
            best = Coarse(found[0], float(size), found[1:])
    return best


def refine(
    query: Query, template: Template, found: Coarse, params: PlaceParams = DEFAULT
) -> Placement:
    """The coarse placement made exact on the fine copy: sizes ``refine`` times the coarse
    one, searched around the coarse box only (widened by what the largest refinement and a
    coarse pixel's uncertainty need)."""
    fine = query.fine
    ratio = query.fine_scale / query.coarse_scale
    cx, cy, cw, ch = found.box
    slack = max(params.refine) - 1.0
    pad_x = round(cw * ratio * slack + 2 * ratio)
    pad_y = round(ch * ratio * slack + 2 * ratio)
    x0 = max(0, round(cx * ratio) - pad_x)
    y0 = max(0, round(cy * ratio) - pad_y)
    x1 = min(fine.shape[1], round((cx + cw) * ratio) + pad_x)
    y1 = min(fine.shape[0], round((cy + ch) * ratio) + pad_y)
    patch = fine[y0:y1, x0:x1]
    fine_short = min(fine.shape[:2])
    chosen: tuple[float, int, int, int, int] | None = None
    for factor in params.refine:
        match = _match(patch, template, found.size * factor * fine_short, params)
        if match is not None and (chosen is None or match[0] > chosen[0]):
            chosen = match
    if chosen is None:  # every refined size outgrew the patch: keep the coarse box
        height, width = query.coarse.shape[:2]
        return Placement(
            (cx / width, cy / height, (cx + cw) / width, (cy + ch) / height), found.score
        )
    score, x, y, w, h = chosen
    x, y = x + x0, y + y0
    height, width = fine.shape[:2]
    return Placement((x / width, y / height, (x + w) / width, (y + h) / height), score)


def place(
    image: Image.Image, template: Template, params: PlaceParams = DEFAULT
) -> Placement | None:
    """Where ``template`` sits in ``image`` (see the module's text): the coarse pass, then
    the fine one; None where no size of it fits."""
    query = query_of(image, params)
    found = coarse(query, template, params)
    return None if found is None else refine(query, template, found, params)


def cut(image: Image.Image, placement: Placement) -> Image.Image:
    """``image`` cut to the placement's box (at least one pixel each way)."""
    left, top, right, bottom = placement.box
    x0, y0 = round(left * image.width), round(top * image.height)
    x1 = max(round(right * image.width), x0 + 1)
    y1 = max(round(bottom * image.height), y0 + 1)
    return image.convert("RGB").crop((x0, y0, x1, y1))


def masked_crop(query: Image.Image, placement: Placement, template: Template) -> Image.Image:
    """The query cut to the placement's box, with the pixels outside the template's alpha
    set to white (the background a reference is fingerprinted on)."""
    crop = cut(query, placement)
    if template.alpha is None:
        return crop
    canvas = Image.new("RGB", crop.size, WHITE)
    canvas.paste(crop, mask=template.alpha.resize(crop.size, Image.Resampling.BILINEAR))
    return canvas


def within(
    query: Template, reference: Template, params: PlaceParams = WITHIN
) -> tuple[Image.Image, Placement] | None:
    """Where the query sits inside a reference (a crop of the work), and the reference's
    pixels there; None where no size of the query fits in it."""
    found = place(reference.rgb, query, params)
    return None if found is None else (cut(reference.rgb, found), found)
