"""One thread plan for the libraries a check runs, so that they do not fight over cores.

ONNX Runtime, OpenCV and FAISS each start a pool sized to the machine by default, and ONNX
Runtime's idle threads spin. A check runs them one after another, and the service runs
several checks at once, so the pools over-subscribe the cores: on two shared cores the
spinning threads of one model call slow the SIFT and the search of the others. The plan
gives the model, the only stage that gains from several threads on one image, every core
without spinning, and OpenCV and FAISS one thread each (their work per check is small;
concurrent checks are their parallelism). numpy's BLAS pool gets ``blas_threads`` (one)
under either policy: a check's matrix products are small, and its idle threads spin too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from screener.core.settings import Settings


def cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadPlan:
    """Threads per library; 0 leaves a library its own choice."""

    model: int
    model_spinning: bool
    opencv: int
    faiss: int
    blas: int = 0


def plan(settings: Settings, own: int | None = None) -> ThreadPlan:
    """The plan the settings ask for; the model's own thread setting (``own``; by default
    ``sscd_threads``) always wins, and FAISS keeps ``index_threads`` (1 by default, see
    ``index.set_threads``)."""
    model = settings.sscd_threads if own is None else own
    if settings.thread_policy == "libraries":
        return ThreadPlan(model, True, 0, settings.index_threads, settings.blas_threads)
    available = settings.threads or cores()
    return ThreadPlan(
        model=model or available,
        model_spinning=False,
        opencv=1,
        faiss=settings.index_threads,
        blas=settings.blas_threads,
    )


def apply_blas(threads: int) -> None:
    """Set numpy's BLAS pool (process-wide); 0 leaves it alone.

    OpenBLAS's idle threads keep spinning after a matrix product, on the cores OpenCV's
    matcher and the models need next: on two cores, one thread made a check with the
    semantic signal 35 ms faster at p50 (docs/semantic.md, "Cost")."""
    if threads <= 0:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


def apply_opencv(threads: int) -> None:
    """Set OpenCV's pool (process-wide); 0 leaves it alone."""
    if threads <= 0:
        return
    try:
        import cv2
    except ImportError:  # no local features here: nothing to size
        return
    cv2.setNumThreads(threads)
