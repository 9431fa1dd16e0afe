"""Romanisation: Chinese as pinyin, Japanese as romaji, Korean and other scripts as their
usual Latin transcription. Pure (the converters load once, on first use).

A registered Chinese name gets its pinyin without tones (``aoteman``), with tone numbers
(``ao4te4man4``; tone marks fold away with the accents), from the phrase-aware reading and
from each character's most common one; a Japanese name gets Hepburn, Kunrei and passport
romaji, and each also with long vowels shortened (``pikachuu`` → ``pikachu``). Spaces need
no variant: the fold removes them.

A prompt is romanised character by character (Han characters by their most common
reading, kana by pykakasi over each run, the rest by ``anyascii``), keeping for every
romanised letter the original character it came from, and a token edge at every syllable,
so a romanised name matches only whole syllables.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

from screener.core.prompt.fold import Folded, fold, is_latin, key

_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_LONG = (("uu", "u"), ("ou", "o"), ("oo", "o"), ("aa", "a"), ("ee", "e"), ("ii", "i"))


def _is_han(char: str) -> bool:
    code = ord(char)
    return 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x3FFFF


def needs_romanising(text: str) -> bool:
    """Whether a text has letters of a script that is not Latin."""
    return any(not c.isascii() and c.isalpha() for c in text)


@cache
def _kakasi() -> Any:
    import pykakasi

    return pykakasi.kakasi()  # type: ignore[no-untyped-call]


@lru_cache(maxsize=65_536)
def _han_pinyin(char: str) -> str:
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(char, errors="ignore"))


@lru_cache(maxsize=65_536)
def _anyascii(char: str) -> str:
    from anyascii import anyascii

    return str(anyascii(char))


def _romaji(text: str) -> list[tuple[str, str]]:
    """(original segment, romaji) pairs, in Hepburn."""
    result = _kakasi().convert(text)
    return [(part["orig"], part["hepburn"]) for part in result]


def term_forms(term: str) -> set[str]:
    """Romanised spellings of a registered term (empty for a term in Latin script)."""
    if not needs_romanising(term):
        return set()
    forms: set[str] = set()
    if _KANA.search(term) or not any(_is_han(c) for c in term):
        result = _kakasi().convert(term)
        for style in ("hepburn", "kunrei", "passport"):
            forms.add("".join(part[style] for part in result))
    if any(_is_han(c) for c in term) and not _KANA.search(term):
        from pypinyin import Style, lazy_pinyin

        forms.add("".join(lazy_pinyin(term, errors="ignore")))
        forms.add("".join(lazy_pinyin(term, style=Style.TONE3, errors="ignore")))
        forms.add("".join(_han_pinyin(c) if _is_han(c) else c for c in term))
    forms.add("".join(_anyascii(c) for c in term))
    for form in list(forms):
        shortened = form
        for long, short in _LONG:
            shortened = shortened.replace(long, short)
        forms.add(shortened)
        forms.add(form.replace("v", "u"))  # pinyin ü written as v or u
    return {f for f in forms if f and not needs_romanising(f)}


def term_keys(term: str) -> set[str]:
    """The folded keys of a term's romanised spellings (not its own key)."""
    own = key(term)
    return {k for k in (key(f) for f in term_forms(term)) if k and k != own}


def romanise_prompt(text: str) -> tuple[Folded, tuple[int, ...]] | None:
    """The prompt's romanised fold, and for each of its positions the original index it
    came from; None when the prompt has nothing to romanise."""
    if not needs_romanising(text):
        return None
    pieces: list[tuple[int, str]] = []  # (original index, romanised piece)
    position: int = 0
    while position < len(text):
        char = text[position]
        if _KANA.match(char):
            end = position
            while end < len(text) and (_KANA.match(text[end]) or _is_han(text[end])):
                end += 1
            offset = position
            for segment, romaji in _romaji(text[position:end]):
                pieces.append((offset, romaji))
                offset += len(segment)
            position = end
            continue
        if _is_han(char):
            pieces.append((position, _han_pinyin(char)))
        elif not char.isascii() and char.isalpha():
            pieces.append((position, _anyascii(char)))
        else:
            pieces.append((position, char))
        position += 1
    # Every romanised syllable is its own token: a space between pieces from other scripts.
    spaced: list[str] = []
    origins: list[int] = []
    for index, (at, piece) in enumerate(pieces):
        source = text[at]
        separate = not (source.isascii() and is_latin(source.casefold()))
        if separate and index:
            spaced.append(" ")
            origins.append(at)
        for letter in piece:
            spaced.append(letter)
            origins.append(at)
        if separate:
            spaced.append(" ")
            origins.append(at)
    joined = "".join(spaced)
    folded = fold(joined)
    return folded, tuple(origins[i] for i in folded.origin)
