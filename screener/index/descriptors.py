"""An approximate nearest-neighbour index over local descriptors (SIFT, 128 bytes each).

Each descriptor carries an owner label (the screener uses the catalog row of the
reference's keypoints) and each owner a text label (its work). A query image's
descriptors are searched at once; the nearest neighbours, with their owners and squared
distances, are what a caller votes with.

Compact by design (issue 20): the descriptors are stored as product-quantised codes
(``code_bytes`` per descriptor) in inverted lists (IVF), with the owner as the row's id,
so that a stored descriptor costs its code and an 8-byte id, no graph links. The coarse
centroids and the PQ codebooks are trained once, when the index is first made, on a
sample the caller gives (the screener: descriptors of generated images, never of
registered or peer images); a saved index carries them. Owners are added at any time and
removed for good (their rows are dropped from the lists at once).

Persistence is a base file plus an append-only log (:mod:`screener.index._journal`):
:func:`save` appends the changes since the last save, and rewrites the base (a compaction)
only when there is none to append to or the log has grown past ``compact_above`` of it.
:func:`load` reads the base (checked against its manifest's sha256, as the vector indexes
are) and replays the log; a torn log tail is reported and ignored, the owner then catches
up from where the descriptors are stored.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from screener.index import _journal as journal
from screener.index._faiss import faiss
from screener.index._persist import Arrays, read_document, write_document
from screener.index.base import IndexCorrupt

DIM = 128
FORMAT_VERSION = 2
STATE = frozenset({"ivf", "owners", "labels"})


@dataclass(frozen=True)
class Layout:
    """The index's shape: coarse lists, bytes per code, lists searched per query."""

    lists: int = 1024
    code_bytes: int = 32
    probes: int = 8

    @property
    def kind(self) -> str:
        return f"descriptors:IVF{self.lists},PQ{self.code_bytes}"


@dataclass(frozen=True)
class Codebook:
    """A trained, empty index (serialised): the coarse centroids and PQ codebooks."""

    layout: Layout
    trained: npt.NDArray[np.uint8]


def train(sample: npt.NDArray[np.uint8], layout: Layout) -> Codebook:
    """Train ``layout``'s centroids and codebooks on ``sample`` ((n, 128) bytes)."""
    rows = np.ascontiguousarray(sample, dtype=np.uint8)
    if rows.ndim != 2 or rows.shape[1] != DIM or len(rows) < max(layout.lists, 256):
        raise ValueError(
            f"a training sample must be at least {max(layout.lists, 256)} rows of {DIM} "
            f"bytes, got {rows.shape}"
        )
    quantizer = faiss.IndexFlatL2(DIM)
    ivf = faiss.IndexIVFPQ(quantizer, DIM, layout.lists, layout.code_bytes, 8)
    ivf.cp.seed = 20
    ivf.pq.cp.seed = 20
    # One thread: small k-means runs spend most of their time in OpenMP barriers on a
    # busy machine (a tenth of the wall time was work on a shared two-core machine).
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        ivf.train(rows.astype(np.float32))
    finally:
        faiss.omp_set_num_threads(threads)
    return Codebook(layout, np.asarray(faiss.serialize_index(ivf), dtype=np.uint8))


@dataclass(frozen=True)
class Neighbours:
    """For each query descriptor, its ``k`` nearest live descriptors: owner labels
    (-1 where fewer were found) and squared L2 distances, nearest first."""

    labels: npt.NDArray[np.int64]  # (n, k)
    distances: npt.NDArray[np.float32]  # (n, k)


