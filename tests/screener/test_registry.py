"""Registration, removal and the catalog/index agreement, with the real hash fingerprinters."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from screener import Screener, Settings
from screener.core import policy as policy_mod
from screener.core import samples
from screener.core.errors import Conflict, DecodeError, InputError, NotFound


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def screener(tmp_path: Path) -> Iterator[Screener]:
    with Screener(Settings(data_dir=tmp_path)) as s:
        yield s


def test_register_check_remove(screener: Screener) -> None:
    art = samples.scene(7)
    result = screener.registry.register(
        "scene-7", [png(art)], title="Scene", owner="acme", aliases=["Seven"]
    )
    assert result.work.reference_count == 1
    assert result.work.owner == "acme"
    assert screener.check(png(art)).top_work_id == "scene-7"
    assert screener.registry.remove("scene-7") > 0
    verdict = screener.check(png(art))
    assert verdict.decision == "allow"
    assert verdict.top_work_id is None
    assert all(r.ok for r in screener.indexes.verify())


def test_registering_the_same_image_twice_is_idempotent(screener: Screener) -> None:
    data = png(samples.scene(1))
    screener.registry.register("w", [data])
    again = screener.registry.register("w", [data])
    assert again.added_references == ()
    assert again.skipped == 1
    assert again.work.reference_count == 1


def test_create_only_refuses_an_existing_work(screener: Screener) -> None:
    screener.registry.register("w", [png(samples.scene(1))])
    with pytest.raises(Conflict):
        screener.registry.register("w", [png(samples.scene(2))], create_only=True)


@pytest.mark.parametrize("work_id", ["", "a/b", "bad\x00id", "x" * 201])
def test_bad_work_ids_are_refused(screener: Screener, work_id: str) -> None:
    with pytest.raises(InputError):
        screener.registry.register(work_id, [png(samples.scene(1))])


def test_one_bad_image_fails_the_whole_registration(screener: Screener) -> None:
    good = png(samples.scene(3))
    with pytest.raises(DecodeError, match="image-2"):
        screener.registry.register("w", [good, b"not an image"])
    assert screener.catalog.count_works() == 0
    with pytest.raises(NotFound):
        screener.catalog.get_work("w")


def test_no_images_is_an_input_error(screener: Screener) -> None:
    with pytest.raises(InputError, match="at least one"):
        screener.registry.register("w", [])


def test_removing_an_unknown_work_is_not_found(screener: Screener) -> None:
    with pytest.raises(NotFound):
        screener.registry.remove("nobody")


def test_indexes_survive_restart_and_catch_up_from_the_log(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with Screener(settings) as first:
        first.registry.register("a", [png(samples.scene(1))])
    # A second process registers while this one's index files are stale.
    second = Screener(settings)
    second.registry.register("b", [png(samples.scene(2))])
    second.catalog.close()  # dies without saving its indexes
    with Screener(settings) as third:
        assert {w.id for w in third.catalog.list_works()} == {"a", "b"}
        assert all(r.ok for r in third.indexes.verify())
        assert third.check(png(samples.scene(2))).top_work_id == "b"


def test_a_running_screener_sees_registrations_from_another(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with Screener(settings) as reader, Screener(settings) as writer:
        writer.registry.register("late", [png(samples.scene(9))])
        assert reader.check(png(samples.scene(9))).top_work_id == "late"
        writer.registry.remove("late")
        assert reader.check(png(samples.scene(9))).top_work_id is None


def test_corrupt_index_file_is_rebuilt_from_the_catalog(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with Screener(settings) as s:
        s.registry.register("a", [png(samples.scene(1))])
    for path in (tmp_path / "indexes").glob("*.index"):
        path.write_bytes(path.read_bytes()[:10])
    with Screener(settings) as s:
        assert all(r.ok for r in s.indexes.verify())
        assert s.check(png(samples.scene(1))).top_work_id == "a"


def test_deleting_the_index_folder_loses_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with Screener(settings) as s:
        s.registry.register("a", [png(samples.scene(1))])
    for path in (tmp_path / "indexes").iterdir():
        path.unlink()
    with Screener(settings) as s:
        assert all(r.ok for r in s.indexes.verify())
        assert s.check(png(samples.scene(1))).top_work_id == "a"


def test_prompt_keywords_appear_in_evidence_but_never_decide_alone(screener: Screener) -> None:
    screener.registry.register(
        "ultraman", [png(samples.scene(4))], title="Ultraman", aliases=["奥特曼"]
    )
    unrelated = screener.check(png(samples.drawing(99)), prompt="画一个奥特曼")
    assert unrelated.prompt is not None
    assert unrelated.prompt["keyword_matches"] == {"ultraman": ["奥特曼"]}
    assert unrelated.decision == "allow"
    assert unrelated.near_misses[0].signals["prompt_keyword"] == 1.0
    copy = screener.check(png(samples.scene(4)), prompt="Ultraman")
    assert copy.top_work_id == "ultraman"
    assert copy.matches[0].contributions["prompt_keyword"] > 0


def test_one_related_term_counts_only_beside_image_evidence(screener: Screener) -> None:
    screener.registry.register(
        "hero",
        [png(samples.scene(4))],
        title="Zorvex Prime",
        related_terms=["iron comet ship", "violet jetpack"],
    )
    copy = screener.check(png(samples.scene(4)), prompt="a violet jetpack")
    assert copy.top_work_id == "hero"
    weight = screener.policy.prompt.related_weight
    assert copy.matches[0].signals["prompt_keyword"] == pytest.approx(weight)
    assert copy.prompt is not None and copy.prompt["matches"] == []  # not a match alone
    unrelated = screener.check(png(samples.drawing(99)), prompt="a violet jetpack")
    assert unrelated.decision == "allow"
    assert unrelated.prompt is not None and unrelated.prompt["decision"] == "allow"
    both = screener.check(png(samples.drawing(99)), prompt="violet jetpack, iron comet ship")
    assert both.decision == "allow"  # the prompt never decides alone
    assert both.near_misses[0].signals["prompt_keyword"] == pytest.approx(2 * weight)


def test_per_work_thresholds_change_the_decision(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    query = png(samples.scene(5).resize((200, 150)))
    with Screener(settings) as s:
        s.registry.register("strict", [png(samples.scene(5))])
        assert s.check(query).decision == "block"
    document = policy_mod.load().to_dict()
    document["work_overrides"] = {"strict": {"review": 1.0, "block": 1.0}}
    document["version"] = "test-overrides"
    with Screener(settings, policy=policy_mod.parse(document)) as s:
        verdict = s.check(query)
    assert verdict.policy_version == "test-overrides"
    assert verdict.decision == "allow"
    assert verdict.near_misses[0].work_id == "strict"
    assert verdict.near_misses[0].thresholds == {"review": 1.0, "block": 1.0}
