"""Bulk registration (`screener.matching.bulk`): a batch stores what one-at-a-time registration
stores, bad images and works are reported without stopping the rest, and a crash inside
a batch leaves whole works that the indexes catch up with."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from screener import Screener, Settings
from screener.core import samples
from screener.core.errors import InputError, NotRegistrable
from screener.matching.bulk import BulkWork, register_many
from screener.store.catalog import RegisterHook

pytestmark = pytest.mark.slow
SIGNALS = ["phash", "pdq", "sscd"]


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def cut_out(seed: int) -> bytes:
    """A character on a transparent background (fingerprinted over three backgrounds)."""
    content = samples.scene(seed, (200, 160)).convert("RGBA")
    mask = Image.new("L", content.size, 0)
    ImageDraw.Draw(mask).ellipse((20, 10, 180, 150), fill=255)
    content.putalpha(mask)
    return png(content)


def _works() -> list[BulkWork]:
    return [
        BulkWork("hero", (png(samples.scene(31, (240, 180))), cut_out(32)), ("a.png", "b.png")),
        BulkWork("villain", (png(samples.scene(33, (180, 240))),), ("a.png",)),
        BulkWork("sidekick", (png(samples.scene(34, (200, 200))),), ("a.png",), owner="acme"),
    ]


def _stored(screener: Screener, work_ids: list[str]) -> dict[tuple[str, ...], np.ndarray]:
    names = {
        ref.id: ref.source_name
        for work_id in work_ids
        for ref in screener.catalog.references(work_id)
    }
    out: dict[tuple[str, ...], np.ndarray] = {}
    for signal, fingerprinter in screener.signals.available.items():
        for fp in screener.catalog.fingerprints_of_works(work_ids, signal, fingerprinter.spec_id):
            dtype = np.float32 if signal == "sscd" else np.uint8
            key = (fp.work_id, names[fp.reference_id], signal, fp.region)
            out[key] = np.frombuffer(fp.vector, dtype=dtype)
    return out


def _local(screener: Screener, work_ids: list[str]) -> set[tuple[str, str, bytes]]:
    assert screener.local is not None
    found = screener.catalog.local_features_of_works(work_ids, screener.local.spec_id)
    return {(f.work_id, f.variant, f.descriptors) for f in found}


def test_a_batch_stores_what_one_at_a_time_registration_stores(tmp_path: Path) -> None:
    works = _works()
    with Screener(Settings(data_dir=tmp_path / "one", signals=SIGNALS)) as one:
        for work in works:
            one.registry.register(work.work_id, list(work.images), names=work.names)
        expected = _stored(one, [w.work_id for w in works])
        expected_local = _local(one, [w.work_id for w in works])
    seen: list[str] = []
    with Screener(Settings(data_dir=tmp_path / "bulk", signals=SIGNALS)) as bulk:
        outcomes = register_many(bulk, works, batch=2, progress=lambda o: seen.append(o.work_id))
        assert [o.work_id for o in outcomes] == seen == ["hero", "villain", "sidekick"]
        assert all(o.error is None and o.registered is not None for o in outcomes)
        assert bulk.catalog.get_work("sidekick").owner == "acme"
        got = _stored(bulk, [w.work_id for w in works])
        got_local = _local(bulk, [w.work_id for w in works])
        assert all(r.ok for r in bulk.indexes.verify())
        assert bulk.check(png(samples.scene(33, (180, 240)))).top_work_id == "villain"
    assert got.keys() == expected.keys()
    assert any("/bg-black" in key[3] for key in got)  # the transparent reference's variants
    for key, vector in expected.items():
        if key[2] == "sscd":  # one model call for many shapes: equal to float precision
            assert float(vector @ got[key]) > 0.9999, key
        else:
            assert np.array_equal(vector, got[key]), key
    assert got_local == expected_local


def test_bad_images_are_skipped_and_bad_works_reported(tmp_path: Path) -> None:
    flat = png(Image.new("RGB", (256, 256), (20, 60, 200)))
    works = [
        BulkWork("a/b", (png(samples.scene(41)),)),
        BulkWork("hero", (png(samples.scene(42, (240, 180))), b"not an image", flat)),
        BulkWork("empty", (flat,)),
        BulkWork("villain", (png(samples.scene(43, (240, 180))),)),
    ]
    with Screener(Settings(data_dir=tmp_path, signals=["phash", "pdq"])) as screener:
        outcomes = {o.work_id: o for o in register_many(screener, works, batch=3)}
        assert isinstance(outcomes["a/b"].error, InputError)
        hero = outcomes["hero"]
        assert hero.error is None and hero.registered is not None
        assert len(hero.registered.added_references) == 1
        assert [name for name, _ in hero.skipped] == ["image-1", "image-2"]
        assert isinstance(hero.skipped[1][1], NotRegistrable)
        assert isinstance(outcomes["empty"].error, InputError)
        assert "no usable images" in str(outcomes["empty"].error)
        assert outcomes["villain"].registered is not None
        assert {w.id for w in screener.catalog.list_works()} == {"hero", "villain"}
        with pytest.raises(InputError, match="at least one work"):
            register_many(screener, works, batch=0)


class Crash(Exception):
    """Not a ScreenerError: it stops the whole import, like a kill would."""


def test_a_crash_inside_a_batch_leaves_whole_works_the_indexes_catch_up(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, signals=["phash", "pdq"])
    works = [BulkWork(f"w{i}", (png(samples.scene(50 + i, (200, 150))),)) for i in range(3)]

    def hook(work_id: str) -> RegisterHook | None:
        if work_id != "w1":
            return None

        def crash(*_: object) -> None:
            raise Crash(work_id)

        return crash

    screener = Screener(settings)
    with pytest.raises(Crash):
        register_many(screener, works, batch=3, hook=hook)
    # The batch never reached its catch-up: the first work is in the catalog alone.
    assert {w.id for w in screener.catalog.list_works()} == {"w0"}
    screener.catalog.close()  # no save: the process "died" here
    with Screener(settings) as again:
        assert all(r.ok for r in again.indexes.verify())
        assert again.check(png(samples.scene(50, (200, 150)))).top_work_id == "w0"
