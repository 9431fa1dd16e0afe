"""Per-work character models: recognise a registered character in a pose it was never
registered in, and not mistake a look-alike for it.

A rights holder registers a few images of a character. From them each work learns a small
linear classifier over the semantic signal's embeddings: positives are the references under
heavy augmentation (crops, flips, pose-like warps, recolouring, pasted backgrounds),
negatives the other registered works' semantic fingerprints, the background bank's where it
holds this signal, and the augmentation backgrounds alone (so that a scene does not pass for
the character). A query's ``character_score`` for a work is that work's logit, less any
positive logit of the best other work: another cat claimed more strongly by another
registered cat does not pass as this one.

Beside the models, a model-free score that carries to characters no model was tuned on:
each work's prototypes are its references' semantic fingerprints and its kept augmented
views; a query's ``character_similarity`` for a work is its best cosine to them, and its
``character_margin`` that similarity less the best any other registered work or the
background bank reaches (the cohort): another cat closer to another registered cat, or
to an ordinary picture, does not pass as this one. ``character_likeness`` weighs the
similarity by the colours the query's figure shares with the work's references
(`screener.core.palette`) and takes the same kind of margin: another creature of the
character's kind drawn in the same style often has other colours. The policy's
``character_review`` route reads the evidence it names (screener/core/fusion.py).

Models are derived data, stored beside the catalog in their own table with the digest of
the references and spec they were trained from; a model whose digest no longer matches is
retrained (or dropped with its work), so a crash between a registration and its training
leaves nothing inconsistent, only a model to train.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageEnhance, ImageOps
from sqlalchemy import Float, LargeBinary, String, delete, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from screener import models
from screener.core import palette, samples
from screener.core.decode import DecodedImage
from screener.core.policy import Characters as Training
from screener.matching.background import Bank
from screener.matching.candidates import Best, Candidate
from screener.matching.reference_cache import ReferenceCache
from screener.matching.signals import RegionFingerprint, reduced
from screener.models import Fingerprinter
from screener.store.catalog import Catalog, FingerprintRow, ReferenceRow

log = logging.getLogger(__name__)
SIGNAL = "semantic"
EVIDENCE = "character_score"
SIMILARITY = "character_similarity"
MARGIN = "character_margin"
COLOUR = "character_colour"
LIKENESS = "character_likeness"
# The works closest by prototype similarity that are always in the colour likeness's
# cohort, candidates or not: the competitors a character's likeness is measured against.
COLOUR_COHORT = 10
TRAINING = "lr1"  # changes whenever training would give another model
Embed = Callable[[Sequence[Image.Image]], npt.NDArray[np.float32]]


class _Base(DeclarativeBase):
    pass


class CharacterModelRow(_Base):
    """One work's model: unit-free weights over the semantic embedding, and a bias."""

    __tablename__ = "character_models"
    work_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    bias: Mapped[float] = mapped_column(Float)
    # A sample of the work's augmented views (float16 rows): the other works' negatives.
    views: Mapped[bytes] = mapped_column(LargeBinary)


# augmentation ----------------------------------------------------------------------------