class DescriptorIndex:
    """IVF-PQ over descriptors with per-owner addition and removal.

    ``codebook`` is asked for once, when the first descriptors are added to an index that
    was not loaded (so that one loaded from a file never trains). ``journal``: keep the
    changes since the last save, for :func:`save` to append to the log.
    """

    def __init__(self, codebook: Callable[[], Codebook], *, keep_changes: bool = True) -> None:
        self._codebook = codebook
        self._lock = threading.RLock()
        self._ivf: Any = None
        self._labels: dict[int, str] = {}
        self.journal = keep_changes
        self._changes: list[journal.Change] = []
        self._base: str | None = None  # sha256 of the base file this index follows
        self._log_end: int | None = None  # where a torn log tail starts, to cut it

    def _ready(self) -> Any:
        if self._ivf is None:
            book = self._codebook()
            self._ivf = _restore(book.trained, book.layout)
        return self._ivf

    @property
    def _logging(self) -> bool:
        # Changes are kept only when there is a base to append them to: before the first
        # save, the whole state is written anyway.
        return self.journal and self._base is not None

    @property
    def layout(self) -> Layout | None:
        """The trained index's layout (None: nothing was added yet)."""
        with self._lock:
            return None if self._ivf is None else _layout_of(self._ivf)

    def __len__(self) -> int:
        """Stored descriptors."""
        with self._lock:
            return 0 if self._ivf is None else int(self._ivf.ntotal)

    @property
    def owners(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._labels)

    @property
    def labels(self) -> dict[int, str]:
        """Each owner's text label."""
        with self._lock:
            return dict(self._labels)

    def add(self, owner: int, descriptors: npt.NDArray[np.uint8], label: str = "") -> None:
        """Store one owner's descriptors ((n, 128) uint8); an owner is added once."""
        self.add_many([(owner, descriptors)], {owner: label})

    def add_many(
        self,
        items: Iterable[tuple[int, npt.NDArray[np.uint8]]],
        labels: Mapping[int, str] | None = None,
    ) -> None:
        """Store several owners' descriptors in one insertion. Nothing is stored if one
        is bad."""
        batch = []
        for owner, descriptors in items:
            codes = np.ascontiguousarray(descriptors, dtype=np.uint8)
            if codes.ndim != 2 or codes.shape[1] != DIM:
                raise ValueError(f"descriptors must be (n, {DIM}) bytes, got {codes.shape}")
            batch.append((int(owner), codes))
        owners = [owner for owner, _ in batch]
        with self._lock:
            again = sorted(set(owners) & self._labels.keys()) or sorted(
                o for o in set(owners) if owners.count(o) > 1
            )
            if again:
                raise ValueError(f"owner {again[0]} is already in the descriptor index")
            filled = [(owner, codes) for owner, codes in batch if len(codes)]
            if filled:
                rows = np.concatenate([c for _, c in filled])
                ids = np.concatenate([np.full(len(c), o, dtype=np.int64) for o, c in filled])
                self._ready().add_with_ids(rows.astype(np.float32), ids)
            for owner, codes in batch:
                label = (labels or {}).get(owner, "")
                self._labels[owner] = label
                if self._logging:
                    self._changes.append(journal.Added(owner, label, codes))

    def remove(self, owners: Iterable[int]) -> int:
        """Drop every descriptor of ``owners``; returns how many owners were present."""
        with self._lock:
            gone = sorted({int(o) for o in owners} & self._labels.keys())
            if not gone:
                return 0
            for owner in gone:
                del self._labels[owner]
            if self._ivf is not None and self._ivf.ntotal:
                self._ivf.remove_ids(np.asarray(gone, dtype=np.int64))
            if self._logging:
                self._changes.append(journal.removed(gone))
            return len(gone)

    def apply(self, changes: Iterable[journal.Change]) -> None:
        """Replay logged changes (not logged again)."""
        for change in changes:
            if isinstance(change, journal.Added):
                self.add_many([(change.owner, change.descriptors)], {change.owner: change.label})
            else:
                self.remove(change.owners)

    def structure_bytes(self) -> dict[str, int]:
        """Bytes the index's own structures hold: the stored codes and ids (per list, as
        stored), and the fixed tables (centroids, codebooks, any precomputed tables)."""
        with self._lock:
            if self._ivf is None:
                return {"rows": 0, "row_bytes": 0, "fixed_bytes": 0}
            ivf = self._ivf
            lists = ivf.invlists
            per_row = int(lists.code_size) + 8  # the code and the owner id
            row_bytes = sum(int(lists.list_size(i)) * per_row for i in range(ivf.nlist))
            layout = _layout_of(ivf)
            fixed = 4 * (
                layout.lists * DIM
                + ivf.pq.M * ivf.pq.ksub * ivf.pq.dsub
                + int(ivf.precomputed_table.size())
            )
            return {"rows": int(ivf.ntotal), "row_bytes": row_bytes, "fixed_bytes": fixed}

    def state(self) -> Arrays:
        """What :meth:`from_state` rebuilds this index from."""
        with self._lock:
            owners = sorted(self._labels)
            ivf = self._ready()
            return {
                "ivf": np.asarray(faiss.serialize_index(ivf), dtype=np.uint8),
                "owners": np.asarray(owners, dtype=np.int64),
                "labels": np.asarray([self._labels[o] for o in owners], dtype=np.str_),
            }

    @classmethod
    def from_state(
        cls, arrays: Arrays, layout: Layout, codebook: Callable[[], Codebook] | None = None
    ) -> DescriptorIndex:
        """The index :meth:`state` described; ``ValueError`` saying what does not fit."""
        missing = sorted(STATE - arrays.keys())
        if missing:
            raise ValueError(f"no {', '.join(missing)} saved")
        owners, labels = arrays["owners"], arrays["labels"]
        if owners.dtype != np.int64 or owners.ndim != 1 or len(np.unique(owners)) != len(owners):
            raise ValueError("owners must be a row of distinct int64")
        if labels.dtype.kind != "U" or labels.shape != owners.shape:
            raise ValueError("labels must be text, one per owner")
        ivf = _restore(arrays["ivf"], layout)
        book = Codebook(layout, np.zeros(0, np.uint8))
        index = cls(codebook or (lambda: book))
        index._ivf = ivf
        index._labels = {int(o): str(t) for o, t in zip(owners, labels, strict=True)}
        return index

    def search(self, descriptors: npt.NDArray[np.uint8], k: int) -> Neighbours:
        """The ``k`` nearest stored descriptors of each query descriptor."""
        queries = np.ascontiguousarray(descriptors, dtype=np.uint8).reshape(-1, DIM)
        n = len(queries)
        with self._lock:
            if not n or self._ivf is None or not self._ivf.ntotal:
                labels = np.full((n, k), -1, dtype=np.int64)
                return Neighbours(labels, np.full((n, k), np.inf, dtype=np.float32))
            found_d, found_i = self._ivf.search(queries.astype(np.float32), k)
        distances = np.where(found_i >= 0, found_d, np.inf).astype(np.float32)
        return Neighbours(found_i.astype(np.int64), distances)


