"""The versioned policy: calibrations, fusion weights, decision bands, overrides.

Pure: loading parses and validates a document into frozen dataclasses; `decide` maps a
fused score to a decision. No threshold lives in code; they all come from a policy file.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import TypeAdapter, ValidationError

from screener.core.errors import InvalidThresholds, PolicyError
from screener.core.proposals import ProposalRules
from screener.models import SignalDescriptor, descriptor, descriptors

# Evidence no fingerprinter gives: the inliers local features verify, with one homography
# and summed over rigid parts (matching.verification).
LOCAL_EVIDENCE = ("local_inliers", "part_inliers")
# Evidence of the query brought into a reference's frame (screener/models/alignment.py):
# how well it agrees with the reference cell by cell.
ALIGNED_EVIDENCE = ("aligned_agreement",)
PROMPT_EVIDENCE = ("prompt_keyword", "prompt_clip_cosine")


def image_evidence() -> tuple[str, ...]:
    """Every image evidence name, from the registered signals' descriptors: each signal's
    whole-image value, then each one's region value, the local inliers, and last the values
    derived from signals (SSCD's background-normalised cosine)."""
    signals = list(descriptors().values())
    return (
        *(d.evidence for d in signals),
        *(d.region_evidence for d in signals),
        *LOCAL_EVIDENCE,
        *(name for d in signals for name in d.extra_evidence),
        *ALIGNED_EVIDENCE,
    )


def families() -> dict[str, tuple[str, ...]]:
    """Image evidence of signals that see the same thing in the same way, by the family their
    descriptors name: a policy's ``groups`` may use these (the accuracy benchmark's fit
    tries them)."""
    members: dict[str, list[SignalDescriptor]] = {}
    for d in descriptors().values():
        members.setdefault(d.family, []).append(d)
    return {
        family: (
            *(d.evidence for d in group),
            *(d.region_evidence for d in group),
            *(name for d in group for name in d.extra_evidence),
        )
        for family, group in members.items()
    }


def evidence() -> tuple[str, ...]:
    """Every evidence name a policy may calibrate: image evidence, then the prompt's."""
    return image_evidence() + PROMPT_EVIDENCE


class Decision(StrEnum):
    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"


@dataclass(frozen=True)
class Calibration:
    """A straight line from ``lo`` (evidence 0) to ``hi`` (evidence 1), clipped to [0, 1]."""

    lo: float
    hi: float
    weight: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo != self.hi):
            raise ValueError(f"lo and hi must be finite and differ (got {self.lo}, {self.hi})")
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"weight must be a finite number >= 0 (got {self.weight})")


@dataclass(frozen=True)
class Bands:
    """Fused scores at or above ``review`` are reviewed, at or above ``block`` blocked."""

    review: float
    block: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.review <= self.block <= 1.0:
            raise ValueError(
                f"bands need 0 <= review <= block <= 1 (got review={self.review}, "
                f"block={self.block})"
            )


def bands(review: float, block: float) -> Bands:
    """Bands from a caller's values: :class:`InvalidThresholds` says what is wrong (the
    dataclass raises ``ValueError``, which policy parsing reports with its place)."""
    if not all(math.isfinite(v) for v in (review, block)) or not 0.0 <= review <= block <= 1.0:
        raise InvalidThresholds(
            f"thresholds need 0 <= review <= block <= 1 (got review={review:g}, block={block:g})"
        )
    return Bands(review=review, block=block)


