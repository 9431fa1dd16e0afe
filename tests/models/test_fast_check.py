"""The fast check's pieces: SSCD inputs rounded to a shape step (whole image and regions
in one model call, batch equal to one at a time), and the thread plan."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from screener import Settings, models
from screener.core import samples
from screener.matching import signals as signals_mod
from screener.matching import threads as threads_mod
from screener.matching.signals import SignalSet
from screener.matching.threads import ThreadPlan, cores, plan
from screener.models.sscd import SSCD


class _CountingSession:
    """The real ONNX Runtime session, counting its calls and their batch shapes."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.shapes: list[tuple[int, ...]] = []

    def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> Any:
        self.shapes += [array.shape for array in feeds.values()]
        return self.session.run(outputs, feeds)


def _counted(sscd: SSCD) -> _CountingSession:
    counting = _CountingSession(sscd._session)
    sscd._session = counting
    return counting


@pytest.mark.sscd
@pytest.mark.parametrize("size", [(512, 321), (321, 512), (500, 500), (512, 250)])
def test_whole_image_and_regions_go_through_sscd_in_one_call(size: tuple[int, int]) -> None:
    sscd = models.create("sscd", model="sscd_distilled", shape_step=16)
    assert isinstance(sscd, SSCD)
    signals = SignalSet(Settings(signals=["sscd"]), 0.0, [sscd])
    counting = _counted(sscd)
    found = signals.fingerprint(samples.scene(3, size), dihedral=False)
    assert len(found) == 6  # whole, 2x2 grid, centre
    assert len(counting.shapes) == 1 and counting.shapes[0][0] == 6


@pytest.mark.sscd
def test_exact_sizes_need_one_call_per_shape() -> None:
    """The baseline the step removes: without it the regions' shapes differ."""
    sscd = models.create("sscd", model="sscd_distilled")
    assert isinstance(sscd, SSCD)
    signals = SignalSet(Settings(signals=["sscd"]), 0.0, [sscd])
    counting = _counted(sscd)
    signals.fingerprint(samples.scene(3, (512, 321)), dihedral=False)
    assert len(counting.shapes) > 1


@pytest.mark.sscd
def test_a_shape_step_batch_equals_one_at_a_time_and_names_its_spec() -> None:
    exact = models.create("sscd", model="sscd_distilled")
    stepped = models.create("sscd", model="sscd_distilled", shape_step=16)
    assert stepped.spec_id == exact.spec_id + "/q16"
    images = [samples.scene(i, (200 + 37 * i, 180 + 11 * i)) for i in range(5)]
    batched = stepped.fingerprint(images)
    single = [stepped.fingerprint([image])[0] for image in images]
    for x, y in zip(batched, single, strict=True):
        assert float(x.vector @ y.vector) > 0.9999
    # Rounding changes the input by a few per cent of aspect at most: the same picture.
    for x, y in zip(batched, exact.fingerprint(images), strict=True):
        assert float(x.vector @ y.vector) > 0.95


def test_the_cores_plan_gives_the_model_every_core_and_the_rest_one() -> None:
    assert plan(Settings(thread_policy="cores", threads=2)) == ThreadPlan(2, False, 1, 1, 1)
    assert plan(Settings(thread_policy="cores")).model == cores()
    assert plan(Settings(thread_policy="cores", sscd_threads=3, threads=2)).model == 3
    assert plan(Settings(thread_policy="libraries")) == ThreadPlan(0, True, 0, 1, 1)
    # numpy's BLAS gets one thread under either policy unless told otherwise.
    assert plan(Settings(thread_policy="libraries", blas_threads=0)).blas == 0
    assert plan(Settings(thread_policy="cores", blas_threads=2)).blas == 2


def test_the_blas_pool_is_sized_by_the_plan() -> None:
    """`apply_blas` sets every BLAS library numpy loaded; 0 leaves them as they were."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    with threadpool_limits(limits=None):  # restores the pools on exit
        before = blas()
        assert before, "numpy loaded no BLAS library that threadpoolctl sees"
        threads_mod.apply_blas(0)
        assert blas() == before
        threads_mod.apply_blas(1)
        assert blas() == [1] * len(before)


def test_settings_take_the_thread_plan_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCREENER_THREAD_POLICY", "cores")
    monkeypatch.setenv("SCREENER_SSCD_SHAPE_STEP", "16")
    settings = Settings()
    assert settings.thread_policy == "cores" and settings.sscd_shape_step == 16
    monkeypatch.setenv("SCREENER_THREAD_POLICY", "everything")
    with pytest.raises(ValueError, match="thread_policy"):
        Settings()


def test_the_semantic_pool_follows_the_thread_plan() -> None:
    """The semantic signal's ONNX Runtime pool is planned like SSCD's: every core without
    spinning under "cores" (its spinning threads took the SIFT core, benchmarks/results/
    throughput-semantic); its own thread setting still wins."""
    cores_plan = signals_mod._options("semantic", Settings(thread_policy="cores", threads=2))
    assert cores_plan["threads"] == 2 and cores_plan["spinning"] is False
    own = signals_mod._options(
        "semantic", Settings(thread_policy="cores", threads=2, semantic_threads=1)
    )
    assert own["threads"] == 1 and own["spinning"] is False
    libraries = signals_mod._options("semantic", Settings(thread_policy="libraries"))
    # It never spins: one short run a check, beside SSCD's pool, which keeps spinning.
    assert libraries["threads"] == 0 and libraries["spinning"] is False
    assert signals_mod._options("sscd", Settings(thread_policy="libraries"))["spinning"] is True
    sscd = signals_mod._options("sscd", Settings(thread_policy="cores", threads=2))
    assert sscd["threads"] == 2 and sscd["spinning"] is False
    # SSCD's own setting is SSCD's: it does not size the semantic pool.
    for policy in ("cores", "libraries"):
        settings = Settings(thread_policy=policy, threads=2, sscd_threads=3)
        assert signals_mod._options("sscd", settings)["threads"] == 3
        expected = 2 if policy == "cores" else 0
        assert signals_mod._options("semantic", settings)["threads"] == expected