def _layout_of(ivf: Any) -> Layout:
    return Layout(int(ivf.nlist), int(ivf.pq.M), int(ivf.nprobe))


def _restore(data: npt.NDArray[np.uint8], layout: Layout) -> Any:
    """A serialised IVF-PQ of ``layout`` (``ValueError`` if it is none)."""
    try:
        ivf = faiss.deserialize_index(np.ascontiguousarray(data, np.uint8))
    except RuntimeError as e:
        raise ValueError(f"the index cannot be read: {e}") from e
    if not isinstance(ivf, faiss.IndexIVFPQ) or ivf.d != DIM or ivf.pq.nbits != 8:
        raise ValueError(f"the index is not an IVF-PQ over {DIM} dimensions")
    if ivf.nlist != layout.lists or layout.code_bytes != ivf.pq.M:
        raise ValueError(
            f"the index has {ivf.nlist} lists and {ivf.pq.M}-byte codes, "
            f"not {layout.lists} and {layout.code_bytes}"
        )
    if not ivf.is_trained:
        raise ValueError("the index is not trained")
    ivf.nprobe = layout.probes
    # No precomputed distance tables: they cost lists x code_bytes x 1 KB (32 MiB at the
    # default layout) to save a little time per probed list.
    ivf.use_precomputed_table = -1
    ivf.precomputed_table.resize(0)
    return ivf


