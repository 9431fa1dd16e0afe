"""From a prompt's hits to each work's prompt score and the prompt's decision. Pure.

A name (title or alias) found in any way is strong evidence; a related term is weak: it
counts only with enough other related terms of the same work (``related_min_terms`` in
the policy), or, inside an image check, beside image evidence for that work (then as the
work's *partial* score, which the check's fusion weighs like any prompt evidence).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from screener.core.policy import PromptPolicy
from screener.core.prompt.index import NAME, Hit
from screener.core.risk import holder_name, prompt_risk

HOW_ORDER = ("exact", "homoglyph", "separator", "romanised", "fuzzy", "related")


class PromptDecision(StrEnum):
    ALLOW = "allow"
    WARN = "warn"
    REFUSE = "refuse"


@dataclass(frozen=True)
class TermMatch:
    term: str  # as registered
    matched_as: str  # as written in the prompt
    how: str  # one of HOW_ORDER

    def to_dict(self) -> dict[str, str]:
        return {"term": self.term, "matched_as": self.matched_as, "how": self.how}


@dataclass(frozen=True)
class WorkMatch:
    work_id: str
    title: str
    owner: str
    score: float
    terms: tuple[TermMatch, ...]
    licensed: bool = False  # the caller may publish this work: reported, never refused

    def to_dict(self) -> dict[str, Any]:
        return {
            "work_id": self.work_id,
            "title": self.title,
            "owner": self.owner,
            "score": self.score,
            "licensed": self.licensed,
            "terms": [t.to_dict() for t in self.terms],
        }


@dataclass(frozen=True)
class PromptResult:
    prompt: str
    decision: PromptDecision
    score: float  # the highest score of a work the caller is not licensed for
    matches: tuple[WorkMatch, ...]  # works the prompt names, highest score first
    # Works with some related-term evidence short of a match: image evidence may add to it.
    partial: Mapping[str, float] = field(default_factory=dict)
    # Owners' display names for the risk prompt (the account name where none is set).
    owner_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def top(self) -> WorkMatch | None:
        flagged = [m for m in self.matches if not m.licensed]
        return flagged[0] if flagged else None

    @property
    def risk_prompt(self) -> dict[str, str] | None:
        """What to tell the user (zh, en) for warn and refuse; None for allow."""
        top = self.top
        if top is None:
            return None
        return prompt_risk(self.decision.value, top.title, holder_name(top.owner, self.owner_names))

    def evidence(self) -> dict[str, float]:
        """Each work's prompt evidence in [0, 1], for the prompt signal of a check."""
        return {**self.partial, **{m.work_id: m.score for m in self.matches}}

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "decision": self.decision.value,
            "score": self.score,
            "matches": [m.to_dict() for m in self.matches],
            "risk_prompt": self.risk_prompt,
        }


def evaluate(
    prompt: str,
    hits: Iterable[Hit],
    policy: PromptPolicy,
    works: Mapping[str, tuple[str, str]],
    licensed: Collection[str] = (),
) -> PromptResult:
    """Score each work from its hits (``works``: id to title and owner) and decide."""
    by_work: dict[str, list[Hit]] = {}
    for hit in hits:
        by_work.setdefault(hit.entry.work_id, []).append(hit)
    matches: list[WorkMatch] = []
    partial: dict[str, float] = {}
    for work_id, found in by_work.items():
        names = [h for h in found if h.entry.kind == NAME]
        related = {h.entry.term for h in found if h.entry.kind != NAME}
        name_score = max((policy.weights.get(h.how, 0.0) for h in names), default=0.0)
        related_score = min(1.0, policy.related_weight * len(related))
        score = max(name_score, related_score if len(related) >= policy.related_min_terms else 0)
        if score <= 0:
            if related_score > 0:
                partial[work_id] = round(related_score, 6)
            continue
        title, owner = works.get(work_id, (work_id, ""))
        matches.append(
            WorkMatch(
                work_id,
                title,
                owner,
                round(min(1.0, score), 6),
                _terms(found),
                licensed=work_id in licensed,
            )
        )
    matches.sort(key=lambda m: (-m.score, m.work_id))
    top = max((m.score for m in matches if not m.licensed), default=0.0)
    return PromptResult(prompt, decide(top, policy), top, tuple(matches), partial)


def decide(score: float, policy: PromptPolicy) -> PromptDecision:
    if score >= policy.refuse:
        return PromptDecision.REFUSE
    if score >= policy.warn:
        return PromptDecision.WARN
    return PromptDecision.ALLOW


def _terms(hits: list[Hit]) -> tuple[TermMatch, ...]:
    """One line per registered term: the most direct way it was found."""
    best: dict[str, TermMatch] = {}
    for hit in hits:
        how = hit.how if hit.entry.kind == NAME else "related"
        candidate = TermMatch(hit.entry.term, hit.matched_as, how)
        current = best.get(hit.entry.term)
        if current is None or HOW_ORDER.index(how) < HOW_ORDER.index(current.how):
            best[hit.entry.term] = candidate
    return tuple(sorted(best.values(), key=lambda t: (HOW_ORDER.index(t.how), t.term)))