@dataclass(frozen=True)
class Matching:
    pdq_min_quality: float = 0.5
    region_min_quality: float = 0.5
    neighbours: int = 20
    radius: Mapping[str, float] = field(default_factory=dict)
    max_matches: int = 5
    # Candidate works (best first by their global signals) verified with local features.
    verify_top: int = 20
    # Works proposed by the descriptor-level index (votes of the query's local
    # descriptors), verified beside those: at most ``vote_top``, each with ``min_votes``.
    vote_top: int = 5
    min_votes: int = 5
    # The background neighbour whose similarity normalises SSCD (``sscd_norm_cosine``).
    background_k: int = 10
    # The other registered work whose closeness sets a work's cohort level (0: none).
    cohort_k: int = 0
    # What a query's content box and a collage's tiles are (`screener.core.proposals`).
    proposals: ProposalRules = field(default_factory=ProposalRules)

    def __post_init__(self) -> None:
        if self.neighbours < 1 or self.max_matches < 1:
            raise ValueError("neighbours and max_matches must be at least 1")
        if self.verify_top < 0:
            raise ValueError("verify_top must be at least 0 (0: no local verification)")
        if self.vote_top < 0 or self.min_votes < 1:
            raise ValueError("vote_top must be at least 0 and min_votes at least 1")
        if self.background_k < 1 or self.cohort_k < 0:
            raise ValueError("background_k must be at least 1 and cohort_k at least 0")

    def quality_floor(self, signal: str) -> float | None:
        """The least quality a fingerprint of ``signal`` needs to count, from the setting its
        descriptor names (PDQ: ``pdq_min_quality``); None for a signal without quality."""
        setting = descriptor(signal).quality_floor
        return None if setting is None else float(getattr(self, setting))


@dataclass(frozen=True)
class NoticeSearch:
    """How a notice finds the released outputs to re-screen in the check-fingerprint index
    (`screener.matching.check_index`): every stored fingerprint within ``radius`` of one of
    the work's reference fingerprints (per signal: inner product at least it, Hamming
    distance at most it; the shipped values are where each signal's evidence starts, its
    ramp's ``lo``), at most ``neighbours`` per reference fingerprint. A signal without a
    radius takes the ``neighbours`` nearest."""

    neighbours: int = 1000
    radius: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.neighbours < 1:
            raise ValueError("notices.neighbours must be at least 1")
        if not all(math.isfinite(v) for v in self.radius.values()):
            raise ValueError("notices.radius values must be finite numbers")


@dataclass(frozen=True)
class BlockEvidence:
    """What a block must rest on: at least one of ``signals`` at ``min_evidence`` or more
    (evidence in [0, 1] as the fusion computes it, levels applied). A case that reaches the
    block band without it is reviewed instead: many verified keypoints on a shared drawing
    style are what a same-family look-alike reaches, not proof of a copy.

    ``min_log_odds`` (None: no floor) also asks for that much evidence in all, counted past
    full (`fusion.log_odds`): a same-family look-alike can bring one or two signals to full
    evidence (a badge of the same brand with other initials), a copy brings most of them
    well past it. Below the floor a case in the block band is reviewed."""

    signals: tuple[str, ...] = ()
    min_evidence: float = 1.0
    min_log_odds: float | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.signals) - set(image_evidence()))
        if unknown:
            raise ValueError(f"block_evidence.signals must be image signals; unknown: {unknown}")
        if not (math.isfinite(self.min_evidence) and 0.0 < self.min_evidence <= 1.0):
            raise ValueError("block_evidence.min_evidence must be in (0, 1]")
        if self.min_log_odds is not None and not math.isfinite(self.min_log_odds):
            raise ValueError("block_evidence.min_log_odds must be a finite number or null")


@dataclass(frozen=True)
class CharacterReview:
    """The character route: a check whose ``evidence`` (a character score, e.g.
    ``character_margin``) reaches ``threshold`` for a work is reviewed, never blocked, when
    the fused score alone would allow it. A drawn character in a new pose is for a person
    to judge; the fused score still decides every block."""

    evidence: str = "character_margin"
    threshold: float = 1.0

    def __post_init__(self) -> None:
        if self.evidence not in image_evidence():
            raise ValueError(
                f"character_review.evidence must be an image signal; unknown: {self.evidence!r}"
            )
        if not math.isfinite(self.threshold):
            raise ValueError("character_review.threshold must be a finite number")


@dataclass(frozen=True)
class Contradiction:
    """Evidence against a copy: where ``evidence`` (a signal calibrated under ``signals``,
    e.g. ``aligned_agreement``) was measured, the fused logit loses ``weight`` times what
    that evidence lacks of full. A same-family look-alike lines up with the work and then
    differs in the cells where it is another drawing (other initials, another mouth)."""

    evidence: str
    weight: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"contradiction.weight must be a finite number >= 0 ({self.weight})")


PROMPT_HOWS = ("exact", "homoglyph", "separator", "romanised", "fuzzy")


