"""Prompt screening by keywords: a work's title or alias named in the prompt. Pure.

This is the filter platforms already have; here it is one signal among several, never a
verdict on its own (the policy enforces that).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence


def normalise(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: full-width and case variants compare equal."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _pattern(keyword: str) -> re.Pattern[str] | None:
    key = normalise(keyword)
    if len(key) < 2:
        return None  # one character matches too much to be evidence

    # Word boundaries only where the keyword starts or ends with a word character of a
    # spaced script; CJK text has no spaces, so a plain substring is the right test there.
    def edge(ch: str) -> str:
        return r"\b" if ch.isascii() and ch.isalnum() else ""

    return re.compile(edge(key[0]) + re.escape(key) + edge(key[-1]))


def keyword_matches(prompt: str, keywords: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """For each work whose title or alias appears in the prompt, the keywords found."""
    text = normalise(prompt)
    found: dict[str, list[str]] = {}
    for work_id, words in keywords.items():
        hits = [w for w in words if (p := _pattern(w)) is not None and p.search(text)]
        if hits:
            found[work_id] = hits
    return found