def _foreground(image: Image.Image) -> Image.Image:
    """A mask of what differs from the image's border colour (the character on a plain
    reference), softened; everything where the border is not plain."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    colour = np.median(border, axis=0)
    if np.abs(border - colour).max(axis=1).mean() > 12:  # not a plain border
        return Image.new("L", image.size, 255)
    mask = (np.abs(rgb - colour).max(axis=2) > 24).astype(np.uint8) * 255
    return Image.fromarray(mask, "L")


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """A plain, gradient, blotchy or photo-like (`samples.scene`) background."""
    kind = rng.integers(4)
    if kind == 3:
        return samples.scene(int(rng.integers(1 << 30)), (size, size))
    a, b = (tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(2))
    if kind == 0:
        return Image.new("RGB", (size, size), a)
    if kind == 1:
        t = np.linspace(0.0, 1.0, size, dtype=np.float32)[None, :, None]
        ramp = (1 - t) * np.asarray(a, np.float32) + t * np.asarray(b, np.float32)
        return Image.fromarray(np.repeat(ramp, size, axis=0).astype(np.uint8), "RGB")
    cells = int(rng.integers(3, 9))
    noise = rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
    return Image.fromarray(noise, "RGB").resize((size, size), Image.Resampling.BICUBIC)


def cutout(image: Image.Image, size: int = 256) -> tuple[Image.Image, Image.Image]:
    """A reference at the augmentation's scale, and its foreground mask (made once)."""
    image = image.convert("RGB")
    image.thumbnail((size, size), Image.Resampling.BILINEAR)
    return image, _foreground(image)


def augment(
    reference: tuple[Image.Image, Image.Image], rng: np.random.Generator, size: int = 256
) -> Image.Image:
    """One view of a reference (:func:`cutout`): warped like a new pose, recoloured,
    cropped, flipped and pasted at 40-100 % of the frame onto a plain, gradient, blotchy
    or photo-like background."""
    image, mask = reference
    w, h = image.size
    # Pose-like warp: a random perspective (corners moved by up to 15 %) and rotation.
    jitter = [float(v) for v in rng.uniform(-0.15, 0.15, 8) * np.array([w, h] * 4)]
    quad = (
        0 + jitter[0], 0 + jitter[1], 0 + jitter[2], h + jitter[3],
        w + jitter[4], h + jitter[5], w + jitter[6], 0 + jitter[7],
    )  # fmt: skip
    warp = Image.Transform.QUAD
    image = image.transform((w, h), warp, quad, Image.Resampling.BILINEAR)
    mask = mask.transform((w, h), warp, quad, Image.Resampling.BILINEAR)
    angle = float(rng.uniform(-25, 25))
    image = image.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    mask = mask.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    if rng.random() < 0.5:
        image, mask = ImageOps.mirror(image), ImageOps.mirror(mask)
    # Recolour within the design: saturation and brightness, never the hue (a character's
    # colours are part of what tells it from a look-alike of its kind).
    image = ImageEnhance.Color(image).enhance(float(rng.uniform(0.5, 1.4)))
    image = ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.75, 1.2)))
    # Crop: keep 70-100 % of each side.
    w, h = image.size
    keep = rng.uniform(0.7, 1.0, 2)
    cw, ch = max(8, int(w * keep[0])), max(8, int(h * keep[1]))
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    image, mask = image.crop((x, y, x + cw, y + ch)), mask.crop((x, y, x + cw, y + ch))
    canvas = _background(rng, size)
    scale = float(rng.uniform(0.4, 1.0)) * size / max(cw, ch)
    fw, fh = max(1, int(cw * scale)), max(1, int(ch * scale))
    image = image.resize((fw, fh), Image.Resampling.BILINEAR)
    mask = mask.resize((fw, fh), Image.Resampling.BILINEAR)
    px, py = int(rng.integers(0, size - fw + 1)), int(rng.integers(0, size - fh + 1))
    canvas.paste(image, (px, py), mask)
    return canvas


# training and scoring --------------------------------------------------------------------