@dataclass(frozen=True)
class PromptPolicy:
    """How a prompt's matched terms become a work's prompt score and a decision.

    A name found by ``how`` scores ``weights[how]``; each distinct related term of a work
    scores ``related_weight``, but only ``related_min_terms`` or more of them count (one
    related term alone never matches). A work's score is the larger of the two, at most
    1; the prompt is refused at ``refuse``, warned about at ``warn``. ``fuzzy`` lists
    (shortest key length, edits allowed from that length on); ``homophone_han``: a
    Chinese prompt matches a Chinese name by its pinyin alone (another character of the
    same sound) only for names of at least this many characters.
    """

    weights: Mapping[str, float] = field(
        default_factory=lambda: {
            "exact": 1.0,
            "homoglyph": 1.0,
            "separator": 1.0,
            "romanised": 1.0,
            "fuzzy": 0.8,
        }
    )
    related_weight: float = 0.45
    related_min_terms: int = 2
    warn: float = 0.6
    refuse: float = 0.95
    fuzzy: tuple[tuple[int, int], ...] = ((6, 1), (10, 2))
    homophone_han: int = 3

    def __post_init__(self) -> None:
        unknown = sorted(set(self.weights) - set(PROMPT_HOWS))
        if unknown:
            raise ValueError(f"unknown prompt match kind(s) {unknown}; known: {list(PROMPT_HOWS)}")
        for name, value in [*self.weights.items(), ("related_weight", self.related_weight)]:
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"prompt weight {name} must be in [0, 1] (got {value})")
        if self.related_min_terms < 2:
            raise ValueError("related_min_terms must be at least 2: one related term never matches")
        if not 0.0 < self.warn <= self.refuse <= 1.0:
            raise ValueError(
                f"prompt bands need 0 < warn <= refuse <= 1 (got warn={self.warn}, "
                f"refuse={self.refuse})"
            )
        for min_length, distance in self.fuzzy:
            if min_length < 4 or not 0 <= distance <= 2:
                raise ValueError(
                    "fuzzy bounds are (shortest key length >= 4, edits 0-2) pairs "
                    f"(got ({min_length}, {distance}))"
                )
        if self.homophone_han < 1:
            raise ValueError("homophone_han must be at least 1")


@dataclass(frozen=True)
class AppealDeadlines:
    """Days the rights holder has to respond to an appeal and the operator to decide it,
    counted from the filing."""

    respond_days: float = 7.0
    decide_days: float = 14.0

    def __post_init__(self) -> None:
        if not (0 < self.respond_days <= self.decide_days <= 3650):
            raise ValueError(
                "appeal deadlines need 0 < respond_days <= decide_days <= 3650 "
                f"(got respond_days={self.respond_days}, decide_days={self.decide_days})"
            )


TERRITORY_CODE = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class Registration:
    """What a reference image must have to be registered (see `screener.matching.registrability`):
    below any ``min_*`` it is refused; a background-bank image that would reach the
    ``bank_hold`` band against it ("review", "block", or "never") holds it for an
    operator. The defaults are those of the shipped policy."""

    min_content_side: float = 16.0
    min_contrast: float = 8.0
    min_edge_density: float = 0.002
    border_tolerance: float = 12.0
    edge_step: float = 24.0
    bank_hold: Literal["review", "block", "never"] = "review"

    def __post_init__(self) -> None:
        numbers = (
            self.min_content_side,
            self.min_contrast,
            self.min_edge_density,
            self.border_tolerance,
            self.edge_step,
        )
        if not all(math.isfinite(n) and n >= 0 for n in numbers):
            raise ValueError("registration thresholds must be finite numbers >= 0")
        if self.min_edge_density > 1:
            raise ValueError("registration.min_edge_density is a share: at most 1")
        if self.edge_step <= 0 or self.border_tolerance >= 255:
            raise ValueError("edge_step must be above 0 and border_tolerance below 255")


