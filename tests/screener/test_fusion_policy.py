"""Fusion and policy are pure: property tests over their whole input space."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from screener.core import fusion
from screener.core import policy as policy_mod
from screener.core.errors import PolicyError
from screener.core.policy import Bands, Decision, Policy

DEFAULT = policy_mod.load()
IMAGE = policy_mod.IMAGE_EVIDENCE

# Raw values in the ranges each signal produces.
RANGES = {
    "pdq_hamming": (0.0, 256.0),
    "phash_hamming": (0.0, 64.0),
    "sscd_cosine": (-1.0, 1.0),
    "clip_cosine": (-1.0, 1.0),
    "prompt_keyword": (0.0, 1.0),
    "prompt_clip_cosine": (-1.0, 1.0),
}


def _value(name: str) -> st.SearchStrategy[float | None]:
    lo, hi = RANGES[name]
    return st.one_of(st.none(), st.floats(lo, hi, allow_nan=False))


values_strategy = st.fixed_dictionaries({name: _value(name) for name in RANGES})


@given(values_strategy)
def test_fused_score_is_a_probability(values: dict[str, float | None]) -> None:
    score = fusion.fuse(values, DEFAULT)
    assert 0.0 <= score <= 1.0


@given(values_strategy, st.sampled_from(sorted(RANGES)), st.floats(0.0, 1.0))
def test_more_similarity_never_lowers_the_score(
    values: dict[str, float | None], name: str, step: float
) -> None:
    lo, hi = RANGES[name]
    current = values[name]
    closer_is_lower = name.endswith("_hamming")
    start = current if current is not None else (hi if closer_is_lower else lo)
    moved = start - step * (start - lo) if closer_is_lower else start + step * (hi - start)
    better = dict(values, **{name: moved})
    assert fusion.fuse(better, DEFAULT) >= fusion.fuse(values, DEFAULT) - 1e-12


@given(values_strategy)
def test_a_missing_signal_gives_no_evidence(values: dict[str, float | None]) -> None:
    for name, calibration in DEFAULT.signals.items():
        if values.get(name) is None:
            assert fusion.evidence(values.get(name), calibration) == 0.0


def test_prompt_alone_never_reaches_review() -> None:
    prompt_only = {"prompt_keyword": 1.0, "prompt_clip_cosine": 1.0}
    score = fusion.fuse(prompt_only, DEFAULT)
    assert policy_mod.decide(score, DEFAULT.bands) is Decision.ALLOW


def test_policy_refuses_prompt_weights_that_decide_alone() -> None:
    document = DEFAULT.to_dict()
    document["signals"]["prompt_keyword"]["weight"] = 50.0
    with pytest.raises(PolicyError, match="prompt evidence alone"):
        policy_mod.parse(document)


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
def test_decide_respects_bands(score: float, a: float, b: float) -> None:
    bands = Bands(review=min(a, b), block=max(a, b))
    decision = policy_mod.decide(score, bands)
    if score >= bands.block:
        assert decision is Decision.BLOCK
    elif score >= bands.review:
        assert decision is Decision.REVIEW
    else:
        assert decision is Decision.ALLOW


@settings(max_examples=50)
@given(st.floats(-20, 20), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_round_trip_through_yaml(bias: float, review: float, block: float) -> None:
    lo, hi = sorted((review, block))
    document = DEFAULT.to_dict()
    document["bias"] = min(bias, -3.0)
    document["bands"] = {"review": max(lo, 0.5), "block": max(hi, 0.5)}
    policy = policy_mod.parse(document)
    assert policy_mod.loads(policy_mod.dumps(policy)) == policy


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"bands": {"review": 0.9, "block": 0.5}}, "review <= block"),
        ({"bands": {"review": -1, "block": 0.5}}, "review <= block"),
        ({"signals": {"pdq_hamming": {"lo": 1, "hi": 1, "weight": 1}}}, "differ"),
        ({"signals": {"sscd_cosine": {"lo": 0, "hi": 1, "weight": -1}}}, "weight"),
        ({"signals": {"mystery": {"lo": 0, "hi": 1, "weight": 1}}}, "unknown signal"),
        ({"signals": {"prompt_keyword": {"lo": 0, "hi": 1, "weight": 0.1}}}, "image signal"),
        ({"version": ""}, "version"),
        ({"bias": "high"}, "bias"),
        ({"groups": {"a": ["sscd_cosine"], "b": ["sscd_cosine"]}}, "one group only"),
        ({"groups": {"a": ["prompt_keyword"]}}, "image signals only"),
        ({"groups": {"a": ["mystery"]}}, "image signals only"),
    ],
)
def test_invalid_policies_are_refused_with_reasons(patch: dict[str, object], message: str) -> None:
    document = DEFAULT.to_dict() | patch
    with pytest.raises(PolicyError, match=message):
        policy_mod.parse(document)


@pytest.mark.parametrize("text", ["", "[1, 2]", "{", "version: [", "bands: 3"])
def test_malformed_policy_text_is_refused(text: str) -> None:
    with pytest.raises(PolicyError):
        policy_mod.loads(text)


def test_missing_policy_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        policy_mod.load(tmp_path / "absent.yaml")


def test_every_image_signal_has_a_calibration() -> None:
    assert set(IMAGE) <= set(DEFAULT.signals)
    assert isinstance(DEFAULT, Policy)
    assert math.isfinite(DEFAULT.bias)


def test_work_overrides_take_precedence() -> None:
    document = DEFAULT.to_dict()
    document["work_overrides"] = {"logo": {"review": 0.6, "block": 0.7}}
    policy = policy_mod.parse(document)
    assert policy.bands_for("logo") == Bands(0.6, 0.7)
    assert policy.bands_for("other") == policy.bands


GROUPED = Policy(
    version="grouped",
    bias=-6.0,
    signals={
        "sscd_cosine": policy_mod.Calibration(0.4, 0.8, 9.0),
        "sscd_region_cosine": policy_mod.Calibration(0.4, 0.8, 9.0),
        "local_inliers": policy_mod.Calibration(12.0, 16.0, 9.0),
    },
    bands=Bands(review=0.9, block=0.99),
    groups={"sscd": ("sscd_cosine", "sscd_region_cosine")},
)


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 30.0))
def test_a_group_adds_only_its_largest_evidence(a: float, b: float, inliers: float) -> None:
    values = {"sscd_cosine": a, "sscd_region_cosine": b, "local_inliers": inliers}
    shares = fusion.contributions(values, GROUPED)
    whole, region = (9.0 * fusion.evidence(v, GROUPED.signals["sscd_cosine"]) for v in (a, b))
    assert shares["sscd_cosine"] + shares["sscd_region_cosine"] == pytest.approx(max(whole, region))
    ungrouped = Policy(**{**GROUPED.__dict__, "groups": {}})
    assert fusion.fuse(values, GROUPED) <= fusion.fuse(values, ungrouped) + 1e-12
    # Signals outside every group still add up.
    assert shares["local_inliers"] == pytest.approx(
        9.0 * fusion.evidence(inliers, GROUPED.signals["local_inliers"])
    )


def test_groups_round_trip_through_yaml() -> None:
    assert policy_mod.loads(policy_mod.dumps(GROUPED)) == GROUPED


# A work's generic level (the value its k-th closest ordinary picture reaches) moves the
# signal's ramp: a generic work needs a closer query for the same evidence.
@given(
    st.floats(0.0, 256.0, allow_nan=False),
    st.floats(0.0, 256.0, allow_nan=False),
    st.floats(0.0, 256.0, allow_nan=False),
)
def test_a_more_generic_work_never_gets_more_evidence(
    value: float, level: float, closer_level: float
) -> None:
    calibration = DEFAULT.signals["pdq_hamming"]  # a distance: lo above hi
    generic, more_generic = max(level, closer_level), min(level, closer_level)
    plain = fusion.evidence(value, calibration)
    shifted = fusion.evidence(value, calibration, generic)
    assert fusion.evidence(value, calibration, more_generic) <= shifted + 1e-12
    assert shifted <= plain + 1e-12
    values = {"pdq_hamming": value}
    with_level = {**values, fusion.generic_name("pdq_hamming"): more_generic}
    assert fusion.fuse(with_level, DEFAULT) <= fusion.fuse(values, DEFAULT) + 1e-12


def test_the_ramp_starts_at_a_generic_level_past_lo_by_at_most_one_width() -> None:
    calibration = policy_mod.Calibration(lo=0.4, hi=0.8, weight=1.0)
    # A level short of lo changes nothing.
    assert fusion.evidence(0.6, calibration, 0.3) == pytest.approx(0.5)
    # A level past lo: the ramp runs from the level, as wide as before.
    assert fusion.evidence(0.6, calibration, 0.5) == pytest.approx(0.25)
    assert fusion.evidence(0.5, calibration, 0.5) == 0.0
    assert fusion.evidence(0.9, calibration, 0.5) == pytest.approx(1.0)
    # At most one width: a work as close to ordinary pictures as a copy still has a ramp.
    assert fusion.evidence(1.0, calibration, 0.95) == pytest.approx(0.5)
    assert fusion.evidence(1.2, calibration, 0.95) == pytest.approx(1.0)
    # Distances move the other way.
    pdq = policy_mod.Calibration(lo=94.0, hi=64.0, weight=1.0)
    assert fusion.evidence(64.0, pdq, 70.0) == pytest.approx(0.2)
    assert fusion.evidence(64.0, pdq, 100.0) == pytest.approx(1.0)
    # Where fusion reads it: under generic_name beside the raw value.
    policy = Policy(
        version="t", bias=-3.0, signals={"sscd_cosine": calibration}, bands=Bands(0.5, 0.9)
    )
    plain = fusion.fuse({"sscd_cosine": 0.6}, policy)
    generic = fusion.fuse({"sscd_cosine": 0.6, "sscd_cosine_generic": 0.5}, policy)
    assert generic < plain
    shares = fusion.contributions({"sscd_cosine": 0.6, "sscd_cosine_generic": 0.5}, policy)
    assert shares == {"sscd_cosine": pytest.approx(0.25)}


# A work's cohort level (the value the k-th closest other registered work reaches) moves
# the ramp as a generic level does; of the two, the one that moves it further counts.
@given(
    st.floats(0.0, 1.0, allow_nan=False),
    st.one_of(st.none(), st.floats(0.0, 1.0, allow_nan=False)),
    st.one_of(st.none(), st.floats(0.0, 1.0, allow_nan=False)),
)
def test_of_two_levels_the_one_that_moves_the_ramp_further_counts(
    value: float, generic: float | None, cohort: float | None
) -> None:
    calibration = DEFAULT.signals["sscd_cosine"]
    both = fusion.evidence(value, calibration, generic, cohort)
    alone = [fusion.evidence(value, calibration, level) for level in (generic, cohort)]
    assert both == pytest.approx(min(alone))
    values: dict[str, float | None] = {"sscd_cosine": value}
    if generic is not None:
        values[fusion.generic_name("sscd_cosine")] = generic
    if cohort is not None:
        values[fusion.cohort_name("sscd_cosine")] = cohort
    assert fusion.evidence_of(values, "sscd_cosine", calibration) == pytest.approx(both)
    assert fusion.fuse(values, DEFAULT) <= fusion.fuse({"sscd_cosine": value}, DEFAULT) + 1e-12


def test_a_cohort_level_past_lo_moves_the_ramp() -> None:
    calibration = policy_mod.Calibration(lo=0.4, hi=0.8, weight=1.0)
    assert fusion.evidence(0.6, calibration, None, 0.5) == pytest.approx(0.25)
    assert fusion.evidence(0.6, calibration, 0.45, 0.5) == pytest.approx(0.25)
    assert fusion.evidence(0.6, calibration, 0.5, 0.45) == pytest.approx(0.25)
    values = {"sscd_cosine": 0.6, fusion.cohort_name("sscd_cosine"): 0.5}
    assert fusion.evidence_of(values, "sscd_cosine", calibration) == pytest.approx(0.25)
    assert fusion.is_level("sscd_cosine_cohort") and fusion.is_level("pdq_hamming_generic")
    assert not fusion.is_level("sscd_cosine")


def test_cohort_k_must_not_be_negative() -> None:
    document = policy_mod.load(None).to_dict()
    document["matching"]["cohort_k"] = -1
    with pytest.raises(PolicyError, match="cohort_k"):
        policy_mod.parse(document)
