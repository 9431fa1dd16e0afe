"""Aligned agreement: does the query show the registered picture itself, cell by cell?

Hashes, SSCD and verified keypoints all say "close". A same-family look-alike (the same
badge with other initials, the same face with another mouth) is close on every one of
them: most of the picture is the same drawing. What it does not have is the rest: the
letters, the mouth. Here the query is brought into the reference's frame (as it is, in
the eight turns and flips, or through the homography that verified keypoints found), both
are reduced to a small grey square, and the square is cut into a grid of cells. In each
cell that carries structure in the reference, the two are compared by normalised
correlation.
The agreement is a low quantile of those cells: a copy agrees nearly everywhere, however
blurred, noisy or recoloured; a look-alike disagrees in the cells where it differs, and a
low quantile sees a few such cells where a mean would not.

As a whole and through a quad that verified keypoints found, each cell also counts its
correlation in red, green and blue (unsigned: a hue shift of half the circle turns an
edge over in every channel), the best of the four: flat art often draws two parts in one
grey level (a green body, a red belly), and a hue-shifted copy of it agreed 0.23 in grey
alone (the characters bench's light copies). A look-alike that differs in a cell differs
in every channel.

A transparent reference is compared with what the query shows behind it. On a plain
background (one grey level where the reference is clear) the reference is composited
afresh over that level and every cell is compared, the drawing's edge included; on a busy
one (a photograph) each cell is compared on the reference's solid pixels only.

A quad that no keypoints verified (where template placement put the work, or where a
crop sits in it) is good to a pixel or two: the frame is settled by a small search of
shifts and scales around it, both sides blurred a little (`settled`).

Where most cells do not agree either (their median under one half) and few agree almost
exactly (under 30 % at 0.9), the frames do not line up: the alignment failed (a copy
pasted where no keypoints were verified, an unrelated picture), and nothing is measured,
so that a copy is not taken for a look-alike for want of a frame. A badge with other
letters can differ in most cells, but its ring and star agree exactly: it is measured.

The grid, the quantile and the structure floor were set on the development suite
(`screener bench accuracy` domains, seed 3: badge logos, icons, game art). There, the
lowest tenth of an 8 x 8 grid put same-badge logos at 0.42 or less and copies of them,
other than small composites and mirror images, mostly at 0.8 or more; the signed
correlation did as well as its absolute value on hue-shifted copies and lower on
look-alikes. See benchmarks/results/accuracy-aligned.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from PIL import Image

from screener.models.keypoints import _cv2

Grey = npt.NDArray[np.float32]
Quad = Sequence[tuple[float, float]]


@dataclass(frozen=True)
class AlignParams:
    """The comparison's grid: ``grid`` x ``grid`` cells of ``cell`` pixels each."""

    grid: int = 8
    cell: int = 8
    quantile: float = 0.1
    min_std: float = 6.0  # grey levels: a flatter reference cell carries no structure
    min_cells: int = 6  # fewer structured cells inside the query: no agreement measured
    min_inside: float = 0.95  # a cell the warp leaves partly outside the query is skipped
    # The frames line up only where most cells agree (their median): a look-alike then
    # differs in a few cells, while a copy whose alignment failed (pasted where no quad was
    # verified) differs everywhere and is not measured, rather than taken for a look-alike.
    min_median: float = 0.5
    # Or where this share of the cells agree almost perfectly (``sure`` or more): the same
    # badge with other letters differs in most cells, but its ring and star agree exactly,
    # which no misaligned frame does.
    sure: float = 0.9
    sure_share: float = 0.3
    # Through a quad that this many verified keypoints found, the frames line up by the
    # geometry's own evidence (the local signal's ramp starts at 12 inliers): there a low
    # median is the picture differing, and it is measured. A same-badge look-alike with
    # other letters differs in most of its structured cells (the letters) and was not
    # measured at all under the median rule alone.
    trusted_inliers: int = 12
    # A quad no keypoints verified (a template's placement) is good to a pixel or two of
    # the square: the frame is settled by moving it up to ``settle_shift`` pixels each way
    # at these scales, and the highest agreement is kept (`settled`).
    settle_shift: int = 2
    settle_scales: tuple[float, ...] = (0.96, 0.98, 1.0, 1.02, 1.04)
    settle_blur: float = 0.7
    # A transparent reference on the query's own plain background. Where the reference is
    # clear (opacity at most ``clear``) over at least ``min_clear`` of the square and the
    # view shows one grey level there (median absolute deviation at most ``plain``), the
    # reference is composited afresh over that level and compared in every cell: the
    # partly transparent cells at a drawing's edge show that background, not the white
    # the reference was flattened on. Elsewhere (a photograph behind it, a view that is not
    # lined up) only the cells the reference wholly covers are compared, as before.
    clear: float = 0.02
    # Over a busy background a transparent reference's cell is compared on its solid
    # pixels only (opacity at least 1 - ``clear``), where they are this share of it.
    min_solid: float = 0.5
    min_clear: float = 0.05
    plain: float = 4.0

    @property
    def side(self) -> int:
        return self.grid * self.cell


