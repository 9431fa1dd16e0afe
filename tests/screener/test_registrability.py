"""Registrability: a reference with too little content is refused, one that looks like an
ordinary picture of the background bank is held for an operator, and real works of every
kind the tests and the accuracy suite make are accepted untouched (issue 17, item 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from screener import Screener, Settings
from screener.bench import accuracy
from screener.bench import suite as bench_suite
from screener.cli import app
from screener.core import policy as policy_mod
from screener.core.errors import NotFound, NotRegistrable, PolicyError
from screener.core.samples import drawing, scene
from screener.matching.background import MIN_IMAGES
from screener.store.audit import AuditLog
from tests.images import png

SIGNALS = ["phash", "pdq", "sscd"]
RNG = np.random.default_rng(17)
ATTACKS = {
    "blue": Image.new("RGB", (512, 512), (0, 0, 255)),
    "white": Image.new("RGB", (512, 512), (255, 255, 255)),
    "black": Image.new("RGB", (512, 512), (0, 0, 0)),
    "one-pixel": Image.new("RGB", (1, 1), (0, 0, 255)),
    "noise-4x4": Image.fromarray(RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8)),
    "gradient": Image.fromarray(
        np.tile(np.linspace(0, 255, 512).astype(np.uint8)[None, :, None], (384, 1, 3))
    ),
    "faint-noise": Image.fromarray(
        np.clip(RNG.normal((0, 0, 255), 3, (512, 512, 3)), 0, 255).astype(np.uint8)
    ),
    "three-dots": Image.fromarray(
        np.where(
            np.isin(np.arange(512 * 512).reshape(512, 512), [51300, 204900, 102850])[..., None],
            0,
            255,
        ).astype(np.uint8)
        * np.ones((1, 1, 3), dtype=np.uint8)
    ),
}
EXPECTED_RULE = {
    "blue": "registration.min_content_side",
    "white": "registration.min_content_side",
    "black": "registration.min_content_side",
    "one-pixel": "registration.min_content_side",
    "noise-4x4": "registration.min_content_side",
    "gradient": "registration.min_edge_density",
    "faint-noise": "registration.min_contrast",
    "three-dots": "registration.min_contrast",
}


@pytest.fixture(scope="module")
def banked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose background bank holds generic scenes and drawings (stock
    pictures: none is anyone's work)."""
    data = tmp_path_factory.mktemp("registrability") / "data"
    generic = data.parent / "generic"
    generic.mkdir()
    for k in range(MIN_IMAGES + 4):
        (drawing(700 + k) if k % 2 else scene(700 + k)).save(generic / f"g{k:02d}.png")
    with Screener(Settings(data_dir=data, signals=SIGNALS)) as screener:
        screener.build_background(sorted(generic.iterdir()), "test stock pictures")
    return data


def test_content_too_small_flat_or_smooth_is_refused_with_rule_value_and_threshold(
    banked: Path,
) -> None:
    with Screener(Settings(data_dir=banked, signals=SIGNALS)) as screener:
        rules = screener.policy.registration
        for name, image in ATTACKS.items():
            with pytest.raises(NotRegistrable) as caught:
                screener.registry.register(f"attack-{name}", [png(image)], names=[f"{name}.png"])
            fired = {f["rule"]: f for f in caught.value.findings}
            assert EXPECTED_RULE[name] in fired, (name, caught.value.findings)
            finding = fired[EXPECTED_RULE[name]]
            key = EXPECTED_RULE[name].split(".")[1]
            assert finding["threshold"] == getattr(rules, key)
            assert float(str(finding["value"])) < float(str(finding["threshold"]))
            assert f"{name}.png cannot be registered" in str(caught.value)
            assert f"< {EXPECTED_RULE[name]}" in str(caught.value)
        assert screener.catalog.count_works() == 0  # nothing stored, not even the work
        # The attack failed: plain outputs are allowed, not blocked or held.
        for colour in [(0, 0, 255), (255, 255, 255), (0, 0, 0)]:
            verdict = screener.check(png(Image.new("RGB", (512, 512), colour)))
            assert verdict.decision == "allow", (colour, verdict.fused_score)


def test_one_flat_image_fails_the_whole_registration(banked: Path) -> None:
    with Screener(Settings(data_dir=banked, signals=SIGNALS)) as screener:
        with pytest.raises(NotRegistrable, match=r"blue\.png"):
            screener.registry.register(
                "mixed", [png(drawing(5)), png(ATTACKS["blue"])], names=["art.png", "blue.png"]
            )
        assert "mixed" not in screener.catalog.works(["mixed"])


