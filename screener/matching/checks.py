"""The check stages: decode, fingerprint, propose (indexes, descriptor votes, prompt,
character models), verify and locate, then score (`scoring`); also the evidence picture
and the re-screening of stored checks against one work."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from screener.core import fusion
from screener.core import territory as territory_mod
from screener.core.decode import DecodedImage
from screener.core.errors import InputError, NotFound, quote
from screener.core.prompt.result import PromptResult, evaluate
from screener.core.regions import WHOLE
from screener.core.verdict import Match, RegionPair, Verdict
from screener.matching import aligned
from screener.matching import characters as characters_mod
from screener.matching import explain as explain_mod
from screener.matching.analysis import Analysis, CheckItem, Clock, ImageInput, Prepared
from screener.matching.candidates import (
    Best,
    Candidate,
    evidence_name,
    lower_is_closer,
    merge,
    query_matrix,
)
from screener.matching.pixel_evidence import PixelEvidence
from screener.matching.signals import RegionFingerprint, background_variant
from screener.matching.verification import PART_SIGNAL, PLAIN, LocalMatch
from screener.matching.verification import SIGNAL as LOCAL_SIGNAL
from screener.models.keypoints import LocalFeatures


class Checks(PixelEvidence):
    """Checks of images and prompts."""

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
        clock = Clock()
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
        clock = Clock()
        clock.laps.update(decode=prepared.decode_ms, fingerprint=round(fingerprint_ms, 3))
        analysis = self._analyse(prepared.decoded, query, prepared.item, clock)
        clock.laps["total"] = round(prepared.decode_ms + fingerprint_ms + clock.since_start(), 3)
        return analysis

    def _analyse(
        self, decoded: DecodedImage, query: list[RegionFingerprint], item: CheckItem, clock: Clock
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
        named_by_model = characters.top(self.policy.matching.max_matches) + characters.closest(1)
        work_ids += [w for w in named_by_model if w not in work_ids]
        candidates = self._score(by_signal, work_ids)
        characters_mod.add_evidence(characters, candidates)
        if characters.similarity:
            self._likeness(decoded, characters, candidates)
        if item.prompt:
            self._prompt_similarity(item.prompt, candidates)
        clock.lap("score")
        local = self._verify(decoded, candidates, [*voted, *item.include_works], features)
        clock.lap("verify")
        placements: aligned.Placed = {}
        if self.settings.placed_region and "sscd" in self.signals.available:
            placements = self._place(decoded, candidates, by_signal)
            clock.lap("score")  # evidence from the pixels, as the scoring of signals is
        if self.settings.aligned_agreement:
            self._align(decoded, candidates, local, placements)
            clock.lap("score")  # evidence from the pixels, as the scoring of signals is
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

    def _likeness(
        self, decoded: DecodedImage, scores: characters_mod.Scores, candidates: dict[str, Candidate]
    ) -> None:
        """The character candidates' colour likeness and its product with the prototype
        similarity (`characters.add_likeness`), its cohort the candidates and the works
        closest by prototype similarity, candidates or not."""
        works = [w for w in candidates if w in scores.similarity]
        works += [w for w in scores.closest(characters_mod.COLOUR_COHORT) if w not in works]
        references = self.colours.of_works(self.catalog, works)
        characters_mod.add_likeness(
            scores, candidates, characters_mod.colours_of(decoded), references
        )

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
        leading = self._leading(candidates, top)
        chosen = leading + [
            w for w in dict.fromkeys(include) if w in candidates and w not in leading
        ]
        found = self.local.verify_against(decoded, chosen, self.catalog, features)
        for work_id, match in found.items():
            region = WHOLE if match.variant == PLAIN else background_variant(WHOLE, match.variant)
            if match.inliers:
                candidates[work_id].best[LOCAL_SIGNAL] = Best(
                    float(match.inliers), RegionPair(WHOLE, match.reference_id, region)
                )
            if match.part_reference_id is not None:
                candidates[work_id].best[PART_SIGNAL] = Best(
                    float(match.part_inliers), RegionPair(WHOLE, match.part_reference_id, WHOLE)
                )
        if self.settings.located_region and "sscd" in self.signals.available:
            self._locate(decoded, found, candidates)
        return found

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
        closest = (match.character or {}).get("closest") or []
        if local is not None:
            reference_id = local.reference_id
        elif closest and closest[0]["reference_id"] in references:
            # A character match with no verified keypoints: the reference the semantic
            # signal found closest, beside the query.
            reference_id = closest[0]["reference_id"]
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
            region if local is None and region and region.reference_id == reference_id else None,
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


def _on_checkerboard(decoded: DecodedImage) -> Image.Image:
    if not decoded.is_transparent or decoded.alpha is None:
        return decoded.image
    return explain_mod.over_checkerboard(decoded.image, decoded.alpha)