@dataclass(frozen=True)
class Characters:
    """How per-work character models are trained (`screener.matching.characters`): augmented views
    per work, backgrounds alone as negatives, views kept as the other works' negatives,
    older models retrained when a new work's views fool them, gradient steps, L2 weight,
    and the most other works' and bank vectors used as negatives."""

    views: int = 96
    scenes: int = 16
    kept_views: int = 24
    neighbours: int = 3
    steps: int = 300
    l2: float = 1e-3
    negatives: int = 4000
    seed: int = 0

    def __post_init__(self) -> None:
        if (
            min(self.views, self.steps, self.negatives) < 1
            or min(self.scenes, self.kept_views, self.neighbours) < 0
        ):
            raise ValueError("characters: views, steps and negatives >= 1; the rest >= 0")
        if not (math.isfinite(self.l2) and self.l2 >= 0):
            raise ValueError(f"characters.l2 must be a finite number >= 0 (got {self.l2})")


@dataclass(frozen=True)
class Policy:
    version: str
    bias: float
    signals: Mapping[str, Calibration]
    bands: Bands
    work_overrides: Mapping[str, Bands] = field(default_factory=dict)
    matching: Matching = field(default_factory=Matching)
    # Added to the fused logit times the strongest single evidence: one signal that is
    # closer than anything unrelated (full evidence) can decide alone, however many
    # others stay silent (a work pasted into a new scene leaves only local features).
    max_weight: float = 0.0
    # Signals that measure the same thing (one descriptor on the whole image and on its
    # regions) add only their largest weighted evidence per group, not each: an
    # unrelated image that looks alike to SSCD must not count twice for it.
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Bands for checks released in a territory (ISO 3166-1 alpha-2), instead of ``bands``;
    # a work's own override still comes first.
    territory_bands: Mapping[str, Bands] = field(default_factory=dict)
    appeals: AppealDeadlines = field(default_factory=AppealDeadlines)
    # The spec id of each model whose output the ramps and bands were fitted on, keyed as
    # a verdict's ``models`` (``local_inliers``: the keypoint extractor and its OpenCV
    # release). A screener running another spec warns at start-up (`spec_drift`).
    fitted_with: Mapping[str, str] = field(default_factory=dict)
    # How many ramp widths past ``hi`` a signal's evidence still counts in the reported
    # log-odds (`fusion.log_odds`): the probability stops at its cap, the log-odds keep
    # ordering the strongest cases, so that a strict operating point has a threshold.
    margin_cap: float = 1.0
    # The evidence that counting past full needs (`fusion.log_odds`): the margin past each
    # ``hi`` counts in proportion to this signal's evidence in [0, 1] (a same-family
    # look-alike is past full on hashes, SSCD and keypoints, but does not agree with the
    # work cell by cell). Where the case has no value for it, the margin counts whole.
    # None: the margin always counts whole.
    margin_gate: str | None = None
    # What a block must rest on (`BlockEvidence`); None: the block band alone decides.
    block_evidence: BlockEvidence | None = None
    # The evidence in all (`fusion.log_odds`) that a review must rest on: a case in the
    # review band below it is allowed (the probability saturates, so its band cannot be
    # set at a measured 1 % of unrelated images; the log-odds can). None: no floor.
    review_min_log_odds: float | None = None
    # Evidence against a copy (`Contradiction`), taken from the fused logit; None: none.
    contradiction: Contradiction | None = None
    # The character route (`CharacterReview`); None: no route, the bands alone decide.
    character_review: CharacterReview | None = None
    # Prompt screening (before generation, and the prompt signal inside checks).
    prompt: PromptPolicy = field(default_factory=PromptPolicy)
    # What a reference image needs to be registered, and when one is held.
    registration: Registration = field(default_factory=Registration)
    # How per-work character models are trained.
    characters: Characters = field(default_factory=Characters)
    # How a notice finds the released outputs it re-screens.
    notices: NoticeSearch = field(default_factory=NoticeSearch)

    def __post_init__(self) -> None:
        if not self.version.strip():
            raise ValueError("version must not be empty")
        odd = sorted(t for t in self.territory_bands if not TERRITORY_CODE.match(t))
        if odd:
            raise ValueError(f"territory_bands keys must be ISO 3166-1 alpha-2 codes: {odd}")
        if any(not name.strip() or not spec.strip() for name, spec in self.fitted_with.items()):
            raise ValueError("fitted_with needs a model name and a spec id in every entry")
        grouped = [name for members in self.groups.values() for name in members]
        if len(grouped) != len(set(grouped)):
            raise ValueError("a signal may be in one group only")
        image = image_evidence()
        if set(grouped) & set(PROMPT_EVIDENCE) or set(grouped) - set(image):
            raise ValueError(f"groups may hold image signals only: {list(image)}")
        if not math.isfinite(self.bias):
            raise ValueError("bias must be finite")
        if not (math.isfinite(self.margin_cap) and self.margin_cap >= 1.0):
            raise ValueError(f"margin_cap must be a finite number >= 1 (got {self.margin_cap})")
        if self.review_min_log_odds is not None and not math.isfinite(self.review_min_log_odds):
            raise ValueError("review_min_log_odds must be a finite number or null")
        if not (math.isfinite(self.max_weight) and self.max_weight >= 0):
            raise ValueError(f"max_weight must be a finite number >= 0 (got {self.max_weight})")
        known = image + PROMPT_EVIDENCE
        unknown = sorted(set(self.signals) - set(known))
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; known: {list(known)}")
        if not any(name in self.signals for name in image):
            raise ValueError("a policy needs at least one image signal")
        if self.margin_gate is not None and self.margin_gate not in self.signals:
            raise ValueError(f"margin_gate {self.margin_gate!r} needs a calibration under signals")
        if self.contradiction is not None and self.contradiction.evidence not in self.signals:
            raise ValueError("contradiction.evidence needs a calibration under signals")
        # The prompt is one more signal, never the only one: full prompt evidence with no
        # image evidence must stay below the review band of every work.
        prompt_only = sigmoid(
            self.bias + sum(c.weight for n, c in self.signals.items() if n in PROMPT_EVIDENCE)
        )
        lowest_review = min(
            [
                self.bands.review,
                *(b.review for b in self.work_overrides.values()),
                *(b.review for b in self.territory_bands.values()),
            ]
        )
        if prompt_only >= lowest_review:
            raise ValueError(
                f"prompt evidence alone reaches fused score {prompt_only:.3f}, at or above the "
                f"review band {lowest_review}: lower the prompt weights or the bias"
            )

    def bands_for(self, work_id: str | None, territory: str | None = None) -> Bands:
        if work_id is not None and work_id in self.work_overrides:
            return self.work_overrides[work_id]
        if territory is not None and territory in self.territory_bands:
            return self.territory_bands[territory]
        return self.bands

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = _ADAPTER.dump_python(self, mode="json")
        return result


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


