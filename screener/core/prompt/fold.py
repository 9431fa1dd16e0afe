"""Folding text the way users evade filters, so that registered names and prompts compare
equal. Pure (the tables are loaded once, on first use).

Both sides go through the same fold, one character at a time, so a registered term and a
prompt that differ only in what is folded give the same string:

1. NFKC and case folding (full-width forms, ligatures, case);
2. Unicode format characters (``Cf``: zero-width space and joiners, bidi marks, soft
   hyphen), variation selectors and combining marks on Latin letters are dropped;
3. confusable letters (Cyrillic ``а``, Greek ``ο``, mathematical alphanumerics) become the
   ASCII letter they imitate, from the Unicode confusables table that
   ``confusable-homoglyphs`` ships;
4. Traditional Chinese becomes Simplified (OpenCC ``t2s``) and hiragana becomes katakana;
5. leetspeak and look-alike ASCII fold to one skeleton letter (``0``→o, ``1``/``i``/``l``/
   ``|``/``!``→l, ``3``→e, ``4``/``@``→a, ``5``/``$``→s, ``7``/``+``→t, ``8``→b,
   ``9``→g): ``i`` and ``l`` share a letter because ``1`` stands for either;
6. everything that is neither a letter nor a digit (spaces, punctuation, symbols) is a
   separator: it is removed, but remembered as a boundary between tokens.

The result (:class:`Folded`) keeps, for every folded character, where it came from in the
original text, whether a separator was removed just before it, and where the tokens of
Latin letters start and end; matching needs all of these (see ``screener.core.prompt.index``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache

ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u180e\u034f\u00ad")
LEET = str.maketrans(
    {
        "0": "o",
        "1": "l",
        "i": "l",
        "|": "l",
        "!": "l",
        "3": "e",
        "4": "a",
        "@": "a",
        "5": "s",
        "$": "s",
        "7": "t",
        "+": "t",
        "8": "b",
        "9": "g",
    }
)
# Symbols that stand for letters inside words although they are not letters themselves;
# the ambiguous ones also separate ("奥|特|曼"), so a text with them is folded both ways.
_LEET_SYMBOLS = frozenset("@$")
AMBIGUOUS = frozenset("|!+")
DROP = ""  # a character that vanishes without leaving a boundary
SEPARATOR = " "  # a character that vanishes but separates tokens


@cache
def _confusables() -> dict[str, str]:
    """Non-ASCII characters that imitate one ASCII letter or digit, to that character."""
    from confusable_homoglyphs.confusables import confusables_data

    table: dict[str, str] = {}
    for char, entries in confusables_data.items():
        for entry in entries:
            target = unicodedata.normalize("NFKC", entry["c"]).casefold()
            if len(target) == 1 and target.isascii() and target.isalnum():
                for form in (char, char.casefold()):
                    if len(form) == 1 and not form.isascii() and not _is_cjk(form):
                        table.setdefault(form, target)
    return table


@cache
def _t2s() -> object:
    import opencc

    return opencc.OpenCC("t2s")


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x2E80 <= code <= 0x9FFF  # radicals, kana, CJK symbols, unified ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul syllables
        or 0xF900 <= code <= 0xFAFF
        or 0xFF66 <= code <= 0xFF9F  # half-width katakana
        or 0x20000 <= code <= 0x3FFFF
    )


def is_latin(char: str) -> bool:
    """A folded character of a spaced script (ASCII letter or digit)."""
    return char.isascii() and char.isalnum()


@lru_cache(maxsize=65_536)
def fold_char(char: str, symbols_as_letters: bool = False) -> str:
    """One character (already NFKC and case folded) folded: a string of letters, or
    :data:`DROP` or :data:`SEPARATOR`."""
    if char in AMBIGUOUS:
        return char.translate(LEET) if symbols_as_letters else SEPARATOR
    if char in ZERO_WIDTH or char in "\ufe0e\ufe0f":
        return DROP
    category = unicodedata.category(char)
    if category in ("Cf", "Mn", "Me") or 0xFE00 <= ord(char) <= 0xFE0F:
        return DROP
    if char in _LEET_SYMBOLS:
        return char.translate(LEET)
    if category[0] not in "LN":
        return SEPARATOR
    if not char.isascii():
        base = unicodedata.normalize("NFD", char)[0]
        if base.isascii() and base.isalnum():
            char = base.casefold()  # é -> e: accents (and pinyin tone marks) fold away
        else:
            char = _confusables().get(char, char)
    return _unify(char).translate(LEET)


def _unify(char: str) -> str:
    """Simplified for Traditional Chinese, katakana for hiragana; other characters as
    they are."""
    if not _is_cjk(char):
        return char
    converted = _t2s().convert(char)  # type: ignore[attr-defined]
    char = converted if len(converted) == 1 else char
    if 0x3041 <= ord(char) <= 0x3096:
        return chr(ord(char) + 0x60)
    return char


@dataclass(frozen=True)
class Folded:
    """A text folded for matching.

    ``text`` holds only letters and digits (separators removed). For each position i:
    ``origin[i]`` is the index in the original text it came from, ``gap[i]`` whether a
    separator was removed right before it, and ``starts``/``ends`` the positions where a
    token of Latin letters starts or ends (a match of a Latin name must begin at a start
    and finish at an end, so "ultramarine" never contains "ultraman").
    """

    original: str
    text: str
    origin: tuple[int, ...]
    gap: tuple[bool, ...]
    starts: frozenset[int]
    ends: frozenset[int]

    def span(self, start: int, end: int) -> str:
        """The original text that positions [start, end) came from."""
        return self.original[self.origin[start] : self.origin[end - 1] + 1]

    def separated(self, start: int, end: int) -> bool:
        """Whether a separator was removed inside [start, end)."""
        return any(self.gap[start + 1 : end])

    def bounded(self, start: int, end: int) -> bool:
        """Whether [start, end) begins and ends on token edges where it is Latin."""
        text = self.text
        if is_latin(text[start]) and start not in self.starts:
            return False
        return not (is_latin(text[end - 1]) and end - 1 not in self.ends)


def prepare(text: str) -> str:
    """NFKC and case folding (and NFKC again: case folding can undo it)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def fold(text: str, symbols_as_letters: bool = False) -> Folded:
    """The matching form of a text; see the module docstring. ``symbols_as_letters``:
    read ``|``, ``!`` and ``+`` as the letters they imitate rather than as separators."""
    chars: list[str] = []
    origin: list[int] = []
    gap: list[bool] = []
    pending_gap = False
    for position, raw in _positions(text):
        out = fold_char(raw, symbols_as_letters)
        if out == SEPARATOR:
            pending_gap = True
            continue
        for char in out:
            chars.append(char)
            origin.append(position)
            gap.append(pending_gap)
            pending_gap = False
    folded = "".join(chars)
    starts = set()
    ends = set()
    for i, char in enumerate(folded):
        if not is_latin(char):
            continue
        if i == 0 or gap[i] or not is_latin(folded[i - 1]):
            starts.add(i)
        if i + 1 == len(folded) or gap[i + 1] or not is_latin(folded[i + 1]):
            ends.add(i)
    return Folded(text, folded, tuple(origin), tuple(gap), frozenset(starts), frozenset(ends))


def _positions(text: str) -> list[tuple[int, str]]:
    """Each character of the prepared text with the index of the original character it
    came from (NFKC may turn one character into several, or several into one)."""
    prepared = prepare(text)
    if len(prepared) == len(text):
        return list(enumerate(prepared))
    found: list[tuple[int, str]] = []
    for position, char in enumerate(text):
        found += [(position, c) for c in prepare(char)]
    return found


def key(text: str) -> str:
    """The folded text without separators: what the automaton stores for a term."""
    return fold(text).text


def normalise(text: str) -> str:
    """A readable folded form: tokens separated by single spaces."""
    folded = fold(text)
    out: list[str] = []
    for i, char in enumerate(folded.text):
        if i and folded.gap[i]:
            out.append(" ")
        out.append(char)
    return "".join(out)


def basic(text: str) -> str:
    """The light fold that decides whether a match was ``exact``: NFKC, case, spacing,
    Traditional/Simplified Chinese and hiragana/katakana, but no look-alikes."""
    return "".join(_unify(c) for c in " ".join(prepare(text).split()))