def fit(
    positives: npt.NDArray[np.float32], negatives: npt.NDArray[np.float32], training: Training
) -> tuple[npt.NDArray[np.float32], float]:
    """Class-balanced L2-regularised logistic regression by gradient descent (deterministic,
    a few hundred steps over at most a few thousand rows: well under a second)."""
    x = np.concatenate([positives, negatives]).astype(np.float64)
    y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    sample = np.where(y == 1, 0.5 / len(positives), 0.5 / max(1, len(negatives)))
    w = np.zeros(x.shape[1])
    b = 0.0
    velocity_w, velocity_b = np.zeros_like(w), 0.0
    rate, momentum = 4.0, 0.9
    for _ in range(training.steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        residual = (p - y) * sample
        grad_w = x.T @ residual + training.l2 * w
        grad_b = float(residual.sum())
        velocity_w = momentum * velocity_w - rate * grad_w
        velocity_b = momentum * velocity_b - rate * grad_b
        w += velocity_w
        b += velocity_b
    return w.astype(np.float32), float(b)


def digest(reference_ids: Sequence[int], spec_id: str) -> str:
    text = f"{TRAINING}|{spec_id}|" + ",".join(str(i) for i in sorted(reference_ids))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Scores:
    """A query's logit under every work's model (best over the query's fingerprints)."""

    logits: dict[str, float]
    # Each work's best cosine between the query and its prototypes, and the query's best
    # cosine to the background bank (None: no bank for this signal).
    similarity: dict[str, float] = field(default_factory=dict)
    bank: float | None = None

    def margin(self, work_id: str) -> float | None:
        """The work's prototype similarity less the best of every other work and the bank."""
        own = self.similarity.get(work_id)
        if own is None:
            return None
        cohort = [v for w, v in self.similarity.items() if w != work_id]
        if self.bank is not None:
            cohort.append(self.bank)
        return own - max(cohort, default=0.0)

    def closest(self, n: int) -> list[str]:
        """The ``n`` works with the highest prototype similarity."""
        return sorted(self.similarity, key=self.similarity.__getitem__, reverse=True)[:n]

    def score(self, work_id: str) -> float | None:
        """The work's logit, less the best other work's where that is positive."""
        own = self.logits.get(work_id)
        if own is None:
            return None
        others = max((v for w, v in self.logits.items() if w != work_id), default=0.0)
        return own - max(0.0, others)

    def top(self, n: int, floor: float = 0.0) -> list[str]:
        ranked = sorted(self.logits, key=self.logits.__getitem__, reverse=True)
        return [w for w in ranked[:n] if self.logits[w] > floor]


class CharacterModels:
    """Every work's model, in memory as one matrix, trained and stored on demand."""

    def __init__(
        self,
        catalog: Catalog,
        embed: Embed,
        spec_id: str,
        decode: Callable[[bytes], Image.Image],
        negatives: Callable[[], npt.NDArray[np.float32]],
        training: Training | None = None,
    ) -> None:
        self.catalog = catalog
        self.embed = embed
        self.spec_id = spec_id
        self.decode = decode
        self.bank_negatives = negatives
        self.training = training or Training()
        self._lock = threading.Lock()
        self._mark = -1
        self._ids: list[str] = []
        self._matrix = np.zeros((0, 0), np.float32)
        self._bias = np.zeros(0, np.float32)
        self._dim = 0
        self._proto_ids: list[str] = []
        self._prototypes = np.zeros((0, 0), np.float32)
        self._owner = np.zeros(0, np.int64)
        CharacterModelRow.__table__.create(catalog.engine, checkfirst=True)  # type: ignore[attr-defined]

    def _references(self) -> dict[str, list[int]]:
        with Session(self.catalog.engine) as session:
            rows = session.execute(select(ReferenceRow.work_id, ReferenceRow.id)).all()
        out: dict[str, list[int]] = {}
        for work_id, reference_id in rows:
            out.setdefault(work_id, []).append(int(reference_id))
        return out

    def _other_vectors(self, work_id: str, rng: np.random.Generator) -> npt.NDArray[np.float32]:
        with Session(self.catalog.engine) as session:
            found = session.scalars(
                select(FingerprintRow.vector)
                .join(ReferenceRow, FingerprintRow.reference_id == ReferenceRow.id)
                .where(
                    FingerprintRow.signal == SIGNAL,
                    FingerprintRow.spec_id == self.spec_id,
                    ReferenceRow.work_id != work_id,
                )
            ).all()
        rows = [np.frombuffer(v, dtype=np.float32) for v in found]
        if len(rows) > self.training.negatives:
            keep = rng.choice(len(rows), self.training.negatives, replace=False)
            rows = [rows[i] for i in sorted(keep)]
        return np.stack(rows) if rows else np.zeros((0, 0), np.float32)

    def _stored_views(self, work_id: str) -> npt.NDArray[np.float32]:
        with Session(self.catalog.engine) as session:
            found = session.scalars(
                select(CharacterModelRow.views).where(CharacterModelRow.work_id != work_id)
            ).all()
        rows = [np.frombuffer(v, np.float16).reshape(-1, self._dim) for v in found if v]
        return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)

    def train(self, work_id: str, reference_ids: Sequence[int]) -> None:
        """Train ``work_id``'s model from its references now and store it."""
        rng = np.random.default_rng([self.training.seed, int(digest(reference_ids, "")[:8], 16)])
        references = {r.id: r for r in self.catalog.references(work_id)}
        images = [self.decode(self.catalog.blob(references[i].sha256)) for i in reference_ids]
        per = max(1, math.ceil(self.training.views / len(images)))
        cutouts = [cutout(im) for im in images]
        views = [augment(ref, rng) for ref in cutouts for _ in range(per)]
        positives = self.embed([*images, *views])
        self._dim = positives.shape[1]
        scenes = self.embed([_background(rng, 256) for _ in range(self.training.scenes)])
        parts = [
            scenes,
            self._other_vectors(work_id, rng),
            self._stored_views(work_id),
            self.bank_negatives(),
        ]
        negatives = np.concatenate([p for p in parts if p.size])
        weights, bias = fit(positives, negatives, self.training)
        kept = rng.choice(len(views), min(len(views), self.training.kept_views), replace=False)
        row = CharacterModelRow(
            work_id=work_id,
            digest=digest(reference_ids, self.spec_id),
            weights=weights.tobytes(),
            bias=bias,
            views=positives[len(images) + np.sort(kept)].astype(np.float16).tobytes(),
        )
        with Session(self.catalog.engine) as session, session.begin():
            session.merge(row)

    def sync(self) -> int:
        """Train every model that is missing or stale, drop those of removed works, and
        load them all; returns how many were trained. Cheap when nothing changed.

        A new model's views are negatives for the models trained after it; the few older
        models that those views fool (a positive mean logit) are retrained at once, so a
        look-alike registered later is told apart from the work registered first."""
        mark = self.catalog.high_water()
        if mark == self._mark:
            return 0
        with self._lock:
            references = self._references()
            with Session(self.catalog.engine) as session:
                stored = {r.work_id: r.digest for r in session.scalars(select(CharacterModelRow))}
            gone = [w for w in stored if w not in references]
            if gone:
                with Session(self.catalog.engine) as session, session.begin():
                    session.execute(
                        delete(CharacterModelRow).where(CharacterModelRow.work_id.in_(gone))
                    )
            changed = [
                w for w, ids in references.items() if stored.get(w) != digest(ids, self.spec_id)
            ]
            for work_id in changed:
                self.train(work_id, references[work_id])
            self._load()
            fooled = [w for w in self._fooled_by(changed) if w not in changed]
            for work_id in fooled:
                self.train(work_id, references[work_id])
            if fooled:
                self._load()
            self._mark = mark
        return len(changed) + len(fooled)

    def _fooled_by(self, work_ids: Sequence[str]) -> list[str]:
        """Other works whose models give a positive mean logit to these works' views, the
        most fooled first, at most ``neighbours`` per work."""
        if not work_ids or not self._ids:
            return []
        out: dict[str, float] = {}
        with Session(self.catalog.engine) as session:
            rows = session.execute(
                select(CharacterModelRow.work_id, CharacterModelRow.views).where(
                    CharacterModelRow.work_id.in_(list(work_ids))
                )
            ).all()
        for owner, blob in rows:
            views = np.frombuffer(blob, np.float16).reshape(-1, self._matrix.shape[1])
            mean = (views.astype(np.float32) @ self._matrix.T + self._bias).mean(axis=0)
            ranked = sorted(
                (float(v), w) for w, v in zip(self._ids, mean, strict=True) if w != owner and v > 0
            )[::-1]
            for value, work_id in ranked[: self.training.neighbours]:
                out[work_id] = max(out.get(work_id, value), value)
        return sorted(out, key=out.__getitem__, reverse=True)

    def _load(self) -> None:
        with Session(self.catalog.engine) as session:
            rows = list(session.scalars(select(CharacterModelRow)))
        self._ids = [r.work_id for r in rows]
        if rows:
            self._matrix = np.stack([np.frombuffer(r.weights, np.float32) for r in rows])
            self._bias = np.asarray([r.bias for r in rows], np.float32)
            self._dim = int(self._matrix.shape[1])
        self._load_prototypes(rows)

    def _load_prototypes(self, rows: Sequence[CharacterModelRow]) -> None:
        """Every work's prototypes: its references' semantic fingerprints (whole image and
        regions) and its kept augmented views; and the bank's rows, the cohort's floor."""
        with Session(self.catalog.engine) as session:
            found = session.execute(
                select(ReferenceRow.work_id, FingerprintRow.vector)
                .join(ReferenceRow, FingerprintRow.reference_id == ReferenceRow.id)
                .where(FingerprintRow.signal == SIGNAL, FingerprintRow.spec_id == self.spec_id)
            ).all()
        vectors: list[npt.NDArray[np.float32]] = []
        owners: list[str] = []
        for work_id, blob in found:
            vectors.append(np.frombuffer(blob, np.float32)[None, :])
            owners.append(work_id)
        for row in rows:
            if row.views and self._dim:
                views = np.frombuffer(row.views, np.float16).reshape(-1, self._dim)
                vectors.append(views.astype(np.float32))
                owners.extend([row.work_id] * len(views))
        self._proto_ids = sorted(set(owners))
        index = {w: i for i, w in enumerate(self._proto_ids)}
        self._owner = np.asarray([index[w] for w in owners], np.int64)
        self._prototypes = np.concatenate(vectors) if vectors else np.zeros((0, 0), np.float32)

    def _similarity(self, vectors: npt.NDArray[np.float32]) -> dict[str, float]:
        if not self._proto_ids or vectors.shape[1] != self._prototypes.shape[1]:
            return {}
        best = (vectors @ self._prototypes.T).max(axis=0)
        per_work = np.full(len(self._proto_ids), -1.0, np.float32)
        np.maximum.at(per_work, self._owner, best)
        return {w: float(v) for w, v in zip(self._proto_ids, per_work, strict=True)}

    def scores(self, vectors: npt.NDArray[np.float32]) -> Scores:
        """Every work's logit for the query's semantic fingerprints (rows), best row each."""
        if not self._ids or vectors.size == 0:
            return Scores({})
        logits = (vectors @ self._matrix.T + self._bias).max(axis=0)
        bank = None
        rows = self.bank_negatives()
        if rows.size and rows.shape[1] == vectors.shape[1]:
            bank = float((vectors @ rows.T).max())
        return Scores(
            {w: float(v) for w, v in zip(self._ids, logits, strict=True)},
            self._similarity(vectors),
            bank,
        )


