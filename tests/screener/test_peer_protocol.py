"""The screening protocol of ../shared/data/peers/README.md, with default offline settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from screener import Screener
from screener.core.errors import DecodeError, UnsupportedFormat
from tests.conftest import PEERS_DIR

pytestmark = pytest.mark.sscd

BRIDGE_MODS = sorted(p.name for p in (PEERS_DIR / "threatexchange-pdq/bridge-mods").glob("*.jpg"))
DIHEDRAL = [
    "bridge-1-original.jpg",
    "bridge-2-rotate-90.jpg",
    "bridge-3-rotate-180.jpg",
    "bridge-4-rotate-270.jpg",
    "bridge-5-flipx.jpg",
    "bridge-6-flipy.jpg",
    "bridge-7-flip-plus-1.jpg",
    "bridge-8-flip-minus-1.jpg",
]
UKBENCH_COPIES = [
    "imagededup/mixed_images/ukbench00120_hflip.jpg",
    "imagededup/mixed_images/ukbench00120_resize.jpg",
    "imagededup/mixed_images/ukbench00120_rotation.jpg",
    "imagededup/ukbench00120_gray.jpg",
    "imagededup/base_images/ukbench00120.jpg",
]
UNRELATED_DIRS = [
    "imagededup/base_images",
    "threatexchange-pdq/reg-test-input/labelme-subset",
    "imagededup/formats_images",
]


def test_bridge_mods_are_present() -> None:
    assert len(BRIDGE_MODS) == 12


@pytest.mark.parametrize("name", BRIDGE_MODS)
def test_every_bridge_edit_matches_bridge(
    peer_screener: Screener, peers_dir: Path, name: str
) -> None:
    verdict = peer_screener.check(peers_dir / "threatexchange-pdq/bridge-mods" / name)
    assert verdict.decision in {"block", "review"}
    assert verdict.top_work_id == "bridge"
    match = verdict.matches[0]
    assert set(match.signals) >= {"pdq_hamming", "phash_hamming", "sscd_cosine"}
    assert match.best_region is not None


@pytest.mark.parametrize("name", DIHEDRAL)
def test_every_dihedral_variant_matches_bridge(
    peer_screener: Screener, peers_dir: Path, name: str
) -> None:
    verdict = peer_screener.check(peers_dir / "threatexchange-pdq/reg-test-input/dih" / name)
    assert verdict.decision in {"block", "review"}
    assert verdict.top_work_id == "bridge"


@pytest.mark.parametrize("relative", UKBENCH_COPIES)
def test_ukbench_copies_match(peer_screener: Screener, peers_dir: Path, relative: str) -> None:
    verdict = peer_screener.check(peers_dir / relative)
    assert verdict.decision in {"block", "review"}
    assert verdict.top_work_id == "ukbench00120"


def _unrelated(peers: Path) -> list[Path]:
    files = [f for d in UNRELATED_DIRS for f in sorted((peers / d).iterdir()) if f.is_file()]
    return [f for f in files if f.name != "ukbench00120.jpg"]


def test_unrelated_images_match_nothing(peer_screener: Screener, peers_dir: Path) -> None:
    checked = 0
    for path in _unrelated(peers_dir):
        try:
            verdict = peer_screener.check(path)
        except UnsupportedFormat:
            assert path.suffix in {".pgm", ".pbm"}, f"{path.name} should decode"
            continue
        assert verdict.decision == "allow", (path.name, verdict.matches)
        assert verdict.top_work_id is None
        assert verdict.matches == ()
        checked += 1
    assert checked >= 9 + 7 + 7


def test_verdict_names_versions_and_timings(peer_screener: Screener, peers_dir: Path) -> None:
    verdict = peer_screener.check(peers_dir / "threatexchange-pdq/bridge-mods/blur-a-lot.jpg")
    assert verdict.policy_version
    assert verdict.index_version.startswith("catalog@")
    assert set(verdict.signals_used) >= {"pdq", "phash", "sscd"}
    assert set(verdict.models) == {*verdict.signals_used, "local_inliers"}
    assert "clip" in verdict.signals_missing or "clip" in verdict.signals_used
    assert {"decode", "fingerprint", "search", "score", "total"} <= set(verdict.timings_ms)
    assert verdict.thresholds["review"] <= verdict.thresholds["block"]
    assert len(verdict.input["sha256"]) == 64
    assert verdict.to_dict()["matches"][0]["best_region"]["reference_id"] >= 1


@pytest.mark.parametrize(
    "relative",
    [
        "bad/drawing.svg",
        "bad/corrupt.jpg",
        "bad/truncated.jpg",
        "bad/empty.png",
        "bad/text.png",
        "bad/bomb-30000x30000.png",
        "imagededup/mixed_images/ukbench09268_corrupt.jpg",
    ],
)
def test_bad_files_raise_typed_errors_and_change_nothing(
    peer_screener: Screener, peers_dir: Path, relative: str
) -> None:
    before = peer_screener.catalog.describe()
    with pytest.raises(DecodeError) as caught:
        peer_screener.check(peers_dir / relative)
    assert str(caught.value)
    with pytest.raises(DecodeError):
        peer_screener.registry.register("bad-work", [peers_dir / relative])
    assert peer_screener.catalog.describe() == before
    assert all(r.ok for r in peer_screener.indexes.verify())
