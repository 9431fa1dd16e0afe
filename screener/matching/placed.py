"""The placed region: SSCD on the part of the query where a candidate work's own pixels put it.

The located region (`screener.matching.located`) needs verified keypoints to say where a
work sits; an icon, an emoji or a logo pasted small into a photograph gives none. For the
check's leading candidates by SSCD (whole or region), `screener.models.placement` searches
the query for the work's reference itself, and the box it finds is cut out with the
reference's alpha (a transparent work is compared without the photograph behind it). One
SSCD call embeds every candidate's crop; each crop's best cosine with its work's whole
references becomes the work's ``sscd_region_cosine`` where it beats the other regions,
with the query region named ``placed:<box>`` (`screener.core.regions.placed`). A
look-alike gives a box too, but its crop is the look-alike, and SSCD tells it from the
work.

Each reference's template is made from its stored image the first time a check needs it
and kept (`ReferenceCache`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from screener.core import cutout
from screener.core.decode import DecodedImage
from screener.matching.reference_cache import ReferenceCache
from screener.models import placement
from screener.store.catalog import Catalog


def template_of(decoded: DecodedImage) -> placement.Template:
    """A reference's template. An opaque reference drawn on a plain or smooth background
    (a logo or an emoji saved on white) is given the figure's mask as its alpha
    (`screener.core.cutout`): pasted onto a photograph, only the figure comes along."""
    alpha = decoded.alpha
    if alpha is None:
        mask = cutout.figure_mask(np.asarray(decoded.image.convert("RGB")))
        if mask is not None:
            alpha = Image.fromarray(mask.astype(np.uint8) * 255, mode="L")
    return placement.template_of(decoded.image, alpha)


class ReferenceTemplates(ReferenceCache[placement.Template]):
    """Each reference's search template, by image SHA-256, the most recently used kept."""

    def __init__(self, capacity: int = 1024) -> None:  # 200 KB each at most
        super().__init__(template_of, capacity)


@dataclass(frozen=True)
class Search:
    """What both directions search with: the references' templates, the catalog they come
    from, the query's working copy, the pool of works, and the share of the picture a box
    may take at most."""

    templates: ReferenceTemplates
    catalog: Catalog
    image: Image.Image
    pool: Sequence[str]
    max_share: float


def crops(
    search: Search, top: int, params: placement.PlaceParams = placement.DEFAULT
) -> dict[str, tuple[Image.Image, int, placement.Placement]]:
    """Per work, the query's masked crop where its reference sits, that reference's id and
    the placement:
    every reference of the works in ``search.pool`` is placed on the query's coarse copy, the
    ``top`` works whose reference correlates best there are placed exactly and cropped.
    A box that would take more than ``search.max_share`` of the query's area (the whole query and
    the fixed regions already cover it) is left out."""
    query = placement.query_of(search.image, params)
    coarse: dict[str, tuple[int, placement.Template, placement.Coarse]] = {}
    for work_id, references in search.templates.of_works(search.catalog, search.pool).items():
        for ref_id, template in references:
            found = placement.coarse(query, template, params)
            if found is not None and (
                work_id not in coarse or found.score > coarse[work_id][2].score
            ):
                coarse[work_id] = (ref_id, template, found)
    leading = sorted(coarse, key=lambda w: coarse[w][2].score, reverse=True)[:top]
    out: dict[str, tuple[Image.Image, int, placement.Placement]] = {}
    for work_id in leading:
        ref_id, template, found = coarse[work_id]
        where = placement.refine(query, template, found, params)
        if _share(where.box) <= search.max_share:
            out[work_id] = (placement.masked_crop(search.image, where, template), ref_id, where)
    return out


def quad_of(
    box: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[tuple[float, float], ...]:
    """A placement's box (shares of the query's width and height) as the reference's
    corners in the query's pixels (``size``): top left, top right, bottom right, bottom
    left."""
    left, top, right, bottom = box
    width, height = size
    x0, x1, y0, y1 = left * width, right * width, top * height, bottom * height
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def _share(box: tuple[float, float, float, float]) -> float:
    left, top, right, bottom = box
    return (right - left) * (bottom - top)


# A reference searched for the query: its id, its template, its reduced copies, the best.
_Within = tuple[int, placement.Template, placement.Query, placement.Coarse]


def within(
    search: Search, top: int, params: placement.PlaceParams = placement.WITHIN
) -> dict[str, tuple[Image.Image, int, placement.Placement]]:
    """The other way round: per work, where the query sits inside one of its references (a
    crop of the work), the reference's pixels there, and that reference's id. The query
    is searched for on a coarse copy of every reference of the works in ``search.pool``;
    the ``top`` works that correlate best are searched exactly. A box over
    ``search.max_share`` of the reference's area is left out: the whole reference already
    shows it."""
    query = placement.template_of(search.image, None)
    coarse: dict[str, _Within] = {}
    for work_id, references in search.templates.of_works(search.catalog, search.pool).items():
        for ref_id, reference in references:
            searched = placement.query_of(reference.rgb, params)
            found = placement.coarse(searched, query, params)
            if found is not None and (
                work_id not in coarse or found.score > coarse[work_id][3].score
            ):
                coarse[work_id] = (ref_id, reference, searched, found)
    leading = sorted(coarse, key=lambda w: coarse[w][3].score, reverse=True)[:top]
    out: dict[str, tuple[Image.Image, int, placement.Placement]] = {}
    for work_id in leading:
        ref_id, reference, searched, found = coarse[work_id]
        where = placement.refine(searched, query, found, params)
        if _share(where.box) <= search.max_share:
            out[work_id] = (placement.cut(reference.rgb, where), ref_id, where)
    return out


def quad_within(
    box: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[tuple[float, float], ...]:
    """Where the query sits inside a reference (``box``, shares of the reference's width
    and height), as the reference's corners in the query's pixels (``size``): they lie
    outside the query, which shows only the box."""
    left, top, right, bottom = box
    span_x, span_y = max(right - left, 1e-6), max(bottom - top, 1e-6)
    # The reference's own extent in shares of the query: the box, turned inside out.
    extent = (-left / span_x, -top / span_y, (1.0 - left) / span_x, (1.0 - top) / span_y)
    return quad_of(extent, size)