# wiring into a check ---------------------------------------------------------------------


def open_models(
    catalog: Catalog,
    fingerprinter: Fingerprinter | None,
    decode: Callable[[bytes], Image.Image],
    bank: Callable[[], Bank | None],
    training: Training | None = None,
) -> CharacterModels | None:
    """The per-work models, where the semantic signal runs (None where it does not)."""
    if fingerprinter is None:
        return None

    def embed(images: Sequence[Image.Image]) -> npt.NDArray[np.float32]:
        rows = [
            fp.vector
            for start in range(0, len(images), 32)
            for fp in fingerprinter.fingerprint(images[start : start + 32])
        ]
        return np.stack(rows).astype(np.float32)

    def negatives() -> npt.NDArray[np.float32]:
        current = bank()
        rows = None if current is None else current.rows.get(SIGNAL)
        if rows is None or current is None or current.specs.get(SIGNAL) != fingerprinter.spec_id:
            return np.zeros((0, 0), np.float32)
        return np.asarray(rows.matrix, dtype=np.float32)

    return CharacterModels(catalog, embed, fingerprinter.spec_id, decode, negatives, training)


def query_scores(
    models: CharacterModels | None, by_signal: Mapping[str, Sequence[RegionFingerprint]]
) -> Scores:
    """Every work's model logit for a query's semantic fingerprints (whole and regions)."""
    fps = by_signal.get(SIGNAL, ())
    if models is None or not fps:
        return Scores({})
    return models.scores(np.stack([np.asarray(f.fingerprint.vector, np.float32) for f in fps]))


