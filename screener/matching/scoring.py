"""Scoring stages of a check: exact scores against the shortlisted works, their generic
(background bank) and cohort levels with the cache that keeps them, the prompt's CLIP
similarity, and the fused, decided matches and verdict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from screener.core import fusion
from screener.core.decode import DecodedImage
from screener.core.policy import Bands, Decision
from screener.core.territory import covers, grants
from screener.core.verdict import Match, RegionPair, Verdict
from screener.matching.analysis import Clock
from screener.matching.candidates import (
    Best,
    Candidate,
    lower_is_closer,
    merge,
    query_matrix,
    score_exact,
)
from screener.matching.character_evidence import character_evidence
from screener.matching.signals import (
    RegionFingerprint,
    from_stored,
    is_background_variant,
    is_whole,
    stored_vector,
)
from screener.matching.startup import ScreenerBase
from screener.matching.verification import PART_SIGNAL, LocalMatch
from screener.matching.verification import SIGNAL as LOCAL_SIGNAL
from screener.models import descriptor
from screener.store.catalog import StoredFingerprint, Work

NORM_SIGNAL = "sscd_norm_cosine"
LEVELS_CACHE = 65_536  # (signal, work) generic levels kept; a few hundred bytes each

_SEVERITY = {Decision.ALLOW: 0, Decision.REVIEW: 1, Decision.BLOCK: 2}


class Scoring(ScreenerBase):
    """Scores, levels, matches and the verdict of a check."""

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
                values[PART_SIGNAL] = None
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
            decision = fusion.decision(fused, values, self.policy, bands)
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
                    character=character_evidence(
                        values,
                        {name: best.pair for name, best in candidate.best.items()},
                        local.get(work_id) if local else None,
                    ),
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
        clock: Clock,
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
