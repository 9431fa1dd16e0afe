"""One Aho-Corasick automaton over every registered term in every folded and romanised
form, updated work by work. Pure (no catalog here; see ``screener.store.prompt_terms``).

A prompt is scanned once per form (its fold, and its romanisation when it has another
script), whatever the number of works. Updates do not rebuild the whole automaton: a
*base* automaton holds the terms as of its last build and a small *delta* automaton the
keys added since; a hit is looked up in the live term table, so keys of removed or edited
works stop matching at once. The delta is rebuilt on each change (it is small), the base
only when the delta has grown past a fraction of it.

Fuzzy matching (Latin-script keys only) never compares a prompt with every key: a key is
split into three pieces, and an edit of distance one (a transposition counting one) or
two (no transposition) leaves at least one piece in place, so a prompt window is compared
only with keys of a similar length that share a piece at the same place.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import ahocorasick
from rapidfuzz.distance import OSA

from screener.core.prompt.fold import AMBIGUOUS, Folded, basic, fold, key
from screener.core.prompt.romanise import romanise_prompt, term_keys

NAME = "name"
RELATED = "related"
NATIVE = "native"
ROMANISED = "romanised"
FUZZY_MIN_KEY = 4  # keys shorter than this are never fuzzy candidates
FUZZY_SHIFT = 2  # the most edits a fuzzy match may have (pieces may move this far)
FUZZY_TOKENS = 3  # a fuzzy window spans at most this many tokens ("azure phoenix warior")
ROMANISED_MIN = 4  # shorter romanisations ("ru", "ana") are ordinary syllables


@dataclass(frozen=True)
class WorkTerms:
    """What a work registers for prompt screening."""

    work_id: str
    title: str
    owner: str
    names: tuple[str, ...]  # the title and aliases
    related: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    work_id: str
    term: str
    kind: str  # NAME or RELATED
    form: str  # NATIVE or ROMANISED
    basic: str  # the term's light fold, to tell an exact match from a folded one
    han: int  # Han characters in the term (homophones of short Chinese names are common)


@dataclass(frozen=True)
class Hit:
    """One occurrence of a registered term in a prompt."""

    entry: Entry
    matched_as: str  # the prompt's own text
    how: str  # exact, homoglyph, separator, romanised or fuzzy
    distance: int = 0


def _han_count(text: str) -> int:
    return sum(1 for c in text if 0x3400 <= ord(c) <= 0x9FFF or 0xF900 <= ord(c) <= 0xFAFF)


def _pieces(length: int) -> tuple[int, int]:
    return length // 3, 2 * length // 3


class TermIndex:
    """The automaton and the fuzzy buckets over all works' terms. Thread-safe."""

    def __init__(self, rebuild_fraction: float = 0.125, min_delta: int = 512) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, list[Entry]] = {}
        self._keys_of: dict[str, set[str]] = {}
        self._titles: dict[str, tuple[str, str]] = {}
        self._buckets: dict[tuple[int, int, str], set[str]] = {}
        self._base = ahocorasick.Automaton()
        self._base_size = 0
        self._delta = ahocorasick.Automaton()
        self._delta_keys: set[str] = set()
        self._stale = 0  # keys in the base that no longer exist
        self._rebuild_fraction = rebuild_fraction
        self._min_delta = min_delta
        self.builds = 0  # how many times the base was built (for tests and the benchmark)

    # updating ---------------------------------------------------------------------------

    def load(self, works: Iterable[WorkTerms]) -> None:
        """Replace everything with these works and build the base once."""
        with self._lock:
            self._entries.clear()
            self._keys_of.clear()
            self._titles.clear()
            self._buckets.clear()
            for work in works:
                self._add(work)
            self._build_base()

    def update(self, works: Iterable[WorkTerms], removed: Iterable[str] = ()) -> None:
        """Replace the terms of ``works`` and drop the works in ``removed``."""
        with self._lock:
            for work_id in removed:
                self._remove(work_id)
            for work in works:
                self._remove(work.work_id)
                self._add(work)
            if len(self._delta_keys) + self._stale > max(
                self._min_delta, self._rebuild_fraction * self._base_size
            ):
                self._build_base()
            else:
                self._delta = _automaton(self._delta_keys)

    def _add(self, work: WorkTerms) -> None:
        keys: set[str] = set()
        self._titles[work.work_id] = (work.title, work.owner)
        terms = [(t, NAME) for t in work.names] + [(t, RELATED) for t in work.related]
        for term, kind in dict.fromkeys(terms):
            own = key(term)
            common = {"work_id": work.work_id, "term": term, "kind": kind}
            found = [(own, NATIVE)] + [(k, ROMANISED) for k in sorted(term_keys(term))]
            for k, form in found:
                if len(k) < (ROMANISED_MIN if form == ROMANISED else 2):
                    continue  # one character (or syllable) matches too much to be evidence
                entry = Entry(**common, form=form, basic=basic(term), han=_han_count(term))
                self._entries.setdefault(k, []).append(entry)
                keys.add(k)
        for k in keys:
            if k not in self._base:
                self._delta_keys.add(k)
            if k.isascii() and len(k) >= FUZZY_MIN_KEY:
                a, b = _pieces(len(k))
                for i, piece in enumerate((k[:a], k[a:b], k[b:])):
                    self._buckets.setdefault((i, len(k), piece), set()).add(k)
        self._keys_of[work.work_id] = keys

    def _remove(self, work_id: str) -> None:
        self._titles.pop(work_id, None)
        for k in self._keys_of.pop(work_id, set()):
            left = [e for e in self._entries.get(k, []) if e.work_id != work_id]
            if left:
                self._entries[k] = left
                continue
            self._entries.pop(k, None)
            if k in self._base:
                self._stale += 1
            self._delta_keys.discard(k)
            if k.isascii() and len(k) >= FUZZY_MIN_KEY:
                a, b = _pieces(len(k))
                for i, piece in enumerate((k[:a], k[a:b], k[b:])):
                    bucket = self._buckets.get((i, len(k), piece))
                    if bucket is not None:
                        bucket.discard(k)
                        if not bucket:
                            del self._buckets[(i, len(k), piece)]

    def _build_base(self) -> None:
        self._base = _automaton(self._entries)
        self._base_size = len(self._entries)
        self._delta = ahocorasick.Automaton()
        self._delta_keys = set()
        self._stale = 0
        self.builds += 1

    # reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._entries)

    def works(self) -> int:
        return len(self._keys_of)

    def described(self, work_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """The title and owner of each of these works that is registered."""
        with self._lock:
            return {w: self._titles[w] for w in work_ids if w in self._titles}

    def scan(
        self, prompt: str, *, fuzzy: tuple[tuple[int, int], ...] = (), homophone_han: int = 3
    ) -> list[Hit]:
        """Every registered term found in the prompt: in its fold, in its romanisation
        (romanised keys only, of Chinese terms with at least ``homophone_han`` characters
        when the prompt's own characters are Chinese) and, for Latin keys at least
        ``fuzzy[i][0]`` long, within ``fuzzy[i][1]`` edits."""
        folded = fold(prompt)
        variants = [folded]
        if any(c in AMBIGUOUS for c in prompt):
            variants.append(fold(prompt, symbols_as_letters=True))
        with self._lock:
            hits = [hit for variant in variants for hit in self._exact(variant)]
            romanised = romanise_prompt(prompt)
            if romanised is not None:
                hits += self._romanised(prompt, romanised, homophone_han)
            if fuzzy:
                for variant in variants:
                    hits += self._fuzzy(variant, fuzzy)
        return hits

    def _found(self, text: str) -> Iterator[tuple[int, int, str]]:
        for automaton in (self._base, self._delta):
            if len(automaton):
                for last, k in automaton.iter(text):
                    yield last + 1 - len(k), last + 1, k

    def _exact(self, folded: Folded) -> Iterator[Hit]:
        seen: set[tuple[int, int, str]] = set()
        for start, end, k in self._found(folded.text):
            entries = self._entries.get(k)
            if not entries or (start, end, k) in seen or not folded.bounded(start, end):
                continue
            seen.add((start, end, k))
            matched = folded.span(start, end)
            for entry in entries:
                yield Hit(entry, matched, _how(entry, matched, folded, start, end))

    def _romanised(
        self, source: str, romanised: tuple[Folded, tuple[int, ...]], han_min: int
    ) -> list[Hit]:
        folded, origins = romanised
        hits = []
        for start, end, k in self._found(folded.text):
            entries = self._entries.get(k)
            if not entries or not folded.bounded(start, end):
                continue
            first, last = origins[start], origins[end - 1]
            from_han = any(0x3400 <= ord(c) <= 0x9FFF for c in source[first : last + 1])
            for entry in entries:
                if entry.form != ROMANISED or (from_han and entry.han < han_min):
                    continue
                hits.append(Hit(entry, source[first : last + 1], ROMANISED))
        return hits

    def _fuzzy(self, folded: Folded, bounds: tuple[tuple[int, int], ...]) -> list[Hit]:
        text = folded.text
        tokens = sorted(folded.starts)
        ends = sorted(folded.ends)
        spans = list(zip(tokens, ends, strict=False))
        hits = []
        for i in range(len(spans)):
            for j in range(i, min(i + FUZZY_TOKENS, len(spans))):
                start, end = spans[i][0], spans[j][1] + 1
                if j > i and spans[j][0] != spans[j - 1][1] + 1:
                    break  # another script between the tokens
                window = text[start:end]
                if window in self._entries:
                    continue
                for k, distance in self._near(window, bounds):
                    for entry in self._entries.get(k, ()):
                        if entry.kind == NAME or distance <= 1:
                            hits.append(Hit(entry, folded.span(start, end), "fuzzy", distance))
        return hits

    def _near(self, window: str, bounds: tuple[tuple[int, int], ...]) -> Iterator[tuple[str, int]]:
        m = len(window)
        seen: set[str] = set()
        for length in range(max(FUZZY_MIN_KEY, m - FUZZY_SHIFT), m + FUZZY_SHIFT + 1):
            allowed = min(FUZZY_SHIFT, _allowed(length, bounds))
            if allowed == 0 or abs(length - m) > allowed:
                continue
            a, b = _pieces(length)
            probes = [(0, window[:a]), (2, window[m - (length - b) :])]
            probes += [
                (1, window[a + s : b + s])
                for s in range(-allowed, allowed + 1)
                if a + s >= 0 and b + s <= m
            ]
            for piece_no, piece in probes:
                for k in self._buckets.get((piece_no, length, piece), ()):
                    if k in seen:
                        continue
                    seen.add(k)
                    distance = OSA.distance(window, k, score_cutoff=allowed)
                    if 0 < distance <= allowed:
                        yield k, distance


def _allowed(length: int, bounds: tuple[tuple[int, int], ...]) -> int:
    """The most edits a key of this length may be off by (0: no fuzzy match)."""
    allowed = 0
    for min_length, distance in bounds:
        if length >= min_length:
            allowed = max(allowed, distance)
    return allowed


def _automaton(keys: Iterable[str]) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for k in keys:
        automaton.add_word(k, k)
    if len(automaton):
        automaton.make_automaton()
    return automaton


def _how(entry: Entry, matched: str, folded: Folded, start: int, end: int) -> str:
    if entry.form == ROMANISED:
        return ROMANISED
    if basic(matched) == entry.basic:
        return "exact"
    if folded.separated(start, end):
        return "separator"
    return "homoglyph"