def add_evidence(scores: Scores, candidates: Mapping[str, Candidate]) -> None:
    """Each candidate's ``character_score``, ``character_similarity`` and
    ``character_margin``, shown with its closest reference by the semantic signal."""
    for work_id, candidate in candidates.items():
        closest = candidate.best.get(models.descriptor(SIGNAL).evidence) or candidate.best.get(
            models.descriptor(SIGNAL).region_evidence
        )
        if closest is None:
            continue
        for name, value in (
            (EVIDENCE, scores.score(work_id)),
            (SIMILARITY, scores.similarity.get(work_id)),
            (MARGIN, scores.margin(work_id)),
        ):
            if value is not None:
                candidate.best[name] = Best(round(value, 6), closest.pair)


# colours ----------------------------------------------------------------------------------


def colours_of(decoded: DecodedImage) -> npt.NDArray[np.float32]:
    """The colours of a decoded picture's figure (`screener.core.palette`), at the size
    the semantic tower's figure is cut out at (`signals.reduced`): a reference's opaque
    pixels, a query's figure lifted off a smooth background, or the whole picture."""
    image = reduced(decoded.image)
    alpha = None if decoded.alpha is None else np.asarray(decoded.alpha.resize(image.size))
    return palette.figure_colours(np.asarray(image), alpha)


