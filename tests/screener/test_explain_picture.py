"""Evidence pictures draw captions in any script (no boxes for Chinese titles) and show
transparency on a checkerboard, as the console does."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFont

from screener.core.verdict import Match
from screener.matching import explain
from tests import needs

TITLE = "奥特曼：光之巨人"
WORK_ID = "圆谷-迪迦"


def _match() -> Match:
    return Match(
        work_id=WORK_ID,
        title=TITLE,
        owner="tsuburaya",
        fused_score=0.97,
        decision="block",
        thresholds={"review": 0.6, "block": 0.9},
        signals={"pdq_hamming": 12.0},
        contributions={},
        regions={},
    )


def test_a_chinese_title_is_drawn_in_a_font_that_has_its_glyphs() -> None:
    found = needs.cjk_font()
    ttlib = needs.module("fontTools.ttLib", "bench")
    font = explain._font(14)
    assert isinstance(font, ImageFont.FreeTypeFont)
    assert font.path == str(found.path) and font.getname()[0] == explain.CJK_FACE
    cmap = ttlib.TTCollection(str(found.path)).fonts[found.index].getBestCmap()
    missing = sorted({c for c in TITLE + WORK_ID if not c.isascii() and ord(c) not in cmap})
    assert missing == [], missing

    query = Image.new("RGB", (200, 150), (90, 140, 200))
    drawn = explain.draw(query, query, _match(), None, None, (200, 150))
    # The caption's glyphs differ from one another: with no glyph (tofu) every character
    # is the same box.
    glyphs = [np.asarray(font.getmask(c)).tobytes() for c in TITLE if c != "："]
    assert len(set(glyphs)) == len(set(TITLE) - {"："})
    top = np.asarray(drawn.convert("L"))[: explain.MARGIN + explain.CAPTION_LINE]
    assert (top < 128).sum() > 100  # the caption was drawn


def test_transparent_areas_are_drawn_on_a_checkerboard() -> None:
    image = Image.new("RGB", (40, 40), (255, 255, 255))
    alpha = Image.new("L", (40, 40), 0)
    alpha.paste(255, (0, 0, 20, 40))
    image.paste((200, 0, 0), (0, 0, 20, 40))
    shown = np.asarray(explain.over_checkerboard(image, alpha))
    assert (shown[:, :20] == (200, 0, 0)).all()  # opaque: unchanged
    board = {tuple(int(v) for v in px) for px in shown[:, 20:].reshape(-1, 3)}
    assert board == set(explain.CHECKER)  # transparent: the board, never black
