"""The front door: `Screener` opens the catalog, signals and indexes, and checks images;
its `registry` registers and removes works.

    with Screener.open("screener-data") as screener:
        screener.registry.register("bridge", ["bridge.jpg"], title="Bridge")
        verdict = screener.check("generated.png")
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from screener import index as vindex
from screener.core import fusion
from screener.core import policy as policy_mod
from screener.core import territory as territory_mod
from screener.core.decode import DecodedImage, Limits, decode, decode_file
from screener.core.errors import DecodeError, InputError, NotFound, NotRegistrable, quote
from screener.core.policy import Bands, Decision, Policy
from screener.core.prompt.result import PromptResult, evaluate
from screener.core.regions import WHOLE
from screener.core.settings import Settings
from screener.core.territory import covers, grants
from screener.core.text import refused_character
from screener.core.verdict import Match, RegionPair, Verdict
from screener.matching import background as background_mod
from screener.matching import characters as characters_mod
from screener.matching import explain as explain_mod
from screener.matching import located, registrability
from screener.matching import threads as threads_mod
from screener.matching.candidates import (
    Best,
    Candidate,
    evidence_name,
    lower_is_closer,
    merge,
    query_matrix,
    score_exact,
)
from screener.matching.signal_indexes import IndexSet, MilvusTarget
from screener.matching.signals import (
    EXTRA_BACKGROUNDS,
    RegionFingerprint,
    SignalSet,
    background_variant,
    from_stored,
    is_background_variant,
    is_whole,
    over_background,
    stored_vector,
    vector_bytes,
)
from screener.matching.verification import OVER_BLACK, PLAIN, LocalMatch, LocalVerifier
from screener.matching.verification import SIGNAL as LOCAL_SIGNAL
from screener.models import Fingerprinter, ModelUnavailable, descriptor
from screener.models.keypoints import LocalFeatures
from screener.store.catalog import (
    Catalog,
    HeldReference,
    NewFingerprint,
    NewHeld,
    NewReference,
    RegisterHook,
    RemoveHook,
    StoredFingerprint,
    Work,
)
from screener.store.prompt_terms import PromptScreen

ImageInput = Path | str | bytes | DecodedImage
NORM_SIGNAL = "sscd_norm_cosine"
LEVELS_CACHE = 65_536  # (signal, work) generic levels kept; a few hundred bytes each
log = logging.getLogger(__name__)

_WORK_ID = re.compile(r"^[^\x00-\x1f\x7f/\\]{1,200}$")
_SEVERITY = {Decision.ALLOW: 0, Decision.REVIEW: 1, Decision.BLOCK: 2}


@dataclass(frozen=True)
class CheckItem:
    """One image to check, with what the caller said about it."""

    image: ImageInput
    prompt: str | None = None
    platform: str | None = None  # the caller's owner name, for licences
    include_works: tuple[str, ...] = ()
    territory: str | None = None  # ISO 3166-1 alpha-2 of the release; None: everywhere


@dataclass(frozen=True)
class Prepared:
    """A decoded image waiting for its fingerprints."""

    item: CheckItem
    decoded: DecodedImage
    decode_ms: float


@dataclass(frozen=True)
class Analysis:
    verdict: Verdict
    candidates: tuple[Match, ...]  # every work compared, most severe and closest first
    query: tuple[RegionFingerprint, ...] = ()  # the check's own fingerprints
    local: dict[str, LocalMatch] = field(default_factory=dict)  # verified works


@dataclass(frozen=True)
class Registered:
    work: Work
    added_references: tuple[int, ...]
    skipped: int
    # References held for an operator (stored, not screened against until approved).
    held: tuple[HeldReference, ...] = ()


class Screener:
    """Screens images against the registered works. Thread-safe for checks."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        policy: Policy | None = None,
        fingerprinters: Iterable[Fingerprinter] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._policy = policy or policy_mod.load(self.settings.policy_path)
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.limits = Limits(max_bytes=self.settings.max_bytes, max_pixels=self.settings.max_pixels)
        self.catalog = Catalog(self.settings.resolved_database_url)
        self.signals = SignalSet(
            self.settings,
            self.policy.matching.region_min_quality,
            fingerprinters,
            self.policy.matching.proposals,
        )
        threads = threads_mod.plan(self.settings)
        vindex.set_threads(threads.faiss)
        threads_mod.apply_opencv(threads.opencv)
        self.indexes = IndexSet(
            self.catalog,
            self.signals.available,
            self.settings.index_dir,
            self.settings.index_structure,
            milvus=MilvusTarget.from_settings(self.settings),
        )
        self.local: LocalVerifier | None = None
        if self.settings.local_features:
            try:
                self.local = LocalVerifier(
                    self.settings.local_max_features, directory=self.settings.index_dir
                )
            except ModelUnavailable as exc:
                self.signals.missing["local"] = str(exc)
                log.warning("local-feature verification is NOT in use: %s", exc)
        self._warn_spec_drift()
        self.background: background_mod.Bank | None = None
        # Generic levels by (bank, signal, work, k, quality floor, stored fingerprint ids).
        self._levels: OrderedDict[tuple[Any, ...], dict[str, float]] = OrderedDict()
        self._levels_lock = threading.Lock()  # checks run on several threads in the service
        self.reload_background()
        self._lock = threading.RLock()
        with self._lock:
            self.indexes.open()
            if self.local is not None:
                self.local.backfill(self.catalog, self.limits, self.settings.work_size, _over_black)
                self.local.votes.open(self.catalog)  # the saved index, then what changed
        self.characters = characters_mod.open_models(
            self.catalog,
            self.signals.available.get(characters_mod.SIGNAL),
            lambda data: self.decode(data).image,
            lambda: self.background,
            self.policy.characters,
        )
        if self.characters is not None:
            self.characters.sync()
        self.prompts = PromptScreen(self.catalog)  # loaded on the first prompt
        self.registry = Registry(self)

    @property
    def policy(self) -> Policy:
        """The policy in force. Putting one in force warns when it was fitted with another
        spec of a model that runs here (`policy.spec_drift`)."""
        return self._policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self._policy = policy
        self.signals.proposal_rules = policy.matching.proposals  # read at every check
        self._warn_spec_drift()

    @property
    def model_specs(self) -> dict[str, str]:
        """The spec id of every model behind a verdict's evidence: each fingerprinter's,
        and that of the keypoint extractor behind ``local_inliers`` (its OpenCV release)."""
        specs = dict(self.signals.specs)
        if self.local is not None:
            specs[LOCAL_SIGNAL] = self.local.spec_id
        return specs

    def _warn_spec_drift(self) -> None:
        for problem in policy_mod.spec_drift(self._policy, self.model_specs):
            log.warning("%s", problem)

    @property
    def background_dir(self) -> Path:
        return self.settings.data_dir / "background"

    def reload_background(self) -> None:
        """(Re)load the background bank that normalises SSCD and gives the works' generic
        levels: the data directory's own, else (by default) the one shipped with the
        package."""
        sscd = self.signals.available.get("sscd")
        bank = None
        if sscd is not None:
            bank = background_mod.load(self.background_dir, sscd.spec_id, self.signals.specs)
            if bank is None and self.settings.background_bank == "packaged":
                bank = background_mod.packaged(sscd.spec_id, self.signals.specs)
        self.background = bank
        with self._levels_lock:
            self._levels.clear()

    def build_background(
        self,
        files: Sequence[Path],
        source: str,
        progress: Callable[[int], None] | None = None,
    ) -> background_mod.BuildReport:
        """Build (or refresh) the background bank from generic images, leaving out those
        that match a registered work, and put it in use."""

        def is_registered(vector: npt.NDArray[np.float32]) -> bool:
            found = self.indexes.search("sscd", vector[None, :], k=1, radius=None)
            return bool(
                len(found.scores[0]) and found.scores[0][0] >= background_mod.REGISTERED_COSINE
            )

        report = background_mod.build(
            files,
            self.signals,
            self.background_dir,
            source=source,
            limits=self.limits,
            work_size=self.settings.work_size,
            is_registered=is_registered,
            progress=progress,
        )
        self.reload_background()
        return report

    def index_version(self) -> str:
        """The catalog state the indexes reflect, and the background bank in use."""
        version = self.indexes.version()
        if self.background is not None:
            version += f"+bg-{self.background.digest[:12]}"
        return version

    @classmethod
    def open(cls, data_dir: Path | str | None = None, **settings: Any) -> Screener:
        if data_dir is not None:
            settings["data_dir"] = Path(data_dir)
        return cls(Settings(**settings))

    def close(self) -> None:
        with self._lock:
            self.indexes.save()
            if self.local is not None:
                self.local.votes.save()
        self.catalog.close()

    def __enter__(self) -> Screener:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # decoding ---------------------------------------------------------------------------------

    def decode(self, image: ImageInput) -> DecodedImage:
        if isinstance(image, DecodedImage):
            return image
        if isinstance(image, bytes):
            return decode(image, limits=self.limits, max_side=self.settings.work_size)
        return decode_file(Path(image), limits=self.limits, max_side=self.settings.work_size)

    # checking ---------------------------------------------------------------------------------

    def refresh(self) -> int:
        """Catch the indexes up with registrations made elsewhere (another process)."""
        with self._lock:
            if self.catalog.high_water() > min(self.indexes.marks.values(), default=0):
                return self.catch_up()
        return 0

    def catch_up(self, *, added_only: bool = False) -> int:
        """Bring the indexes, and the descriptor index of local features, in step with
        the catalog; returns how many index log entries were replayed. ``added_only``:
        this process only added (the descriptor index then reads just the new rows)."""
        with self._lock:
            replayed = self.indexes.catch_up()
            models = getattr(self, "characters", None)  # None while __init__ opens indexes
            if models is not None:
                models.sync()
            if self.local is not None:
                self.local.votes.sync(self.catalog, added_only=added_only)
        return replayed

    def check(
        self,
        image: ImageInput,
        prompt: str | None = None,
        *,
        platform: str | None = None,
        territory: str | None = None,
    ) -> Verdict:
        """Screen one image (a path, bytes or an already decoded image).

        ``platform`` is the caller's owner name: works that list it as a licensee are
        reported but do not make the verdict review or block. ``territory`` (ISO 3166-1
        alpha-2) is where the output is released: works not protected there are reported
        under ``outside_territory`` and hold nothing; None: released everywhere.
        """
        return self.analyse(image, prompt, platform=platform, territory=territory).verdict

    def analyse(
        self,
        image: ImageInput,
        prompt: str | None = None,
        include_works: Sequence[str] = (),
        *,
        platform: str | None = None,
        territory: str | None = None,
    ) -> Analysis:
        """A check that also returns every scored candidate, not just the reported ones.

        ``include_works`` are compared exactly even when no index proposed them: the
        accuracy benchmark uses it to measure each signal against the true work.
        """
        where = None if territory is None else territory_mod.code(territory)
        item = CheckItem(image, prompt, platform, tuple(include_works), where)
        result = self.analyse_many([item])[0]
        if isinstance(result, InputError):
            raise result
        return result

    def analyse_many(self, items: Sequence[CheckItem]) -> list[Analysis | InputError]:
        """Check several images with one model call per signal for all of them.

        Each item succeeds or fails on its own: a bad image's place in the result holds
        its :class:`InputError`, and the others are checked as usual. The three steps are
        also public (:meth:`prepare`, :meth:`fingerprint_many`, :meth:`conclude`) so that
        the service can batch the model calls alone across requests.
        """
        prepared = [self.prepare(item) for item in items]
        good = [p for p in prepared if isinstance(p, Prepared)]
        start = time.perf_counter()
        queries = self.fingerprint_many([p.decoded.image for p in good])
        elapsed_ms = (time.perf_counter() - start) * 1000
        found = dict(zip((id(p) for p in good), queries, strict=True))
        return [
            p if isinstance(p, InputError) else self.conclude(p, found[id(p)], elapsed_ms)
            for p in prepared
        ]

    def prepare(self, item: CheckItem) -> Prepared | InputError:
        """Step 1 of a check: decode (the error, not raised, for a bad image)."""
        clock = _Clock()
        try:
            decoded = self.decode(item.image)
        except InputError as exc:
            return exc
        clock.lap("decode")
        return Prepared(item, decoded, clock.laps["decode"])

    def fingerprint_many(self, images: Sequence[Image.Image]) -> list[list[RegionFingerprint]]:
        """Step 2: the query fingerprints of several decoded images, one model call per
        signal for all of them."""
        return self.signals.fingerprint_many(
            images, dihedral=True, propose=self.settings.region_proposals
        )

    def conclude(
        self, prepared: Prepared, query: list[RegionFingerprint], fingerprint_ms: float
    ) -> Analysis:
        """Step 3: search, score, fuse and decide."""
        self.refresh()
        clock = _Clock()
        clock.laps.update(decode=prepared.decode_ms, fingerprint=round(fingerprint_ms, 3))
        analysis = self._analyse(prepared.decoded, query, prepared.item, clock)
        clock.laps["total"] = round(prepared.decode_ms + fingerprint_ms + clock.since_start(), 3)
        return analysis

    def _analyse(
        self, decoded: DecodedImage, query: list[RegionFingerprint], item: CheckItem, clock: _Clock
    ) -> Analysis:
        by_signal = self._usable(query)
        proposed = self._propose(by_signal)
        prompt_info, prompt_evidence, named = self._prompt(item.prompt, item.platform)
        clock.lap("search")
        work_ids = self._shortlist(proposed, named)
        work_ids += [w for w in item.include_works if w not in work_ids]
        features = None  # the query's keypoints, extracted once where anything is verified
        if self.local is not None and self.policy.matching.verify_top > 0:
            features = self.local.extract(decoded.image)
        voted = self._vote(features)
        work_ids += [w for w in voted if w not in work_ids]
        clock.lap("verify")  # extraction and votes: part of local verification's cost
        characters = characters_mod.query_scores(self.characters, by_signal)
        named_by_model = characters.top(self.policy.matching.max_matches)
        work_ids += [w for w in named_by_model if w not in work_ids]
        candidates = self._score(by_signal, work_ids)
        characters_mod.add_evidence(characters, candidates)
        if item.prompt:
            self._prompt_similarity(item.prompt, candidates)
        clock.lap("score")
        local = self._verify(decoded, candidates, [*voted, *item.include_works], features)
        clock.lap("verify")
        matches = self._matches(
            candidates,
            prompt_evidence,
            item.prompt,
            item.platform,
            local=local,
            background=self._background_similarity(by_signal),
            territory=item.territory,
        )
        verdict = self._verdict(decoded, matches, prompt_info, clock, item.territory)
        return Analysis(verdict, tuple(matches), tuple(query), local)

    def _vote(self, features: LocalFeatures | None) -> list[str]:
        """Works the descriptor-level index proposes for verification, most votes first."""
        matching = self.policy.matching
        if self.local is None or features is None:  # no local verification
            return []
        voted = self.local.votes.vote(features, matching.vote_top, matching.min_votes)
        return [work_id for work_id, _ in voted]

    def _verify(
        self,
        decoded: DecodedImage,
        candidates: dict[str, Candidate],
        include: Sequence[str],
        features: LocalFeatures | None = None,
    ) -> dict[str, LocalMatch]:
        """Local-feature verification of the best candidates by their global signals,
        and of ``include`` (the works the descriptor index voted for, and any asked for)."""
        top = self.policy.matching.verify_top
        if self.local is None or not candidates or top == 0:
            return {}
        ranked = sorted(
            candidates,
            key=lambda w: fusion.fuse(candidates[w].values(), self.policy),
            reverse=True,
        )
        chosen = ranked[:top] + [
            w for w in dict.fromkeys(include) if w in candidates and w not in ranked[:top]
        ]
        found = self.local.verify_against(decoded, chosen, self.catalog, features)
        for work_id, match in found.items():
            region = WHOLE if match.variant == PLAIN else background_variant(WHOLE, match.variant)
            candidates[work_id].best[LOCAL_SIGNAL] = Best(
                float(match.inliers), RegionPair(WHOLE, match.reference_id, region)
            )
        if self.settings.located_region and "sscd" in self.signals.available:
            self._locate(decoded, found, candidates)
        return found

    def _locate(
        self, decoded: DecodedImage, found: dict[str, LocalMatch], candidates: dict[str, Candidate]
    ) -> None:
        """SSCD on the part of the query where verified keypoints put each of the best
        verified works, as region evidence where it beats the work's fixed regions."""
        rules = self.policy.matching.proposals
        working = decoded.image.size
        ranked = sorted(
            (m for m in found.values() if m.inliers >= rules.located_min_inliers),
            key=lambda m: m.inliers,
            reverse=True,
        )
        boxes = {}
        for match in ranked[: rules.located_top]:
            box = located.box_of(
                match.quad,
                (decoded.width, decoded.height),
                working,
                rules.located_margin,
                rules.located_min_side,
            )
            if box is not None and located.worth_cropping(box, working, rules.located_max_share):
                boxes[match.work_id] = box
        if not boxes:
            return
        sscd = self.signals.available["sscd"]
        images = located.crops(decoded.image, boxes)
        vectors = {
            work_id: np.asarray(fp.vector, dtype=np.float32)
            for work_id, fp in zip(images, sscd.fingerprint(list(images.values())), strict=True)
        }
        stored = self.catalog.fingerprints_of_works(list(boxes), "sscd", sscd.spec_id)
        name = descriptor("sscd").region_evidence
        for work_id, (value, ref) in located.best_cosines(vectors, stored).items():
            current = candidates[work_id].best.get(name)
            if current is None or value > current.value:
                candidates[work_id].best[name] = Best(
                    value, RegionPair(located.REGION, ref.reference_id, ref.region)
                )

    def explain(
        self, image: ImageInput, work_id: str | None = None, caption: Sequence[str] = ()
    ) -> explain_mod.Picture:
        """The evidence picture of a check of ``image``: against ``work_id``, or against
        the work the check would report first. ``NotFound`` when there is nothing to show.
        """
        decoded = self.decode(image)
        if work_id is not None and work_id not in self.catalog.works([work_id]):
            raise NotFound(f"no work {quote(work_id)}")
        analysis = self.analyse(decoded, include_works=[work_id] if work_id else [])
        return self.picture(decoded, analysis, work_id, caption)

    def picture(
        self,
        decoded: DecodedImage,
        analysis: Analysis,
        work_id: str | None = None,
        caption: Sequence[str] = (),
    ) -> explain_mod.Picture:
        """The evidence picture of a check already made of ``decoded``."""
        verdict = analysis.verdict
        if work_id is None:
            shown = (*verdict.matches, *verdict.licensed, *verdict.near_misses)
            work_id = shown[0].work_id if shown else None
        match = next((m for m in analysis.candidates if m.work_id == work_id), None)
        if match is None:
            raise NotFound("no registered work resembles this image: nothing to explain")
        local = analysis.local.get(match.work_id)
        region = match.best_region
        references = {r.id: r for r in self.catalog.references(match.work_id)}
        if local is not None:
            reference_id = local.reference_id
        elif region is not None:
            reference_id = region.reference_id
        else:
            reference_id = min(references)
        reference = self.decode(self.catalog.blob(references[reference_id].sha256))
        # Transparency on a checkerboard, as the console shows it (whichever background the
        # keypoints were found over: the geometry is the same).
        drawn = explain_mod.draw(
            _on_checkerboard(decoded),
            _on_checkerboard(reference),
            match,
            local,
            None if local is not None else region,
            (decoded.width, decoded.height),
            caption,
        )
        return explain_mod.Picture(
            explain_mod.to_png(drawn), drawn.width, drawn.height, match.work_id
        )

    def rescore_many(
        self, queries: Sequence[tuple[Sequence[RegionFingerprint], str | None]], work_id: str
    ) -> list[list[Match]]:
        """Score the stored fingerprints of earlier checks (each with the platform that made
        it) against one work now: the re-screening of released outputs after a notice.
        The work, its reference fingerprints and its cohort levels are read once for all
        the queries."""
        stored = {
            signal: self.catalog.fingerprints_of_works([work_id], signal, fingerprinter.spec_id)
            for signal, fingerprinter in self.signals.available.items()
        }
        works = self.catalog.works([work_id])
        cohort = self._cohort_levels([work_id])
        results = []
        for query, platform in queries:
            by_signal = self._usable(list(query))
            results.append(
                self._matches(
                    self._score(by_signal, [work_id], stored, cohort),
                    {},
                    None,
                    platform,
                    works,
                    background=self._background_similarity(by_signal),
                )
            )
        return results

    def _background_similarity(self, by_signal: dict[str, list[RegionFingerprint]]) -> float | None:
        """The whole query's SSCD cosine to its k-th nearest background image."""
        if self.background is None:
            return None
        whole = [f for f in by_signal.get("sscd", ()) if f.region == WHOLE]
        if not whole:
            return None
        vector = np.asarray(whole[0].fingerprint.vector, dtype=np.float32)[None, :]
        k = self.policy.matching.background_k
        return float(self.background.kth_similarity(vector, k)[0])

    def _usable(self, query: list[RegionFingerprint]) -> dict[str, list[RegionFingerprint]]:
        """Query fingerprints grouped by signal, those under their signal's quality floor
        (low-quality PDQ hashes) left out."""
        grouped: dict[str, list[RegionFingerprint]] = {}
        for fp in query:
            floor = self.policy.matching.quality_floor(fp.signal)
            if floor is not None and (fp.fingerprint.quality or 0.0) < floor:
                continue
            grouped.setdefault(fp.signal, []).append(fp)
        return grouped

    def _propose(self, by_signal: dict[str, list[RegionFingerprint]]) -> dict[str, dict[str, Best]]:
        """Works proposed by each signal's index, with the index's best value for each."""
        matching = self.policy.matching
        hits: dict[str, list[tuple[int, float, str]]] = {}
        with self._lock:
            for signal, fps in by_signal.items():
                binary = self.signals.available[signal].kind == "binary"
                regions, matrix = query_matrix(signal, fps, binary)
                radius = matching.radius.get(signal)
                # With a radius, one range search and our own cut to the closest hits:
                # asking the index for exactly k makes it break ties at the k-th distance,
                # which for integer Hamming distances nearly always costs a second search.
                found = self.indexes.search(
                    signal,
                    matrix,
                    k=None if radius is not None else matching.neighbours,
                    radius=radius,
                )
                hits[signal] = [
                    (int(i), float(s), regions[q])
                    for q, (ids, scores) in enumerate(zip(found.ids, found.scores, strict=True))
                    for i, s in zip(
                        ids[: matching.neighbours], scores[: matching.neighbours], strict=True
                    )
                ]
        owners = self.catalog.owners(i for h in hits.values() for i, _, _ in h)
        proposed: dict[str, dict[str, Best]] = {}
        for signal, signal_hits in hits.items():
            sign = -1.0 if lower_is_closer(signal) else 1.0
            for fid, value, region in signal_hits:
                owner = owners.get(fid)
                if owner is None:  # removed since the index was searched
                    continue
                work_id, reference_id, ref_region = owner
                name = evidence_name(signal, region, ref_region)
                if name is None:  # region against region: not evidence
                    continue
                best = proposed.setdefault(name, {})
                current = best.get(work_id)
                if current is None or sign * value > sign * current.value:
                    best[work_id] = Best(value, RegionPair(region, reference_id, ref_region))
        return proposed

    def check_prompt(self, prompt: str, *, platform: str | None = None) -> PromptResult:
        """Screen a prompt before generation: the works it names (however spelled) and
        the decision under the policy. ``platform``: works licensed to it are reported,
        never refused."""
        policy = self.policy.prompt
        self.prompts.refresh()
        index = self.prompts.index
        hits = index.scan(prompt, fuzzy=policy.fuzzy, homophone_han=policy.homophone_han)
        named = {h.entry.work_id for h in hits}
        licensed: set[str] = set()
        if platform is not None and named:
            licensed = {w.id for w in self.catalog.works(named).values() if platform in w.licensees}
        return evaluate(prompt, hits, policy, index.described(named), licensed)

    def _prompt(
        self, prompt: str | None, platform: str | None = None
    ) -> tuple[dict[str, Any] | None, dict[str, float], list[str]]:
        """The prompt's evidence: what the verdict shows, each work's prompt evidence (a
        work with one related term only gets it beside image evidence), the works named."""
        if not prompt:
            return None, {}, []
        result = self.check_prompt(prompt, platform=platform)
        found = {m.work_id: [t.term for t in m.terms] for m in result.matches}
        info = {
            "text": prompt,
            "keyword_matches": found,
            "decision": result.decision.value,
            "matches": [m.to_dict() for m in result.matches],
        }
        return info, result.evidence(), list(found)

    def _shortlist(
        self, proposed: dict[str, dict[str, Best]], prompt_works: list[str]
    ) -> list[str]:
        """The works worth an exact comparison: best first by a fused score of index hits."""
        limit = 4 * self.policy.matching.max_matches
        preliminary = merge(proposed)
        ranked = sorted(
            preliminary,
            key=lambda w: fusion.fuse(preliminary[w].values(), self.policy),
            reverse=True,
        )
        shortlist = ranked[:limit]
        shortlist += [w for w in prompt_works if w not in shortlist]
        return shortlist

    def _score(
        self,
        by_signal: dict[str, list[RegionFingerprint]],
        work_ids: Sequence[str],
        known: dict[str, list[StoredFingerprint]] | None = None,
        cohort: dict[str, dict[str, float]] | None = None,
    ) -> dict[str, Candidate]:
        """Exact scores of the query against ``work_ids``' references (``known``: those
        references' fingerprints by signal, already read; ``cohort``: the works' cohort
        levels, already computed)."""
        if not work_ids:
            return {}
        exact: dict[str, dict[str, Best]] = {}
        generic: dict[str, dict[str, float]] = {}
        for signal, fps in by_signal.items():
            stored = (
                known[signal]
                if known is not None
                else self.catalog.fingerprints_of_works(
                    work_ids, signal, self.signals.available[signal].spec_id
                )
            )
            binary = self.signals.available[signal].kind == "binary"
            floor = self.policy.matching.quality_floor(signal)
            exact.update(score_exact(signal, binary, fps, stored, floor))
            generic.update(self._generic_levels(signal, stored, floor))
        candidates = merge(exact)
        for work_id in work_ids:
            candidates.setdefault(work_id, Candidate(work_id))
        for name, by_work in generic.items():
            for work_id, level in by_work.items():
                if work_id in candidates:
                    candidates[work_id].generic[name] = level
        for work_id, levels in (
            cohort if cohort is not None else self._cohort_levels(work_ids)
        ).items():
            candidates[work_id].cohort.update(levels)
        return candidates

    def _cohort_levels(self, work_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Each work's cohort level by evidence name (see `_cohort_of`), from the levels
        cache keyed by the catalog's high-water mark: any registration or removal anywhere
        computes them afresh."""
        k = self.policy.matching.cohort_k
        if k < 1 or not work_ids:
            return {}
        version = self.catalog.high_water()
        floors = tuple(self.policy.matching.quality_floor(s) for s in self.signals.available)
        out: dict[str, dict[str, float]] = {}
        for work_id in dict.fromkeys(work_ids):
            key = ("cohort", version, work_id, k, floors)
            cached = self._cached_levels(key)
            if cached is None:
                cached = self._cohort_of(work_id, k)
                self._keep_levels({key: cached})
            out[work_id] = cached
        return out

    def _cached_levels(self, key: tuple[Any, ...]) -> dict[str, float] | None:
        """A work's generic or cohort levels from the cache (most recently used last)."""
        with self._levels_lock:
            cached = self._levels.get(key)
            if cached is not None:
                self._levels.move_to_end(key)
            return cached

    def _keep_levels(self, fresh: dict[tuple[Any, ...], dict[str, float]]) -> None:
        """Cache works' levels, the least recently used out past ``LEVELS_CACHE``."""
        with self._levels_lock:
            self._levels.update(fresh)
            while len(self._levels) > LEVELS_CACHE:
                self._levels.popitem(last=False)

    def _cohort_of(self, work_id: str, k: int) -> dict[str, float]:
        """The value of each evidence that the ``k``-th closest *other* registered work
        reaches against ``work_id``: the work's stored fingerprints (whole and regions, as
        composited over white) are screened as a query would be, through the indexes and then
        exactly, against every work but itself. A work in a dense part of the registry
        (one icon theme, one game's portraits) gets a high level; evidence no other work
        gives, or that fewer than ``k`` give, sets none."""
        by_signal: dict[str, list[RegionFingerprint]] = {}
        own: dict[str, int] = {}  # the work's own fingerprints in each index
        floors = {s: self.policy.matching.quality_floor(s) for s in self.signals.available}
        for signal, fingerprinter in self.signals.available.items():
            binary = fingerprinter.kind == "binary"
            floor = floors[signal]
            stored = self.catalog.fingerprints_of_works([work_id], signal, fingerprinter.spec_id)
            own[signal] = len(stored)
            by_signal[signal] = [
                from_stored(signal, ref.region, ref.vector, ref.quality, binary)
                for ref in stored
                if (floor is None or (ref.quality or 0.0) >= floor)
                # As a query, the work is one picture: its renderings over other
                # backgrounds (transparent works) are reference-side only, and two of them
                # (two icons over black) would look alike as no query and work do.
                and not is_background_variant(ref.region)
            ]
        by_signal = {signal: fps for signal, fps in by_signal.items() if fps}
        # Each fingerprint's nearest neighbours, past the work's own (which are nearest).
        found_ids: set[int] = set()
        with self._lock:
            for signal, fps in by_signal.items():
                binary = self.signals.available[signal].kind == "binary"
                _, matrix = query_matrix(signal, fps, binary)
                k_search = self.policy.matching.neighbours + own[signal]
                found = self.indexes.search(signal, matrix, k=k_search, radius=None)
                found_ids.update(int(i) for ids in found.ids for i in ids)
        owners = self.catalog.owners(found_ids)
        others = sorted({owner[0] for owner in owners.values()} - {work_id})
        if not others:
            return {}
        levels: dict[str, float] = {}
        for signal, fps in by_signal.items():
            fingerprinter = self.signals.available[signal]
            stored = self.catalog.fingerprints_of_works(others, signal, fingerprinter.spec_id)
            exact = score_exact(
                signal,
                fingerprinter.kind == "binary",
                fps,
                stored,
                floors[signal],
            )
            for name, by_work in exact.items():
                if len(by_work) >= k:
                    reached = sorted(b.value for b in by_work.values())
                    levels[name] = reached[k - 1] if lower_is_closer(signal) else reached[-k]
        return levels

    def _generic_levels(
        self, signal: str, stored: Sequence[StoredFingerprint], floor: float | None
    ) -> dict[str, dict[str, float]]:
        """Each work's generic level of ``signal`` (see `background.Bank.levels`), from a
        cache keyed by the work's stored fingerprints, so that a new or removed
        reference, a rebuilt bank or another k is computed afresh."""
        bank = self.background
        if bank is None or signal not in bank.rows:
            return {}
        k = self.policy.matching.background_k
        by_work: dict[str, list[StoredFingerprint]] = {}
        for ref in stored:
            by_work.setdefault(ref.work_id, []).append(ref)
        out: dict[str, dict[str, float]] = {}
        todo: list[StoredFingerprint] = []
        keys: dict[str, tuple[Any, ...]] = {}
        for work_id, refs in by_work.items():
            key = (bank.digest, signal, work_id, k, floor, tuple(sorted(r.id for r in refs)))
            keys[work_id] = key
            cached = self._cached_levels(key)
            if cached is None:
                todo += refs
            else:
                for name, level in cached.items():
                    out.setdefault(name, {})[work_id] = level
        if todo:
            fresh = bank.levels(signal, todo, k, floor)  # outside the lock: numpy work
            kept: dict[tuple[Any, ...], dict[str, float]] = {}
            for work_id in {r.work_id for r in todo}:
                levels = {name: f[work_id] for name, f in fresh.items() if work_id in f}
                kept[keys[work_id]] = levels
                for name, level in levels.items():
                    out.setdefault(name, {})[work_id] = level
            self._keep_levels(kept)
        return out

    def _prompt_similarity(self, prompt: str, candidates: dict[str, Candidate]) -> None:
        """CLIP text-to-image similarity of the prompt to each candidate's references."""
        clip = self.signals.available.get("clip")
        embed = getattr(clip, "embed_text", None)
        if clip is None or embed is None or not candidates:
            return
        text = np.asarray(embed([prompt]), dtype=np.float32)
        stored = self.catalog.fingerprints_of_works(candidates, "clip", clip.spec_id)
        for ref in stored:
            if not is_whole(ref.region):
                continue
            value = float(text[0] @ stored_vector(ref.vector, binary=False))
            best = candidates[ref.work_id].best.get("prompt_clip_cosine")
            if best is None or value > best.value:
                candidates[ref.work_id].best["prompt_clip_cosine"] = Best(
                    value, RegionPair("prompt", ref.reference_id, ref.region)
                )

    def _matches(
        self,
        candidates: dict[str, Candidate],
        prompt_evidence: dict[str, float],
        prompt: str | None,
        platform: str | None = None,
        works: dict[str, Work] | None = None,
        local: dict[str, LocalMatch] | None = None,
        background: float | None = None,
        territory: str | None = None,
    ) -> list[Match]:
        matches = []
        if works is None:
            works = self.catalog.works(candidates)  # one removed since proposed is absent
        for work_id, candidate in candidates.items():
            work = works.get(work_id)
            if work is None:
                continue
            values: dict[str, float | None] = {
                name: None
                for s in self.signals.available
                for name in (descriptor(s).evidence, descriptor(s).region_evidence)
            }
            if self.local is not None:
                values[LOCAL_SIGNAL] = None
            if self.background is not None:
                values[NORM_SIGNAL] = None
            values.update(candidate.values())
            raw = values.get(descriptor("sscd").evidence)
            if background is not None and raw is not None:
                values[NORM_SIGNAL] = round(raw - background, 6)
            if prompt:
                values["prompt_keyword"] = prompt_evidence.get(work_id, 0.0)
            bands = self._bands(work, territory)
            fused = fusion.fuse(values, self.policy)
            decision = policy_mod.decide(fused, bands)
            if decision is Decision.BLOCK and not fusion.block_supported(values, self.policy):
                decision = Decision.REVIEW
            matches.append(
                Match(
                    work_id=work_id,
                    title=work.title,
                    owner=work.owner,
                    fused_score=round(fused, 6),
                    decision=decision.value,
                    thresholds={"review": bands.review, "block": bands.block},
                    signals=values,
                    contributions={
                        k: round(v, 6) for k, v in fusion.contributions(values, self.policy).items()
                    },
                    regions={name: best.pair for name, best in candidate.best.items()},
                    licensed=platform is not None
                    and platform in work.licensees
                    and grants(work.licensee_territories.get(platform, ()), territory),
                    local=local[work_id].evidence() if local and work_id in local else None,
                    outside_territory=not covers(work.territories, territory),
                    log_odds=round(fusion.log_odds(values, self.policy), 6),
                )
            )
        matches.sort(key=lambda m: (_SEVERITY[Decision(m.decision)], m.fused_score), reverse=True)
        return matches

    def _bands(self, work: Work, territory: str | None = None) -> Bands:
        base = self.policy.bands_for(work.id, territory)
        if work.thresholds and grants(work.threshold_territories, territory):
            # One band stored alone (before both were stored) beside a policy changed since
            # may cross the other: the block band wins, so a check never fails on it.
            block = work.thresholds.get("block", base.block)
            return Bands(review=min(work.thresholds.get("review", base.review), block), block=block)
        return base

    def _verdict(
        self,
        decoded: DecodedImage,
        matches: list[Match],
        prompt_info: dict[str, Any] | None,
        clock: _Clock,
        territory: str | None = None,
    ) -> Verdict:
        limit = self.policy.matching.max_matches
        held = [m for m in matches if m.decision != Decision.ALLOW.value]
        licensed = [m for m in held if m.licensed]
        outside = [m for m in held if not m.licensed and m.outside_territory]
        flagged = [m for m in held if not m.licensed and not m.outside_territory]
        bands = self.policy.bands_for(None, territory)
        others = [m for m in matches if m.decision == Decision.ALLOW.value]
        top = flagged[0] if flagged else None
        best_score = max((m.fused_score for m in matches), default=0.0)
        best_odds = max((m.log_odds for m in matches), default=self.policy.bias)
        clock.lap("verdict")
        return Verdict(
            decision=top.decision if top else Decision.ALLOW.value,
            fused_score=top.fused_score if top else best_score,
            top_work_id=top.work_id if top else None,
            matches=tuple(flagged[:limit]),
            near_misses=tuple(others[: min(3, limit)]),
            thresholds={"review": bands.review, "block": bands.block},
            policy_version=self.policy.version,
            index_version=self.index_version(),
            models=self.model_specs,
            signals_used=tuple(self.signals.names),
            signals_missing=dict(self.signals.missing),
            input={
                "sha256": decoded.sha256,
                "format": decoded.format,
                "width": decoded.width,
                "height": decoded.height,
            },
            prompt=prompt_info,
            timings_ms=clock.laps,
            licensed=tuple(licensed[:limit]),
            territory=territory,
            outside_territory=tuple(outside[:limit]),
            log_odds=top.log_odds if top else best_odds,
        )


class Registry:
    """Registers and removes works; writes the catalog first, then the indexes."""

    def __init__(self, screener: Screener) -> None:
        self._s = screener

    def register(
        self,
        work_id: str,
        images: Sequence[ImageInput],
        *,
        title: str | None = None,
        owner: str = "",
        aliases: Sequence[str] = (),
        names: Sequence[str] | None = None,
        related_terms: Sequence[str] = (),
        create_only: bool = False,
        must_exist: bool = False,
        hook: RegisterHook | None = None,
        vetted: bool = False,
    ) -> Registered:
        """Register a work (or add references to an existing one) from its images.

        Every image is decoded, fingerprinted and measured (`screener.matching.registrability`)
        before anything is written: one bad image, or one with too little content
        (:class:`NotRegistrable`, naming each rule broken), fails the whole call and
        nothing changes. An image that looks like an ordinary picture of the background
        bank is stored but held for an operator (``Registered.held``), unless the caller
        is an operator who already judged it (``vetted``).
        """
        check_work_id(work_id)
        if not images:
            raise InputError(f"work {quote(work_id)}: at least one reference image is needed")
        prepared = [
            self._reference(image, names[i] if names else _name_of(image, i))
            for i, image in enumerate(images)
        ]
        refused = [
            registrability.refuse(ref.source_name, content)
            for ref, content, _ in prepared
            if content
        ]
        if refused:
            raise NotRegistrable(
                "; ".join(str(e) for e in refused), [f for e in refused for f in e.findings]
            )
        references = [ref for ref, _, hold in prepared if hold is None or vetted]
        held = [
            NewHeld(
                ref.sha256,
                ref.source_name,
                ref.format,
                ref.width,
                ref.height,
                ref.data,
                (hold.to_dict(),),
            )
            for ref, _, hold in prepared
            if hold is not None and not vetted
        ]
        with self._s._lock:
            work, added, held_ids = self._s.catalog.register(
                work_id,
                title=title or work_id,
                owner=owner,
                aliases=list(aliases),
                references=references,
                related_terms=list(related_terms),
                create_only=create_only,
                must_exist=must_exist,
                hook=hook,
                held=held,
            )
            self._s.catch_up(added_only=True)
        kept = tuple(h for h in self._s.catalog.held(work_id=work_id) if h.id in held_ids)
        return Registered(work, tuple(added), len(prepared) - len(added) - len(kept), kept)

    def approve(self, work_id: str, held_id: int, hook: RegisterHook | None = None) -> Registered:
        """Add a held reference to its work (fingerprinted afresh from its stored bytes) and
        drop it from the held ones, in one transaction."""
        found = self._s.catalog.held(work_id=work_id, held_id=held_id)
        if not found:
            raise NotFound(f"work {quote(work_id)} has no held reference {held_id}")
        work = self._s.catalog.get_work(work_id)
        ref, _, _ = self._reference(self._s.catalog.blob(found[0].sha256), found[0].source_name)
        with self._s._lock:
            work, added, _ = self._s.catalog.register(
                work_id,
                title=work.title,
                owner=work.owner,
                aliases=work.aliases,
                references=[ref],
                must_exist=True,
                hook=hook,
                release=held_id,
            )
            self._s.catch_up(added_only=True)
        return Registered(work, tuple(added), 1 - len(added))

    def reject(self, work_id: str, held_id: int, hook: RemoveHook | None = None) -> None:
        """Drop a held reference: it never becomes part of the work."""
        self._s.catalog.reject_held(work_id, held_id, hook)

    def check_content(self, data: bytes, name: str) -> DecodedImage:
        """Decode an image meant to become a reference and refuse it now
        (:class:`NotRegistrable`) if it has too little content, before a caller records
        anything that would register it later (a notice's images)."""
        decoded = self._s.decode(data)
        rules = self._s.policy.registration
        content = registrability.content_findings(registrability.measure(decoded, rules), rules)
        if content:
            raise registrability.refuse(name, content)
        return decoded

    def _reference(
        self, image: ImageInput, name: str
    ) -> tuple[NewReference, list[registrability.Finding], registrability.Finding | None]:
        """A reference ready to store, the content rules it breaks (each refuses it) and
        the reason to hold it for an operator, if any."""
        if isinstance(image, DecodedImage):
            raise InputError("register needs the original bytes or a path, not a decoded image")
        try:
            data = image if isinstance(image, bytes) else _read(Path(image), self._s.limits)
            decoded = decode(data, limits=self._s.limits, max_side=self._s.settings.work_size)
        except DecodeError as exc:
            raise type(exc)(f"{name}: {exc}") from exc
        rules = self._s.policy.registration
        content = registrability.content_findings(registrability.measure(decoded, rules), rules)
        if content:  # refused: not worth fingerprinting
            return NewReference(decoded.sha256, name, decoded.format, 0, 0, b"", ()), content, None
        reference = self._fingerprinted(decoded, data, name)
        by_signal: dict[str, list[StoredFingerprint]] = {}
        for fp in reference.fingerprints:
            by_signal.setdefault(fp.signal, []).append(
                StoredFingerprint(0, "", 0, fp.signal, fp.spec_id, fp.region, fp.vector, fp.quality)
            )
        hold = registrability.bank_finding(self._s.background, by_signal, self._s.policy)
        return reference, [], hold

    def _fingerprinted(self, decoded: DecodedImage, data: bytes, name: str) -> NewReference:
        return self._fingerprinted_many([(decoded, data, name)])[0]

    def _fingerprinted_many(
        self, items: Sequence[tuple[DecodedImage, bytes, str]]
    ) -> list[NewReference]:
        """References ready to store, with one model call per signal for all the images
        (and, for transparent ones, their other backgrounds): bulk registration's batches."""
        signals = self._s.signals
        images: list[Image.Image] = []
        owners: list[tuple[int, str]] = []  # (item, background or "") per image fingerprinted
        for position, (decoded, _, _) in enumerate(items):
            images.append(decoded.image)
            owners.append((position, ""))
            if decoded.is_transparent and decoded.alpha is not None:
                # Not only over white: the content must match whatever it is later shown on.
                for background, colour in EXTRA_BACKGROUNDS.items():
                    images.append(over_background(decoded.image, decoded.alpha, colour))
                    owners.append((position, background))
        found: list[list[tuple[RegionFingerprint, str]]] = [[] for _ in items]
        fingerprinted = signals.fingerprint_many(images, dihedral=False) if images else []
        for (position, background), per_image in zip(owners, fingerprinted, strict=True):
            found[position] += [
                (fp, background_variant(fp.region, background) if background else fp.region)
                for fp in per_image
            ]
        return [
            self._new_reference(decoded, data, name, found[position])
            for position, (decoded, data, name) in enumerate(items)
        ]

    def _new_reference(
        self,
        decoded: DecodedImage,
        data: bytes,
        name: str,
        found: Sequence[tuple[RegionFingerprint, str]],
    ) -> NewReference:
        signals = self._s.signals
        local = (
            ()
            if self._s.local is None
            else self._s.local.reference_features(decoded.image, _over_black(decoded))
        )
        fingerprints = tuple(
            NewFingerprint(
                fp.signal,
                signals.available[fp.signal].spec_id,
                region,
                vector_bytes(fp.fingerprint),
                fp.fingerprint.quality,
            )
            for fp, region in found
        )
        return NewReference(
            decoded.sha256,
            name,
            decoded.format,
            decoded.width,
            decoded.height,
            data,
            fingerprints,
            local,
        )

    def remove(self, work_id: str, hook: RemoveHook | None = None) -> int:
        """Remove a work everywhere; returns how many fingerprints went with it."""
        with self._s._lock:
            removed = self._s.catalog.remove_work(work_id, hook)
            self._s.catch_up()
        return removed

    def remove_reference(
        self, work_id: str, reference_id: int, hook: RemoveHook | None = None
    ) -> int:
        """Remove one reference image of a work; returns how many fingerprints went."""
        with self._s._lock:
            removed = self._s.catalog.remove_reference(work_id, reference_id, hook)
            self._s.catch_up()
        return removed

    def save(self) -> None:
        with self._s._lock:
            self._s.indexes.save()
            if self._s.local is not None:
                self._s.local.votes.save()


def check_work_id(work_id: object) -> str:
    """A usable work id, or :class:`InputError` saying what one is."""
    if (
        not isinstance(work_id, str)
        or not _WORK_ID.match(work_id)
        or refused_character(work_id) is not None
        or not work_id.strip()
        or not work_id.strip(".")  # "." and ".." cannot stand in a URL path
    ):
        raise InputError(
            f"work id {quote(work_id)} must be 1-200 characters, without slashes or control "
            "characters, and not only dots"
        )
    return work_id


def _over_black(decoded: DecodedImage) -> Image.Image | None:
    """A transparent image's content over black (None for an opaque image)."""
    if not decoded.is_transparent or decoded.alpha is None:
        return None
    return over_background(decoded.image, decoded.alpha, EXTRA_BACKGROUNDS[OVER_BLACK])


def _on_checkerboard(decoded: DecodedImage) -> Image.Image:
    if not decoded.is_transparent or decoded.alpha is None:
        return decoded.image
    return explain_mod.over_checkerboard(decoded.image, decoded.alpha)


def _name_of(image: ImageInput, position: int) -> str:
    if isinstance(image, (str, Path)):
        return os.path.basename(str(image))
    return f"image-{position + 1}"


def _read(path: Path, limits: Limits) -> bytes:
    """A file's bytes, refusing it unread past the byte cap (decode reports the error)."""
    try:
        with path.open("rb") as handle:
            return handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise DecodeError(f"cannot read {path}: {exc.strerror or exc}") from None


class _Clock:
    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def since_start(self) -> float:
        return (time.perf_counter() - self._start) * 1000

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + (now - self._last) * 1000, 3)
        self.laps["total"] = round((now - self._start) * 1000, 3)
        self._last = now