class ReferenceColours(ReferenceCache[npt.NDArray[np.float32]]):
    """Each reference's colours (2 KB), made from its stored image on first use."""

    def __init__(self, capacity: int = 16384) -> None:
        super().__init__(colours_of, capacity)


def add_likeness(
    scores: Scores,
    candidates: Mapping[str, Candidate],
    query: npt.NDArray[np.float32],
    references: Mapping[str, Sequence[tuple[int, npt.NDArray[np.float32]]]],
) -> None:
    """Each character candidate's ``character_colour`` (the best colour likeness of the
    query's figure to one of its references) and ``character_likeness``: its prototype
    similarity times that colour likeness, less the best other work's of ``references``
    (the cohort). The
    semantic tower knows what a figure is and ignores its colours; the colours tell a
    character from another of its kind drawn in the same style."""
    colour = {
        work_id: max(palette.likeness(query, h) for _, h in found)
        for work_id, found in references.items()
        if found
    }
    product = {w: scores.similarity[w] * c for w, c in colour.items() if w in scores.similarity}
    for work_id, value in product.items():
        candidate = candidates.get(work_id)
        shown = None if candidate is None else candidate.best.get(MARGIN)
        if candidate is None or shown is None:
            continue
        others = max((v for w, v in product.items() if w != work_id), default=0.0)
        candidate.best[COLOUR] = Best(round(colour[work_id], 6), shown.pair)
        candidate.best[LIKENESS] = Best(round(value - others, 6), shown.pair)