def save(
    path: Path, index: DescriptorIndex, meta: dict[str, Any], compact_above: float = 0.5
) -> bool:
    """Save ``index`` at ``path``: append its changes since the last save to the log, or
    (no base it follows, a torn log, or a log past ``compact_above`` of the base's size)
    write a new base with a manifest holding ``meta`` and the sha256 of the file, then
    start an empty log. A crash leaves the old state, the new one, or one :func:`load`
    refuses or replays in part. Returns whether the base was rewritten."""
    path = Path(path)
    with index._lock:
        if (
            index._base is not None
            and index._log_end is None
            and path.exists()
            and journal.log_path(path).exists()
        ):
            logged = journal.log_path(path).stat().st_size
            pending = sum(len(journal.encode(c)) for c in index._changes)
            if logged + pending <= compact_above * path.stat().st_size:
                journal.append(journal.log_path(path), index._changes)
                index._changes = []
                return False
        state = index.state()
        layout = index.layout or Layout()
        doc = {
            **meta,
            "format_version": FORMAT_VERSION,
            "kind": layout.kind,
            "dim": DIM,
            "rows": len(index),
            "owner_count": len(state["owners"]),
        }
        # A fresh identity per base: the same state saved twice gives the same bytes, and a
        # log of the first must not be replayed onto the second.
        doc["base_id"] = uuid.uuid4().hex
        written = write_document(path, doc, state)
        base = _base_key(written)
        journal.start(journal.log_path(path), base)
        index._base, index._log_end, index._changes = base, None, []
        return True


def _base_key(doc: dict[str, Any]) -> str:
    """What a log names its base by: the base's bytes (checksum) and identity."""
    return hashlib.sha256(f"{doc.get('checksum')}:{doc.get('base_id')}".encode()).hexdigest()


@dataclass(frozen=True)
class Loaded:
    """A loaded index, its base's manifest, and why its log was not replayed in full."""

    index: DescriptorIndex
    manifest: dict[str, Any]
    replayed: int
    log_problem: str | None


def load(path: Path, layout: Layout, codebook: Callable[[], Codebook] | None = None) -> Loaded:
    """The index saved at ``path`` (base, then its log replayed). ``IndexCorrupt`` saying
    why when the base or its manifest is missing, damaged, of another format (an older
    one included) or another layout; a log problem is reported in ``log_problem``."""
    path = Path(path)
    doc, arrays = read_document(path)
    wanted = {"format_version": FORMAT_VERSION, "kind": layout.kind, "dim": DIM}
    for name, value in wanted.items():
        if doc.get(name) != value:
            raise IndexCorrupt(f"index {path} has {name} {doc.get(name)!r}, not {value!r}")
    try:
        index = DescriptorIndex.from_state(arrays, layout, codebook)
    except ValueError as e:
        raise IndexCorrupt(f"index {path} cannot be restored: {e}") from e
    if len(index) != doc.get("rows") or len(index.owners) != doc.get("owner_count"):
        raise IndexCorrupt(
            f"index {path} holds {len(index)} descriptors of {len(index.owners)} owners, "
            f"its manifest says {doc.get('rows')!r} of {doc.get('owner_count')!r}"
        )
    replay = journal.read(journal.log_path(path), _base_key(doc))
    index.journal = False
    try:
        index.apply(replay.changes)
    except ValueError as e:  # e.g. an owner added twice: not a log of this base
        raise IndexCorrupt(f"index {path}: its log does not fit its base: {e}") from e
    index.journal = True
    index._base = _base_key(doc)
    # A log that cannot be appended to as it is (torn tail, missing, of another base) is
    # replaced by the next save's compaction.
    index._log_end = None if replay.problem is None else replay.good_bytes
    return Loaded(index, doc, len(replay.changes), replay.problem)