DEFAULT = AlignParams()


class Cells(NamedTuple):
    """What the cells of one view say: the low quantile of their correlation (the
    agreement), its median, and the share of cells at ``sure`` or more."""

    low: float
    median: float
    sure: float

    def lines_up(self, params: AlignParams) -> bool:
        """The frames line up: most cells agree, or a share of them agree almost exactly."""
        return self.median >= params.min_median or self.sure >= params.sure_share


@dataclass(frozen=True)
class Square:
    """A reference's frame: its grey square and, for a reference with transparency, how
    opaque each pixel is (0 to 1). Cells the reference does not wholly cover are not
    compared: there the query shows whatever background it was put on."""

    pixels: npt.NDArray[np.uint8] | Grey
    opaque: Grey | None = None
    # Its red, green and blue squares (3, side, side), where kept: a cell whose grey
    # levels barely differ (a green body and a red belly) still has structure in colour.
    channels: npt.NDArray[np.uint8] | None = None


def grey(image: Image.Image) -> Grey:
    """An image's grey pixels as float32."""
    return np.asarray(image.convert("L"), dtype=np.float32)


def thumbnail(image: Image.Image, params: AlignParams = DEFAULT) -> npt.NDArray[np.uint8]:
    """A reference's frame: the whole image squeezed to the grid's square, in grey (what a
    service keeps per reference)."""
    side = params.side
    return np.asarray(image.convert("L").resize((side, side), Image.Resampling.BOX), np.uint8)


def square_of(
    image: Image.Image, alpha: Image.Image | None, params: AlignParams = DEFAULT
) -> Square:
    """A reference's :class:`Square`, from its flattened image and its alpha (None: opaque)."""
    side = params.side
    opaque = None
    if alpha is not None:
        opaque = np.asarray(alpha.resize((side, side), Image.Resampling.BOX), np.float32) / 255.0
    rgb = image.convert("RGB").resize((side, side), Image.Resampling.BOX)
    channels = np.ascontiguousarray(np.asarray(rgb, np.uint8).transpose(2, 0, 1))
    return Square(thumbnail(image, params), opaque, channels)


def colour(image: Image.Image) -> Grey:
    """An image's red, green and blue pixels as float32 (height, width, 3)."""
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def _cells(squares: Grey, params: AlignParams) -> Grey:
    """A stack of squares (..., side, side) cut into cells: (..., cells, pixels per cell)."""
    g, c = params.grid, params.cell
    lead = squares.shape[:-2]
    axes = len(lead)
    cut = squares.reshape(*lead, g, c, g, c)
    order = (*range(axes), axes, axes + 2, axes + 1, axes + 3)
    return cut.transpose(order).reshape(*lead, g * g, c * c)


