"""Scoring stages of a check: exact scores against the shortlisted works, their generic
(background bank) and cohort levels with the cache that keeps them, the prompt's CLIP
similarity, and the fused, decided matches and verdict."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from screener.core import fusion
from screener.core.decode import DecodedImage
from screener.core.policy import Bands, Decision
from screener.core.territory import covers, grants
from screener.core.verdict import Match, RegionPair, Verdict
from screener.matching import cohorts as cohorts_mod
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
#: A new work's value is merged into the cohort rows of the works closest to it, at most
#: this many per evidence name: a work far from the new one (as the new one sees it) does
#: not have it among its closest, and merging into every work found would make a
#: registration's cost grow with the registry (measured: 0.32 CPU s per work at 60 works,
#: 0.99 at 1,000).
COHORT_MERGE = 16
#: The other works scored exactly for a work's cohort row: those nearest it in the indexes'
#: neighbour lists, at most this many (every work found made a registration cost more as
#: the registry grew: 0.65 CPU s per work between 200 and 400 works, half of it here).
COHORT_SCORED = 48
LEVELS_CACHE = 65_536  # (signal, work) generic levels kept; a few hundred bytes each

_SEVERITY = {Decision.ALLOW: 0, Decision.REVIEW: 1, Decision.BLOCK: 2}


class Scoring(ScreenerBase):
    """Scores, levels, matches and the verdict of a check."""

    # How many works' cohort levels were computed afresh (searched and scored) by this
    # screener: a check whose candidates' rows are current computes none.
    cohort_computed = 0

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
        """Each work's cohort level by evidence name (see `_cohort_entries`), read from its
        stored row (`screener.matching.cohorts`): one row per candidate, whatever the size
        of the registry. A row that is missing or stale (the work's references or the
        setting changed since it was computed) is computed afresh and stored."""
        k = self.policy.matching.cohort_k
        if k < 1 or not work_ids:
            return {}
        ids = list(dict.fromkeys(work_ids))
        setting = self._cohort_setting()
        rows = self.cohorts.rows(ids)
        refs = self.cohorts.references(ids)
        if all(_current(rows.get(w), setting, refs.get(w)) for w in ids):
            return {w: cohorts_mod.level(rows[w].entries, k) for w in ids}
        with self._lock:  # not beside a sync that merges a new work into these rows
            rows = self.cohorts.rows(ids)
            refs = self.cohorts.references(ids)
            fresh: list[cohorts_mod.Row] = []
            for work_id in ids:
                if not _current(rows.get(work_id), setting, refs.get(work_id)):
                    entries, _ = self._cohort_entries(work_id, k)
                    rows[work_id] = cohorts_mod.Row(
                        work_id, setting, refs.get(work_id, frozenset()), entries
                    )
                    if work_id in refs:  # one removed since proposed is not stored
                        fresh.append(rows[work_id])
            if fresh:
                self.cohorts.write(fresh)
        return {w: cohorts_mod.level(rows[w].entries, k) for w in ids}

    @property
    def cohorts(self) -> cohorts_mod.CohortStore:
        """The stored cohort levels (their tables made on first use)."""
        store: cohorts_mod.CohortStore | None = getattr(self, "_cohort_store", None)
        if store is None:
            store = self._cohort_store = cohorts_mod.CohortStore(self.catalog)
        return store

    def _cohort_setting(self) -> str:
        """What a stored cohort row was computed under, beyond its work's references: k,
        the neighbours searched, each signal's spec and quality floor."""
        matching = self.policy.matching
        parts = [f"k={matching.cohort_k}", f"n={matching.neighbours}"] + [
            f"{s}:{f.spec_id}:{matching.quality_floor(s)}"
            for s, f in sorted(self.signals.available.items())
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def _lower_closer_names(self) -> set[str]:
        return {
            name
            for s in self.signals.available
            if lower_is_closer(s)
            for name in (descriptor(s).evidence, descriptor(s).region_evidence)
        }

    def sync_cohorts(self) -> int:
        """Bring the stored cohort rows in step with the catalog's changes since their mark
        (see `screener.matching.cohorts`); returns how many rows were written. A new work's
        cost is bounded by its neighbours, not by the registry."""
        k = self.policy.matching.cohort_k
        with self._lock:
            store = self.cohorts
            mark, high = store.mark(), store.high_water()
            if mark is None or k < 1:
                # First use (rows are computed as checks need them), or none in use.
                if mark != high:
                    store.write([], mark=high)
                return 0
            if high == mark:
                return 0
            setting = self._cohort_setting()
            added, removed = store.changes_since(mark)
            grown = {owner[0] for owner in self.catalog.owners(added).values()}
            recompute, drop = set(grown), set[str]()
            if removed:
                recompute, drop = self._cohorts_lost(setting, recompute)
            refs = store.references(recompute)
            fresh: dict[str, cohorts_mod.Row] = {}
            found_by: dict[str, set[str]] = {}  # a neighbour -> the grown works that found it
            for work_id in sorted(recompute):
                if work_id not in refs:
                    drop.add(work_id)
                    continue
                entries, others = self._cohort_entries(work_id, k)
                fresh[work_id] = cohorts_mod.Row(work_id, setting, refs[work_id], entries)
                if work_id in grown:
                    for other in others:
                        found_by.setdefault(other, set()).add(work_id)
            stored = store.rows([w for w in found_by if w not in fresh])
            lower = self._lower_closer_names()
            for work_id, news in sorted(found_by.items()):
                row = fresh.get(work_id) or stored.get(work_id)
                if row is None or row.setting != setting:
                    continue  # computed when a check needs it
                entries = row.entries
                for new, values in self._scored_against(work_id, sorted(news)).items():
                    entries = cohorts_mod.merge(entries, new, values, k, lower)
                fresh[work_id] = cohorts_mod.Row(work_id, setting, row.refs, entries)
            store.write(list(fresh.values()), drop=drop, mark=high)
            return len(fresh)

    def _cohorts_lost(self, setting: str, grown: set[str]) -> tuple[set[str], set[str]]:
        """After a removal: the works to compute afresh (``grown``, those that lost
        references, and those whose rows name a removed work or one that lost references)
        and the rows of removed works to drop."""
        refs = self.cohorts.references()
        rows = self.cohorts.rows()
        gone = {w for w in rows if w not in refs}
        shrunk = {w for w, r in rows.items() if w in refs and not r.refs <= refs[w]}
        lost = gone | shrunk
        named = {
            w
            for w, r in rows.items()
            if w not in gone and r.setting == setting and r.names() & lost
        }
        return grown | shrunk | named, gone

    def _cohort_query(
        self, work_id: str
    ) -> tuple[dict[str, list[RegionFingerprint]], dict[str, int]]:
        """A work's stored fingerprints as a query (whole and regions, as composited over
        white, those past the quality floor), and how many of its own each index holds."""
        by_signal: dict[str, list[RegionFingerprint]] = {}
        own: dict[str, int] = {}
        for signal, fingerprinter in self.signals.available.items():
            binary = fingerprinter.kind == "binary"
            floor = self.policy.matching.quality_floor(signal)
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
        return {signal: fps for signal, fps in by_signal.items() if fps}, own

    def _scored_against(self, work_id: str, others: Sequence[str]) -> dict[str, dict[str, float]]:
        """``work_id``'s stored fingerprints, as a query, scored exactly against each of
        ``others``: by other work, its value per evidence name."""
        by_signal, _ = self._cohort_query(work_id)
        out: dict[str, dict[str, float]] = {other: {} for other in others if other != work_id}
        for _, name, values in self._exact_values(by_signal, list(out)):
            for other, value in values.items():
                out[other][name] = value
        return out

    def _exact_values(
        self, by_signal: dict[str, list[RegionFingerprint]], others: Sequence[str]
    ) -> Iterator[tuple[str, str, dict[str, float]]]:
        """Fingerprints (a work's, as a query) scored exactly against the stored ones of
        ``others``: per signal and evidence name, each other work's value."""
        for signal, fps in by_signal.items():
            fingerprinter = self.signals.available[signal]
            stored = self.catalog.fingerprints_of_works(others, signal, fingerprinter.spec_id)
            exact = score_exact(
                signal,
                fingerprinter.kind == "binary",
                fps,
                stored,
                self.policy.matching.quality_floor(signal),
            )
            for name, by_work in exact.items():
                yield signal, name, {w: b.value for w, b in by_work.items()}

    def _cohort_entries(self, work_id: str, k: int) -> tuple[cohorts_mod.Entries, list[str]]:
        """The ``k`` closest *other* registered works per evidence name, with their values,
        and the works nearest it (`COHORT_MERGE` per evidence name), whose rows its value
        may enter: the work's stored fingerprints (`_cohort_query`) are screened as a query
        would be, through the indexes and then exactly, against the `COHORT_SCORED` other
        works nearest it there. A work in a dense part of the registry (one icon theme, one
        game's portraits) gets a high level; evidence no other work gives, or that fewer
        than ``k`` give, sets none."""
        self.cohort_computed += 1
        by_signal, own = self._cohort_query(work_id)
        # Each fingerprint's nearest neighbours, past the work's own (which are nearest).
        lists: list[list[int]] = []  # each fingerprint's neighbours, nearest first
        with self._lock:
            for signal, fps in by_signal.items():
                binary = self.signals.available[signal].kind == "binary"
                _, matrix = query_matrix(signal, fps, binary)
                k_search = self.policy.matching.neighbours + own[signal]
                found = self.indexes.search(signal, matrix, k=k_search, radius=None)
                lists += [[int(i) for i in ids if int(i) >= 0] for ids in found.ids]
        owners = self.catalog.owners({i for ids in lists for i in ids})
        others = _nearest_works(lists, owners, work_id, COHORT_SCORED)
        if not others:
            return {}, []
        entries: cohorts_mod.Entries = {}
        near: set[str] = set()
        for signal, name, values in self._exact_values(by_signal, others):
            lower = lower_is_closer(signal)
            entries[name] = cohorts_mod.top_k(values, k, lower)
            near.update(w for _, w in cohorts_mod.top_k(values, max(k, COHORT_MERGE), lower))
        return entries, sorted(near)

    def _cohort_of(self, work_id: str, k: int) -> dict[str, float]:
        """A work's cohort levels computed afresh (see `_cohort_entries`)."""
        return cohorts_mod.level(self._cohort_entries(work_id, k)[0], k)

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
            bands, own = self._bands(work, territory)
            fused = fusion.fuse(values, self.policy)
            decision = fusion.decision(fused, values, self.policy, bands, floored=not own)
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

    def _bands(self, work: Work, territory: str | None = None) -> tuple[Bands, bool]:
        """The bands a check of ``work`` is decided by, and whether they are the work's own
        (an operator's thresholds or the policy's override: the review floor does not
        apply to them)."""
        base = self.policy.bands_for(work.id, territory)
        if work.thresholds and grants(work.threshold_territories, territory):
            # One band stored alone (before both were stored) beside a policy changed since
            # may cross the other: the block band wins, so a check never fails on it.
            block = work.thresholds.get("block", base.block)
            review = min(work.thresholds.get("review", base.review), block)
            return Bands(review=review, block=block), True
        return base, work.id in self.policy.work_overrides

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


def _current(row: cohorts_mod.Row | None, setting: str, refs: frozenset[int] | None) -> bool:
    """Whether a stored cohort row still holds for its work."""
    return row is not None and row.setting == setting and row.refs == (refs or frozenset())


def _nearest_works(
    lists: Sequence[Sequence[int]],
    owners: Mapping[int, tuple[str, int, str]],
    work_id: str,
    most: int,
) -> list[str]:
    """Up to ``most`` works other than ``work_id`` from neighbour lists (nearest first),
    taken rank by rank across the lists, so that every fingerprint's nearest count first."""
    picked: dict[str, None] = {}
    for rank in range(max((len(ids) for ids in lists), default=0)):
        for ids in lists:
            if rank < len(ids) and ids[rank] in owners:
                owner = owners[ids[rank]][0]
                if owner != work_id:
                    picked.setdefault(owner, None)
                    if len(picked) >= most:
                        return sorted(picked)
    return sorted(picked)
