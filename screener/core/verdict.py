"""What a check returns: the decision and the evidence behind it. Plain frozen data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RegionPair:
    """Which part of the query matched which part of which reference image."""

    query: str
    reference_id: int
    reference: str


@dataclass(frozen=True)
class Match:
    work_id: str
    title: str
    owner: str
    fused_score: float
    decision: str
    thresholds: dict[str, float]
    signals: dict[str, float | None]
    contributions: dict[str, float]
    regions: dict[str, RegionPair]
    # The caller is a licensee of this work: reported, never blocked or sent to review.
    licensed: bool = False
    # Local-feature verification: the reference it verified against, inliers, coverage
    # and ``quad``, the work's outline inside the query (original pixels, clockwise from
    # the reference's top left corner). None where no reference verified.
    local: dict[str, Any] | None = None
    # The work is not protected in the check's territory: reported, never held.
    outside_territory: bool = False
    # The fused log-odds with evidence past full still counted (`fusion.log_odds`): orders
    # the strongest cases where ``fused_score`` has stopped at its cap.
    log_odds: float = 0.0
    # What explains a character match (matching/character_evidence.py): the closest
    # references by the semantic signal, the work's character-model score and the rigid
    # parts that verified. None where there is none of these.
    character: dict[str, Any] | None = None

    @property
    def best_region(self) -> RegionPair | None:
        """The region pair of the strongest contributing image signal."""
        ranked = sorted(
            (c, s) for s, c in self.contributions.items() if s in self.regions and c > 0
        )
        return self.regions[ranked[-1][1]] if ranked else None


@dataclass(frozen=True)
class Verdict:
    decision: str
    fused_score: float
    top_work_id: str | None
    matches: tuple[Match, ...]
    near_misses: tuple[Match, ...]
    thresholds: dict[str, float]
    policy_version: str
    index_version: str
    models: dict[str, str]
    signals_used: tuple[str, ...]
    signals_missing: dict[str, str]
    input: dict[str, Any]
    prompt: dict[str, Any] | None
    timings_ms: dict[str, float] = field(default_factory=dict)
    # Works the caller is licensed to publish that would otherwise have been flagged.
    licensed: tuple[Match, ...] = ()
    # The territory the check applied (ISO 3166-1 alpha-2; None: everywhere) and the
    # works that would have held the output but are not protected there.
    territory: str | None = None
    outside_territory: tuple[Match, ...] = ()
    # The reported match's log-odds (`Match.log_odds`): a strict operating point is a
    # threshold on it where ``fused_score`` has stopped at its cap.
    log_odds: float = 0.0

    @property
    def top_match(self) -> Match | None:
        return self.matches[0] if self.matches else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("matches", "near_misses", "licensed", "outside_territory"):
            for raw, match in zip(data[key], getattr(self, key), strict=True):
                best = match.best_region
                raw["best_region"] = None if best is None else asdict(best)
        return data
