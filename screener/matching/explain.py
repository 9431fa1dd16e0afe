"""Evidence pictures: the query with the matched region outlined, the reference beside it,
and lines joining the keypoints that verified the match.

Reviewers and rights holders look rather than read. The picture is drawn from a fresh
comparison of the query with the one work it explains, so it shows the same geometry as
the verdict's ``local.quad``; where no reference verified with local features, the
boxes of the best whole-image or region pair are drawn instead. The rigid parts that
verified (a character's head, body and raised arm in a new pose) are drawn each in its own
colour, with its inlier count, on the query and, where they are of the reference shown,
on the reference.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from screener.core.fusion import is_level
from screener.core.regions import CENTRE as CENTRE_REGION
from screener.core.regions import GRID, WHOLE_REGION, Region, parse_window
from screener.core.verdict import Match, RegionPair
from screener.matching.verification import LocalMatch

PANEL = 360  # each image's longest side in the picture
GAP = 24
MARGIN = 12
CAPTION_LINE = 20
MAX_LINES = 60  # keypoint pairs drawn (strongest first is not known: evenly sampled)
OUTLINE = (230, 30, 30)
LINK = (20, 170, 60)
# One colour per verified part, in the order found (``PartParams.max_parts`` at most).
PART_COLOURS = ((30, 90, 230), (240, 140, 0), (170, 40, 200), (0, 170, 170))
INK = (20, 20, 20)
PAPER = (255, 255, 255)
CHECKER = ((255, 255, 255), (204, 204, 204))  # transparent areas, as the console shows them
CHECKER_CELL = 10
_REGIONS = {r.name: r for r in (*GRID, CENTRE_REGION, WHOLE_REGION)}
# Captions name works in any script (Chinese titles and ids above all). The font comes with
# the install (the PyPI wheel noto-cjk-sans-otc, Noto Sans CJK under the SIL OFL), else
# from Debian's fonts-noto-cjk; the face is the Simplified Chinese one.
CJK_PACKAGE = ("noto_cjk_sans_otc", "NotoSansCJK-Regular.ttc")
CJK_SYSTEM = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf"),
)
CJK_FACE = "Noto Sans CJK SC"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Picture:
    png: bytes
    width: int
    height: int
    work_id: str


def _fit(image: Image.Image) -> tuple[Image.Image, float]:
    scale = PANEL / max(image.width, image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.convert("RGB").resize(size, Image.Resampling.LANCZOS), scale


def region_of(name: str) -> Region:
    """The box of a stored region name ("grid01", "whole/d3", "centre/bg-black", ...)."""
    return parse_window(name) or _REGIONS.get(name.split("/", 1)[0], WHOLE_REGION)


def _box(region: Region, image: Image.Image) -> tuple[float, float, float, float]:
    return (
        region.left * image.width,
        region.top * image.height,
        region.right * image.width,
        region.bottom * image.height,
    )


@dataclass(frozen=True)
class FontFile:
    path: Path
    index: int  # the face within a collection (.ttc)


def _face_index(path: Path) -> int | None:
    """The index of the Simplified Chinese face in ``path`` (None if it has none)."""
    for index in range(16):
        try:
            face = ImageFont.truetype(str(path), 14, index=index)
        except OSError:
            return 0 if index else None  # past the last face; a single font is face 0
        if face.getname()[0] == CJK_FACE:
            return index
    return None


@functools.cache
def caption_font_file() -> FontFile | None:
    """The CJK font captions are drawn in, or None (then captions in other scripts than
    Latin come out as boxes, and a warning says so once)."""
    package, name = CJK_PACKAGE
    candidates: list[Path] = []
    with contextlib.suppress(ModuleNotFoundError):
        candidates.append(Path(str(resources.files(package).joinpath(name))))
    candidates.extend(CJK_SYSTEM)
    for path in candidates:
        if path.is_file():
            index = _face_index(path)
            if index is not None:
                return FontFile(path, index)
    log.warning(
        "no CJK font found (pip install noto-cjk-sans-otc, or apt-get install "
        "fonts-noto-cjk): evidence captions in Chinese will show boxes"
    )
    return None


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    found = caption_font_file()
    if found is not None:
        return ImageFont.truetype(str(found.path), size, index=found.index)
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow built without FreeType
        return ImageFont.load_default()


def over_checkerboard(image: Image.Image, alpha: Image.Image) -> Image.Image:
    """``image`` (RGB, composited over white with ``alpha``) over a checkerboard instead,
    so that a transparent reference reads as transparent, not as white or black."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    a = np.asarray(alpha.resize(image.size), dtype=np.float32)[..., None] / 255.0
    ys, xs = np.indices((image.height, image.width))
    dark = ((ys // CHECKER_CELL + xs // CHECKER_CELL) % 2).astype(bool)
    board = np.where(dark[..., None], CHECKER[1], CHECKER[0]).astype(np.float32)
    # rgb = a * colour + (1 - a) * white, so the same colour over the board is:
    out = rgb + (1.0 - a) * (board - 255.0)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGB")


def draw(
    query: Image.Image,
    reference: Image.Image,
    match: Match,
    local: LocalMatch | None,
    region: RegionPair | None,
    query_size: tuple[int, int],
    caption: Sequence[str] = (),
) -> Image.Image:
    """The evidence picture for one match.

    ``query`` is the decoded query (any size); ``query_size`` is the size of the frame
    ``local``'s query coordinates are in (the original image). ``reference`` is the
    reference at the size its keypoints were found in (``local.reference_size``), or any
    size when there is no ``local``.
    """
    left, _ = _fit(query)
    right, _ = _fit(reference)
    q_scale = left.width / max(1, query_size[0])
    values = [
        f"{name} {value:g}" if float(value).is_integer() else f"{name} {value:.3f}"
        for name, value in match.signals.items()
        if value is not None and not is_level(name)  # levels: in the JSON
    ]
    lines = [
        f"{match.decision.upper()}  work {match.work_id}"
        + (f"  《{match.title}》" if match.title and match.title != match.work_id else "")
        + f"  fused {match.fused_score:.4f}",
        *("   ".join(values[i : i + 4]) for i in range(0, len(values), 4)),
        *caption,
    ]
    top = MARGIN + CAPTION_LINE * len(lines) + MARGIN
    width = MARGIN + left.width + GAP + right.width + MARGIN
    height = top + max(left.height, right.height) + MARGIN
    canvas = Image.new("RGB", (width, height), PAPER)
    q_origin = (MARGIN, top)
    r_origin = (MARGIN + left.width + GAP, top)
    canvas.paste(left, q_origin)
    canvas.paste(right, r_origin)
    pen = ImageDraw.Draw(canvas)
    font = _font(14)
    for i, line in enumerate(lines):
        pen.text((MARGIN, MARGIN + i * CAPTION_LINE), line[:160], fill=INK, font=font)

    def at_query(x: float, y: float) -> tuple[float, float]:
        return q_origin[0] + x * q_scale, q_origin[1] + y * q_scale

    if local is not None:
        # reference keypoints are in the reference's own downscaled copy
        ref_scale = right.width / max(1, local.reference_size[0])
        # The work's outline, clipped to the query's panel (a crop of the work maps the
        # reference's corners outside the query), and on the reference the span of the
        # keypoints that verified: the part copied.
        panel = ImageDraw.Draw(left)
        outline = [(x * q_scale, y * q_scale) for x, y in local.quad]
        panel.line([*outline, outline[0]], fill=OUTLINE, width=3)
        canvas.paste(left, q_origin)
        pairs = local.pairs
        step = max(1, len(pairs) // MAX_LINES)
        for qx, qy, rx, ry in pairs[::step]:
            start = at_query(float(qx), float(qy))
            end = (r_origin[0] + float(rx) * ref_scale, r_origin[1] + float(ry) * ref_scale)
            pen.line([start, end], fill=LINK, width=1)
            pen.ellipse([start[0] - 2, start[1] - 2, start[0] + 2, start[1] + 2], outline=LINK)
        if len(pairs):
            x0, y0 = pairs[:, 2].min() * ref_scale, pairs[:, 3].min() * ref_scale
            x1, y1 = pairs[:, 2].max() * ref_scale, pairs[:, 3].max() * ref_scale
            pen.rectangle(
                [r_origin[0] + x0, r_origin[1] + y0, r_origin[0] + x1, r_origin[1] + y1],
                outline=OUTLINE,
                width=3,
            )
        _draw_parts(pen, local, at_query, r_origin, ref_scale, font)
    elif region is not None:
        qx0, qy0, qx1, qy1 = _box(region_of(region.query), left)
        pen.rectangle(
            [q_origin[0] + qx0, q_origin[1] + qy0, q_origin[0] + qx1 - 1, q_origin[1] + qy1 - 1],
            outline=OUTLINE,
            width=3,
        )
        rx0, ry0, rx1, ry1 = _box(region_of(region.reference), right)
        pen.rectangle(
            [r_origin[0] + rx0, r_origin[1] + ry0, r_origin[0] + rx1 - 1, r_origin[1] + ry1 - 1],
            outline=OUTLINE,
            width=3,
        )
    return canvas


def _draw_parts(
    pen: ImageDraw.ImageDraw,
    local: LocalMatch,
    at_query: Callable[[float, float], tuple[float, float]],
    r_origin: tuple[int, int],
    ref_scale: float,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
) -> None:
    """Each verified part's quad on the query and, where the parts are of the reference
    drawn, its box on the reference, in the part's colour with its inlier count."""
    same_reference = local.part_reference_id == local.reference_id
    for i, part in enumerate(local.parts):
        colour = PART_COLOURS[i % len(PART_COLOURS)]
        quad = [at_query(x, y) for x, y in part.quad]
        pen.line([*quad, quad[0]], fill=colour, width=3)
        x, y = min(quad, key=lambda p: (p[1], p[0]))
        pen.text((x + 4, y + 2), f"{i + 1}: {part.inliers}", fill=colour, font=font)
        if same_reference:
            x0, y0, x1, y1 = (v * ref_scale for v in part.box)
            pen.rectangle(
                [r_origin[0] + x0, r_origin[1] + y0, r_origin[0] + x1, r_origin[1] + y1],
                outline=colour,
                width=2,
            )


def to_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def from_png(png: bytes, work_id: str) -> Picture:
    """A stored picture again, as drawn."""
    with Image.open(io.BytesIO(png)) as image:
        return Picture(png, image.width, image.height, work_id)
