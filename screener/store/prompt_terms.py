"""The prompt automaton kept in step with the catalog.

On first use it loads every work's terms; afterwards each check reads the catalog's
term-log position (one indexed query) and, when other writers moved it, reloads only the
works named in the log since. So a work registered, edited or removed by any process is
matched, or no longer matched, by the next prompt check everywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Collection

from screener.core.policy import PromptPolicy
from screener.core.prompt.index import TermIndex, WorkTerms
from screener.core.prompt.result import PromptResult, evaluate
from screener.store.catalog import Catalog, PromptTerms


def _terms(found: PromptTerms) -> WorkTerms:
    return WorkTerms(found.work_id, found.title, found.owner, found.names, found.related)


class PromptScreen:
    """Prompt checks against the catalog's works. Thread-safe."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.index = TermIndex()
        self._mark: int | None = None
        self._lock = threading.Lock()

    @property
    def mark(self) -> int | None:
        """The term-log position the automaton reflects (None before the first load)."""
        return self._mark

    def refresh(self) -> int:
        """Catch up with the catalog; returns how many works were reloaded."""
        seen = self.catalog.term_high_water()
        if self._mark is not None and seen <= self._mark:
            return 0
        with self._lock:
            if self._mark is None:
                # Read the mark first: a change made while loading is replayed next time.
                mark = self.catalog.term_high_water()
                works = self.catalog.prompt_terms()
                self.index.load(_terms(w) for w in works)
                self._mark = mark
                return len(works)
            changed, mark = self.catalog.term_changes(self._mark)
            present = self.catalog.prompt_terms(changed)
            found = {w.work_id for w in present}
            self.index.update(
                (_terms(w) for w in present), removed=[w for w in changed if w not in found]
            )
            self._mark = mark
            return len(changed)

    def check(
        self, prompt: str, policy: PromptPolicy, licensed: Collection[str] = ()
    ) -> PromptResult:
        """Match one prompt against every registered work and decide under ``policy``."""
        self.refresh()
        return match(self.index, prompt, policy, licensed)


def match(
    index: TermIndex, prompt: str, policy: PromptPolicy, licensed: Collection[str] = ()
) -> PromptResult:
    """Match one prompt against an index (no catalog): the pure part of a check."""
    hits = index.scan(prompt, fuzzy=policy.fuzzy, homophone_han=policy.homophone_han)
    described = index.described({h.entry.work_id for h in hits})
    return evaluate(prompt, hits, policy, described, licensed)