def _backgrounds(
    reference: Square, views: Grey, inside: Grey | None, params: AlignParams
) -> Grey | None:
    """The plain grey level each view shows where the reference is clear (NaN for a view
    with too little clear area inside the query, or whose background there is not plain);
    None for an opaque reference. ``inside``: one mask for all views, or one per view."""
    if reference.opaque is None:
        return None
    clear = np.broadcast_to(reference.opaque <= params.clear, views.shape)
    if inside is not None:
        clear = clear & (np.broadcast_to(inside, views.shape) > 0)
    enough = clear.sum(axis=(1, 2)) >= params.min_clear * reference.opaque.size
    shown = np.where(clear, views, np.nan).reshape(len(views), -1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a view with no clear pixel
        level = np.nanmedian(shown, axis=1)
        spread = np.nanmedian(np.abs(shown - level[:, None]), axis=1)
    return np.where(enough & (spread <= params.plain), level, np.nan).astype(np.float32)


def _measures(
    reference: Square,
    views: Grey,
    inside: Grey | None,
    params: AlignParams,
    levels: Grey | None = None,
) -> list[Cells | None]:
    """The low quantile and the median of the cells' correlation of a reference with each
    of a stack of views (n, side, side), each compared in the cells with structure in the
    reference and wholly inside the query (``inside``: where a warp leaves part of the
    square outside it; one mask for all views, or one per view). A transparent reference
    is composited over a view's plain background (`_backgrounds`) and compared in all
    those cells; where the view has none, only in the cells it wholly covers (``levels``:
    one background for all views, already read). None for a view with fewer than
    ``min_cells`` such cells."""
    return _summaries(*_cell_correlations(reference, views, inside, params, levels), params)


def _summaries(ncc: Grey, keep: npt.NDArray[np.bool_], params: AlignParams) -> list[Cells | None]:
    """Each view's :class:`Cells` from its cells' correlations and the cells compared."""
    out: list[Cells | None] = []
    for row, kept in zip(ncc, keep, strict=True):
        if int(kept.sum()) < params.min_cells:
            out.append(None)
            continue
        values = row[kept]
        low, median = float(np.quantile(values, params.quantile)), float(np.median(values))
        out.append(Cells(low, median, float(np.mean(values >= params.sure))))
    return out


def _cell_correlations(
    reference: Square,
    views: Grey,
    inside: Grey | None,
    params: AlignParams,
    levels: Grey | None = None,
) -> tuple[Grey, npt.NDArray[np.bool_]]:
    """Per view and cell (n, cells), the correlation of `_measures` and whether the
    cell is compared."""
    n = len(views)
    flat = np.asarray(reference.pixels, dtype=np.float32)
    refs = np.broadcast_to(flat, views.shape)
    covered = (
        np.ones(views.shape, np.float32) if inside is None else np.broadcast_to(inside, views.shape)
    )
    weights = np.ones(views.shape, np.float32)
    if reference.opaque is not None:
        if levels is None:
            levels = _backgrounds(reference, views, inside, params)
        else:
            levels = np.broadcast_to(levels, (n,))
        plain = np.zeros(n, bool) if levels is None else ~np.isnan(levels)
        clearness = 1.0 - reference.opaque
        if plain.any():
            assert levels is not None
            shift = np.where(plain, levels - 255.0, 0.0).astype(np.float32)
            refs = flat[None] + clearness[None] * shift[:, None, None]
        solid = (reference.opaque >= 1.0 - params.clear).astype(np.float32)
        weights = np.where(plain[:, None, None], 1.0, solid[None]).astype(np.float32)
        # The cells compared are those the reference covers, as for an opaque one: its
        # edge's cells, added, would outvote the few where a look-alike differs.
        covered = covered * reference.opaque[None]
    ref = _cells(np.asarray(refs, np.float32), params)
    query = _cells(views, params)
    w = _cells(weights, params)
    share = w.mean(axis=2)
    total = np.maximum(w.sum(axis=2, keepdims=True), 1.0)
    r = (ref - (w * ref).sum(axis=2, keepdims=True) / total) * w
    q = (query - (w * query).sum(axis=2, keepdims=True) / total) * w
    spread = np.sqrt((r * r).sum(axis=2) / total[..., 0])
    keep = (
        (spread > params.min_std)
        & (share >= params.min_solid)
        & (_cells(np.asarray(covered, np.float32), params).mean(axis=2) >= params.min_inside)
    )
    denominator = np.sqrt((r * r).sum(axis=2) * (q * q).sum(axis=2))
    ncc = (r * q).sum(axis=2) / np.maximum(denominator, 1e-6)
    return np.asarray(ncc, np.float32), np.asarray(keep, np.bool_)


def _in_colour(
    reference: Square, views: Grey, coloured: Grey, inside: Grey | None, params: AlignParams
) -> list[Cells | None]:
    """Each view's :class:`Cells` where each cell counts the best of its correlations in
    grey and (unsigned) in each of red, green and blue (``coloured``: the views' (n, side,
    side, 3) pixels), over the cells with structure in any of them. A hue-shifted copy of
    flat art can lose a grey edge whose two sides kept their structure in some channel; a
    look-alike that differs in a cell differs in every channel."""
    assert reference.channels is not None
    best, keep = _cell_correlations(reference, views, inside, params)
    best = np.where(keep, best, -np.inf)
    for c in range(3):
        channel = Square(reference.channels[c], reference.opaque)
        ncc, kept = _cell_correlations(channel, coloured[..., c], inside, params)
        best = np.maximum(best, np.where(kept, np.abs(ncc), -np.inf))
        keep = keep | kept
    return _summaries(np.where(keep, best, 0.0).astype(np.float32), keep, params)


def _scores(
    reference: Square,
    views: Grey,
    inside: Grey | None,
    params: AlignParams,
    lined_up: bool = False,
    coloured: Grey | None = None,
) -> list[float | None]:
    """The agreement of a reference with each of a stack of views (`_measures`' low
    quantile), None where the frames do not line up (`Cells.lines_up`).
    ``lined_up``: the views are known to be in the reference's frame (a trusted quad), so
    the median rule does not apply. ``coloured``: the same views in colour (n, side,
    side, 3), where the cells are compared in colour too (`_in_colour`)."""
    if coloured is None or reference.channels is None:
        measured = _measures(reference, views, inside, params)
    else:
        measured = _in_colour(reference, views, coloured, inside, params)
    return [None if m is None or not (lined_up or m.lines_up(params)) else m.low for m in measured]


def agreement(
    reference: Square,
    warped: Grey,
    inside: Grey | None = None,
    params: AlignParams = DEFAULT,
    lined_up: bool = False,
) -> float | None:
    """The low quantile of the cells' correlation between a reference square and
    the query brought into its frame; None where too few structured cells are inside or
    the frames do not line up (`Cells.lines_up`: the cells' median under ``min_median`` and
    few of them sure), unless ``lined_up`` (brought in through a trusted quad)."""
    return _scores(reference, warped[None], inside, params, lined_up)[0]


def turns(query: Grey, params: AlignParams = DEFAULT) -> Grey:
    """The whole query squeezed to the reference's square, in its eight turns and flips,
    stacked (the first is the query as it is); grey (8, side, side) or colour (8, side,
    side, 3)."""
    cv2 = _cv2()
    side = params.side
    square = cv2.resize(query, (side, side), interpolation=cv2.INTER_AREA)
    return np.stack(
        [np.rot90(flipped, k) for flipped in (square, square[:, ::-1]) for k in range(4)]
    )


def _shrunk(query: Grey, corners: npt.NDArray[np.float32], side: int) -> tuple[Grey, float]:
    """The query shrunk so that a warp through ``corners`` does not alias (the work's
    outline then spans about two squares' sides), and the factor it was shrunk by."""
    cv2 = _cv2()
    span = max(float(np.ptp(corners[:, 0])), float(np.ptp(corners[:, 1])), 1.0)
    factor = min(1.0, 2.0 * side / span)
    if factor >= 1.0:
        return query, 1.0
    size = (max(1, round(query.shape[1] * factor)), max(1, round(query.shape[0] * factor)))
    return np.asarray(cv2.resize(query, size, interpolation=cv2.INTER_AREA), np.float32), factor


def _square_corners(side: int) -> npt.NDArray[np.float32]:
    return np.array([[0, 0], [side, 0], [side, side], [0, side]], dtype=np.float32)


def _warped(source: Grey, corners: npt.NDArray[np.float32], side: int) -> tuple[Grey, Grey]:
    """``source`` brought into the square through ``corners`` (in ``source``'s pixels), and
    where it covers the square."""
    cv2 = _cv2()
    homography = cv2.getPerspectiveTransform(corners, _square_corners(side))
    warped = cv2.warpPerspective(source, homography, (side, side), flags=cv2.INTER_LINEAR)
    inside = cv2.warpPerspective(
        np.ones_like(source), homography, (side, side), flags=cv2.INTER_NEAREST
    )
    return np.asarray(warped, np.float32), np.asarray(inside, np.float32)


def _corners(quad: Quad) -> npt.NDArray[np.float32] | None:
    corners = np.asarray(quad, dtype=np.float32)
    if corners.shape != (4, 2) or not np.all(np.isfinite(corners)):
        return None
    return corners


def warp(query: Grey, quad: Quad, params: AlignParams = DEFAULT) -> tuple[Grey, Grey] | None:
    """The query brought into the reference's square through the reference's corners in
    the query (``quad``: top left, top right, bottom right, bottom left, in the query's
    pixels), and where the query covers that square (1 inside, 0 outside)."""
    corners = _corners(quad)
    if corners is None:
        return None
    source, factor = _shrunk(query, corners, params.side)
    return _warped(source, corners * np.float32(factor), params.side)


def _moved(
    corners: npt.NDArray[np.float32],
    side: int,
    scales: Iterable[float],
    shifts: Iterable[float],
) -> npt.NDArray[np.float32]:
    """The square's ``corners`` scaled about its centre and moved by each pair of
    ``shifts`` (pixels of the square), for each of ``scales``: (k, 4, 2)."""
    centre = side / 2.0
    offsets = list(shifts)
    moved = [
        (corners - centre) * np.float32(scale) + centre + np.array([dx, dy], np.float32)
        for scale in scales
        for dx in offsets
        for dy in offsets
    ]
    return np.stack(moved).astype(np.float32)


def _smooth(pixels: npt.NDArray[np.generic], sigma: float) -> Grey:
    """Grey pixels blurred by a Gaussian of ``sigma`` pixels (0: as they are)."""
    grey_pixels = np.asarray(pixels, np.float32)
    if sigma <= 0:
        return grey_pixels
    return np.asarray(_cv2().GaussianBlur(grey_pixels, (0, 0), sigma), np.float32)


def settled(
    reference: Square, query: Grey, quad: Quad, params: AlignParams = DEFAULT
) -> float | None:
    """The agreement through a quad that no keypoints verified (a template's placement,
    good to a pixel or two of the square and a few percent of its size): the reference's
    frame is moved around it by up to ``settle_shift`` pixels of the square each way and
    scaled by ``settle_scales``, and the highest agreement among those frames is kept.
    The median rule applies to it."""
    cv2 = _cv2()
    corners = _corners(quad)
    if corners is None:
        return None
    side = params.side
    source, factor = _shrunk(query, corners, side)
    frame = _square_corners(side)
    to_query = cv2.getPerspectiveTransform(frame, corners * np.float32(factor))
    reach = params.settle_shift
    moved = _moved(frame, side, params.settle_scales, [float(d) for d in range(-reach, reach + 1)])
    quads = cv2.perspectiveTransform(moved.reshape(-1, 1, 2), to_query).reshape(-1, 4, 2)
    pairs = [_warped(source, q, side) for q in quads]
    views = np.stack([_smooth(v, params.settle_blur) for v, _ in pairs])
    insides = np.stack([i for _, i in pairs])
    # Both blurred alike, the opacity too: a blurred pixel is the reference's own only
    # where the blurred opacity is full, and the background shows through the rest.
    sigma = params.settle_blur
    opaque = None if reference.opaque is None else _smooth(reference.opaque, sigma)
    reference = Square(_smooth(reference.pixels, sigma), opaque)
    # The background behind a transparent reference, read once through the quad as found.
    middle = len(quads) // 2
    levels = _backgrounds(reference, views[middle : middle + 1], insides[middle], params)
    measured = [
        m
        for m in _measures(reference, views, insides, params, levels)
        if m is not None and m.lines_up(params)
    ]
    return max(m.low for m in measured) if measured else None


def through(
    reference: Square,
    query: Grey,
    quad: Quad,
    params: AlignParams = DEFAULT,
    lined_up: bool = False,
    coloured: Grey | None = None,
) -> float | None:
    """The agreement of a reference with the query brought into its frame through
    ``quad`` (`warp`); None for a malformed quad or nothing measurable. With the query's
    ``coloured`` pixels (`colour`) and the reference's channels, each cell counts its best
    of grey, red, green and blue (`_in_colour`)."""
    warped = warp(query, quad, params)
    if warped is None:
        return None
    in_colour = None if coloured is None else warp(coloured, quad, params)
    views = None if in_colour is None else in_colour[0][None]
    return _scores(reference, warped[0][None], warped[1], params, lined_up, views)[0]


def best_agreement(
    references: Iterable[tuple[Square, Sequence[Quad]]],
    query: Grey,
    params: AlignParams = DEFAULT,
    whole: Grey | None = None,
    inliers: int = 0,
    coloured: Grey | None = None,
    whole_coloured: Grey | None = None,
) -> float | None:
    """The best agreement of the query with any of a work's references, each given as its
    square and the quads verified keypoints found for it: the whole query in each turn
    and flip (``whole``: those, where already made by `turns`), and the query through each
    of that reference's quads (found with ``inliers`` verified keypoints: from
    ``params.trusted_inliers`` on, measured whatever the median). Where the query's
    ``coloured`` pixels are given (and ``whole_coloured``: their `turns`, where already
    made), the cells are compared in colour too (`_in_colour`)."""
    trusted = inliers >= params.trusted_inliers
    squeezed = turns(query, params) if whole is None else whole
    if coloured is not None and whole_coloured is None:
        whole_coloured = turns(coloured, params)
    best: float | None = None
    for reference, quads in references:
        values = _scores(reference, squeezed, None, params, coloured=whole_coloured)
        values += [through(reference, query, quad, params, trusted, coloured) for quad in quads]
        for value in values:
            if value is not None and (best is None or value > best):
                best = value
    return best
