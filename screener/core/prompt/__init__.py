"""Prompt screening: a work's names and related terms found in a prompt, however it is
spelled (see ``fold``: invisible characters, look-alike letters, separators, leetspeak,
Traditional Chinese; ``romanise``: pinyin and romaji; ``index``: the automaton and fuzzy
matching; ``result``: scores and the decision; ``live``: kept in step with the catalog).

Used before generation (``screener prompt``, ``POST /v1/prompt``) and as the prompt signal
inside image checks, with the same evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from screener.core.policy import PromptPolicy
from screener.core.prompt.fold import fold, normalise
from screener.core.prompt.index import Hit, TermIndex, WorkTerms
from screener.core.prompt.result import PromptDecision, PromptResult, TermMatch, WorkMatch, evaluate

__all__ = [
    "Hit",
    "PromptDecision",
    "PromptResult",
    "TermIndex",
    "TermMatch",
    "WorkMatch",
    "WorkTerms",
    "evaluate",
    "fold",
    "keyword_matches",
    "normalise",
]


def keyword_matches(prompt: str, keywords: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """For each work whose title or alias the prompt names (in any way the matcher
    folds), the registered names found. Builds an index for this call: for one-off use;
    checks keep one (:class:`screener.store.prompt_terms.PromptScreen`)."""
    index = TermIndex()
    index.load(WorkTerms(w, w, "", tuple(words)) for w, words in keywords.items())
    policy = PromptPolicy()
    hits = index.scan(prompt, fuzzy=policy.fuzzy, homophone_han=policy.homophone_han)
    found: dict[str, list[str]] = {}
    for hit in hits:
        terms = found.setdefault(hit.entry.work_id, [])
        if hit.entry.term not in terms:
            terms.append(hit.entry.term)
    return found