_ADAPTER: TypeAdapter[Policy] = TypeAdapter(Policy)


def parse(document: Mapping[str, Any], source: str = "policy") -> Policy:
    """Validate a policy document; a `PolicyError` says what is wrong and where."""
    try:
        return _ADAPTER.validate_python(dict(document))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise PolicyError(f"{source} is not a valid policy: {problems}") from None


def loads(text: str, source: str = "policy") -> Policy:
    """Parse a YAML or JSON policy text."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source} is not valid YAML or JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PolicyError(f"{source} must be a mapping at the top level")
    return parse(document, source)


def load(path: Path | None = None) -> Policy:
    """Load a policy file, or the default policy shipped with the package."""
    if path is None:
        text = resources.files("screener.data").joinpath("default_policy.yaml").read_text("utf-8")
        return loads(text, "the default policy")
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from None
    return loads(text, str(path))


def dumps(policy: Policy) -> str:
    """Serialise a policy as YAML that `loads` reads back to an equal policy."""
    return yaml.safe_dump(json.loads(json.dumps(policy.to_dict())), sort_keys=False)


def spec_drift(policy: Policy, running: Mapping[str, str]) -> list[str]:
    """One sentence for each model the policy was fitted with that runs here under another
    spec id (a model that does not run here at all is reported where it is missing)."""
    return [
        f"policy {policy.version!r} was fitted with {name} {fitted!r}, but this screener runs "
        f"{running[name]!r}: the ramps and bands for its evidence may not hold here; install "
        f"the locked versions (constraints.txt) or refit the policy (screener bench accuracy)"
        for name, fitted in sorted(policy.fitted_with.items())
        if name in running and running[name] != fitted
    ]


def decide(fused: float, bands: Bands) -> Decision:
    """The decision for a fused score under the given bands."""
    if fused >= bands.block:
        return Decision.BLOCK
    if fused >= bands.review:
        return Decision.REVIEW
    return Decision.ALLOW