def test_a_stock_picture_of_the_bank_is_held_not_indexed_until_approved(banked: Path) -> None:
    stock = png(scene(700))  # in the bank
    other_stock = png(drawing(701))
    with Screener(Settings(data_dir=banked, signals=SIGNALS)) as screener:
        audit = AuditLog(screener.catalog.engine)
        done = screener.registry.register(
            "stock", [stock, png(drawing(3))], names=["stock.png", "mine.png"]
        )
        assert len(done.added_references) == 1  # its own drawing is in use
        (held,) = done.held
        assert held.source_name == "stock.png"
        (finding,) = held.findings
        assert finding["rule"] == "registration.bank_hold"
        assert finding["action"] == "hold"
        assert finding["value"] >= finding["threshold"] == screener.policy.bands.review
        assert screener.catalog.get_work("stock").reference_count == 1
        # Held: the catalog keeps it, no index sees it, and it flags nothing.
        assert screener.check(stock).top_work_id != "stock"
        assert all(r.ok for r in screener.indexes.verify())
        # Registering it again holds it once.
        again = screener.registry.register("stock", [stock], names=["stock.png"])
        assert again.held == () and again.skipped == 1
        assert len(screener.catalog.held(work_id="stock")) == 1

        screener.registry.approve(
            "stock", held.id, audit.hook("operator-key", "work.approve_reference", "stock", {})
        )
        assert screener.catalog.held(work_id="stock") == []
        assert screener.catalog.get_work("stock").reference_count == 2
        assert screener.check(stock).top_work_id == "stock"
        assert all(r.ok for r in screener.indexes.verify())
        with pytest.raises(NotFound, match="no held reference"):
            screener.registry.approve("stock", held.id)

        rejected = screener.registry.register("stock2", [other_stock]).held[0]
        screener.registry.reject("stock2", rejected.id)
        assert screener.catalog.held() == []
        assert screener.catalog.get_work("stock2").reference_count == 0
        assert screener.check(other_stock).top_work_id != "stock2"
        actions = [r.action for r in audit.records(0, 100)]
        assert "work.approve_reference" in actions
    # After a restart the indexes still agree with the catalog.
    with Screener(Settings(data_dir=banked, signals=SIGNALS)) as screener:
        assert all(r.ok for r in screener.indexes.verify())


def test_real_works_are_accepted_untouched(tmp_path: Path) -> None:
    """Works of the kinds the tests and the accuracy suite register (generated drawings,
    opaque and transparent, photo-like scenes at the sizes the suites use), against the
    packaged bank of generic icons."""
    works = {
        **{f"drawing-{i}": drawing(i, transparent=i % 3 == 0) for i in range(12)},
        **{f"scene-{i}": scene(i) for i in range(6)},
        **{f"small-scene-{i}": scene(i, size=(160, 120)) for i in range(6)},
        **{f"icon-{i}": drawing(40 + i, size=(48, 48)) for i in range(4)},
    }
    with Screener(Settings(data_dir=tmp_path / "data", signals=SIGNALS)) as screener:
        assert screener.background is not None  # the packaged bank
        for work_id, image in works.items():
            done = screener.registry.register(work_id, [png(image)])
            assert done.held == () and len(done.added_references) == 1, work_id


def test_cli_refuses_a_flat_image_and_an_operator_approves_a_held_one(
    banked: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {"SCREENER_SIGNALS": ",".join(SIGNALS)}
    flat = tmp_path / "flat.png"
    ATTACKS["white"].save(flat)
    refused = runner.invoke(
        app, ["works", "add", "cli-flat", str(flat), "--data-dir", str(banked)], env=env
    )
    assert refused.exit_code == 2
    assert "registration.min_content_side" in " ".join(refused.output.split())
    stock = tmp_path / "stock.png"
    scene(702).save(stock)  # in the bank
    held = runner.invoke(
        app, ["works", "add", "cli-stock", str(stock), "--data-dir", str(banked)], env=env
    )
    assert held.exit_code == 0, held.output
    said = " ".join(held.output.split())
    assert "held cli-stock #" in said and "screener works approve cli-stock" in said
    listed = runner.invoke(app, ["works", "held", "--data-dir", str(banked)], env=env)
    assert "cli-stock" in listed.output
    held_id = said.split("held cli-stock #")[1].split()[0]
    for verb in ("approve", "reject"):
        huge = runner.invoke(
            app, ["works", verb, "cli-stock", str(2**70), "--data-dir", str(banked)], env=env
        )
        assert huge.exit_code == 2 and "held_id" in huge.output  # a usage error, no traceback
    approved = runner.invoke(
        app, ["works", "approve", "cli-stock", held_id, "--data-dir", str(banked)], env=env
    )
    assert approved.exit_code == 0, approved.output
    assert "(1 in all)" in approved.output


def test_registration_thresholds_come_from_the_policy() -> None:
    shipped = policy_mod.load()
    assert shipped.registration.min_content_side == 16.0
    assert shipped.registration.bank_hold == "review"
    text = policy_mod.dumps(shipped)
    assert policy_mod.loads(text) == shipped
    broken = text.replace("min_edge_density: 0.002", "min_edge_density: 2.0")
    with pytest.raises(PolicyError, match="min_edge_density"):
        policy_mod.loads(broken)
    with pytest.raises(PolicyError, match="bank_hold"):
        policy_mod.loads(text.replace("bank_hold: review", "bank_hold: sometimes"))


def test_the_accuracy_bench_leaves_out_a_work_held_for_an_operator(
    banked: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A work whose only reference is held is in no index: its copies could not be found,
    # and counting them as missed would charge detection with the registration's hold.
    stock, mine = tmp_path / "stock.png", tmp_path / "mine.png"
    scene(702).save(stock)  # in the bank
    drawing(5).save(mine)
    built = bench_suite.Suite(
        works={"bench-stock": [stock], "bench-mine": [mine]},
        queries=[
            bench_suite.Query("bench-stock-clean", stock, "bench-stock", "clean", "bench-stock"),
            bench_suite.Query("bench-mine-clean", mine, "bench-mine", "clean", "bench-mine"),
        ],
    )
    with Screener(Settings(data_dir=banked, signals=SIGNALS)) as screener:
        records = accuracy.evaluate(screener, built)
        assert screener.catalog.held(work_id="bench-stock")
    assert [r.query_id for r in records] == ["bench-mine-clean"]
    assert records[0].top_work == "bench-mine"
    err = capsys.readouterr().err
    assert "left out bench-stock: every reference held for an operator" in err
    assert "registration.bank_hold" in err
