"""What explains a character match, gathered in one place for the verdict: the closest
references by the semantic signal (whole image and regions), the work's own character
model's score, and the rigid parts that verified with local features.

A reviewer asked to decide whether a new picture shows a registered character needs to
see which reference it looks like, how sure the work's model is, and which parts of the
character (the head, the body, an arm) matched where. Pure: from a match's values, its
region pairs and its local verification; None where none of that is there.
"""

from __future__ import annotations

from typing import Any

from screener.core.verdict import RegionPair
from screener.matching.verification import LocalMatch

SEMANTIC = ("semantic_cosine", "semantic_region_cosine")
CHARACTER_SCORE = "character_score"


def character_evidence(
    values: dict[str, float | None],
    regions: dict[str, RegionPair],
    local: LocalMatch | None,
) -> dict[str, Any] | None:
    """``closest``: the references the semantic signal found nearest (reference id,
    cosine and which evidence, best first, one row per reference); ``character_score``;
    ``part_inliers`` and ``parts`` (inliers, quad in the query, box in the reference)."""
    rows: dict[int, dict[str, Any]] = {}
    for name in SEMANTIC:
        value, pair = values.get(name), regions.get(name)
        if value is None or pair is None:
            continue
        row = rows.get(pair.reference_id)
        if row is None or value > row["cosine"]:
            rows[pair.reference_id] = {
                "reference_id": pair.reference_id,
                "cosine": round(float(value), 4),
                "evidence": name,
                "region": pair.query,
            }
    closest = sorted(rows.values(), key=lambda r: -float(r["cosine"]))
    score = values.get(CHARACTER_SCORE)
    parts = local.parts if local is not None else ()
    if not closest and score is None and not parts:
        return None
    return {
        "closest": closest,
        "character_score": None if score is None else round(float(score), 4),
        "part_inliers": local.part_inliers if parts and local is not None else None,
        "part_reference_id": local.part_reference_id if parts and local is not None else None,
        "parts": [p.evidence() for p in parts],
    }
