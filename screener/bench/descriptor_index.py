"""Memory, file bytes, save cost and load time of the descriptor-level index (issue 20).

A structure benchmark, not an accuracy one: each synthetic reference holds ``per_set``
descriptors drawn (with replacement) from a pool of real SIFT descriptors of Debian
images, so that the quantiser sees realistic data without registering thousands of images.
It runs against the index of whatever ``screener`` is on the path, the compact one
(``DescriptorIndex(codebook)``, base + log) or the earlier HNSW one (``DescriptorIndex()``,
one file), so that the same command measures before and after:

    PYTHONPATH=<worktree> python -m screener.bench.descriptor_index --refs 10000 --out r.json

(for a worktree without this module, run this file by its path with that PYTHONPATH).
Images: the PNG portraits of Debian's ``wesnoth-1.16-data`` (``--images``; see
benchmarks/README.md for the extracted copy under /work/cache/debs).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

DEFAULT_IMAGES = Path(
    "/work/cache/debs/wesnoth-1.16-data/usr/share/games/wesnoth/1.16/data/core/images/portraits"
)


def pool(images: Path, count: int) -> npt.NDArray[np.uint8]:
    """Real SIFT descriptors of up to ``count`` PNG images under ``images``."""
    from screener.models.keypoints import SiftExtractor

    files = sorted(images.rglob("*.png"))[:count]
    if not files:
        raise SystemExit(
            f"no PNG images under {images}: extract Debian's wesnoth-1.16-data there "
            "(apt-get download wesnoth-1.16-data; dpkg-deb -x ...) or pass --images"
        )
    sift = SiftExtractor()
    found = []
    for f in files:
        with Image.open(f) as im:
            image = im.convert("RGB")
            image.thumbnail((512, 512))
            found.append(sift.extract(image).descriptors)
    return np.concatenate(found)


def rss_kb() -> int:
    """Resident memory after handing freed heap back (glibc keeps freed blocks)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def sets(descriptors: npt.NDArray[np.uint8], refs: int, per_set: int, seed: int = 0) -> Any:
    rng = np.random.default_rng(seed)
    for owner in range(1, refs + 1):
        yield owner, descriptors[rng.integers(0, len(descriptors), per_set)]


def _module() -> Any:
    """The descriptor index module on the path, untyped: it may be the earlier one."""
    return importlib.import_module("screener.index.descriptors")


def _compact() -> bool:
    return hasattr(_module(), "Layout")


def _new_index() -> Any:
    descriptors = _module()
    if not _compact():
        return descriptors.DescriptorIndex()
    from screener.matching import codebook
    from screener.models.keypoints import SiftExtractor

    book = codebook.codebook(SiftExtractor(), descriptors.Layout())
    return descriptors.DescriptorIndex(lambda: book)


def _save(path: Path, index: Any) -> None:
    _module().save(path, index, {})


def _load(path: Path) -> Any:
    descriptors = _module()
    if _compact():
        return descriptors.load(path, descriptors.Layout()).index
    return descriptors.load(path)[0]


def _files(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def build(args: argparse.Namespace) -> dict[str, Any]:
    descriptors = np.load(args.pool)
    index = _new_index()
    index.add(0, descriptors[:1])  # imports done and tables made before the baseline
    start_kb = rss_kb()
    batch: list[tuple[int, npt.NDArray[np.uint8]]] = []
    for item in sets(descriptors, args.refs, args.per_set):
        batch.append(item)
        if len(batch) == 500:
            index.add_many(batch)
            batch = []
    if batch:
        index.add_many(batch)
    rss_delta = (rss_kb() - start_kb) * 1024
    structure = index.structure_bytes() if hasattr(index, "structure_bytes") else None
    path = Path(args.dir) / "d.index"
    began = time.perf_counter()
    _save(path, index)
    full_save_s = time.perf_counter() - began
    base_bytes = _files(path)
    # One more reference, then a save: what one change costs on disk.
    extra = next(sets(descriptors, 1, args.per_set, seed=1))
    index.add(args.refs + 1, extra[1])
    began = time.perf_counter()
    _save(path, index)
    one_more_s = time.perf_counter() - began
    return {
        "compact": _compact(),
        "refs": args.refs,
        "per_set": args.per_set,
        "descriptors": len(index),
        "rss_delta_bytes": rss_delta,
        "rss_delta_per_ref": rss_delta / args.refs,
        "structure": structure,
        "structure_per_ref": None
        if structure is None
        else (structure["row_bytes"] + structure["fixed_bytes"]) / args.refs,
        "file_bytes": base_bytes,
        "file_bytes_per_ref": base_bytes / args.refs,
        "first_save_s": full_save_s,
        "save_after_one_more_s": one_more_s,
        # The compact index appends to its log; the earlier one rewrites its file.
        "bytes_written_for_one_more": _files(path) - base_bytes if _compact() else _files(path),
    }


def load(args: argparse.Namespace) -> dict[str, Any]:
    _compact()  # imports are no part of the load
    start_kb = rss_kb()
    began = time.perf_counter()
    index = _load(Path(args.dir) / "d.index")
    return {
        "load_s": time.perf_counter() - began,
        "load_rss_delta_per_ref": (rss_kb() - start_kb) * 1024 / args.refs,
        "loaded_descriptors": len(index),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", type=int, default=10_000)
    parser.add_argument("--per-set", type=int, default=200)
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--pool-images", type=int, default=60)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--step", choices=["build", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--pool", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "build":
        sys.stdout.write(json.dumps(build(args)))
        return
    if args.step == "load":
        sys.stdout.write(json.dumps(load(args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        pool_path = Path(tmp) / "pool.npy"
        np.save(pool_path, pool(args.images, args.pool_images))
        common = [
            sys.executable,
            __file__,
            "--refs",
            str(args.refs),
            "--per-set",
            str(args.per_set),
            "--out",
            str(args.out),
            "--pool",
            str(pool_path),
            "--dir",
            tmp,
        ]
        # Each step in a process of its own: RSS deltas and a cold load.
        built = json.loads(
            subprocess.run(
                [*common, "--step", "build"], check=True, capture_output=True, text=True
            ).stdout
        )
        loaded = json.loads(
            subprocess.run(
                [*common, "--step", "load"], check=True, capture_output=True, text=True
            ).stdout
        )
        result = {
            **built,
            **loaded,
            "pool_descriptors": len(np.load(pool_path)),
            "pool_images": str(args.images),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
