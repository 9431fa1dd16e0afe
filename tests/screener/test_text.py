"""The one definition of what user text may not hold, and every validator that uses it.

The desk, the appeals, the key store, the audit log and the labels once disagreed on what a
control character is; these tests state the definition and check that each of them refuses
(and accepts) the same characters.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from screener.core.errors import InputError, LabelError, is_plain_id
from screener.core.text import LINES, ONE_LINE, check_text, refused_character
from screener.duties import appeals, base
from screener.labels import label, visible
from screener.matching.pipeline import check_work_id
from screener.store import audit, keys

REFUSED = {
    "NUL": "\x00",
    "BEL": "\x07",
    "ESC": "\x1b",
    "unit separator": "\x1f",
    "DEL": "\x7f",
    "C1 PAD": "\x80",
    "C1 NEL": "\x85",
    "C1 CSI": "\x9b",
    "C1 APC": "\x9f",
    "lone high surrogate": "\ud800",
    "lone low surrogate": "\udfff",
    "LRE": "\u202a",
    "RLE": "\u202b",
    "PDF": "\u202c",
    "LRO": "\u202d",
    "RLO": "\u202e",
    "LRI": "\u2066",
    "RLI": "\u2067",
    "FSI": "\u2068",
    "PDI": "\u2069",
    "noncharacter FDD0": "\ufdd0",
    "noncharacter FDEF": "\ufdef",
    "noncharacter FFFE": "\ufffe",
    "noncharacter FFFF": "\uffff",
    "noncharacter 1FFFE": "\U0001fffe",
    "noncharacter 10FFFF": "\U0010ffff",
}

ALLOWED = {
    "latin": "Ultraman",
    "accents": "Méduse",
    "han": "奥特曼",
    "arabic": "مرحبا",
    "hebrew with RLM": "שלום\u200f",
    "LRM": "a\u200eb",
    "ALM": "a\u061cb",
    "ZWJ emoji sequence": "\U0001f468\u200d\U0001f469",
    "ZWNJ": "می\u200cخواهم",
    "no-break space": "a\u00a0b",
    "soft hyphen": "a\u00adb",
    "last before C1": "~",
    "first after C1": "\u00a1",
    "before noncharacters": "\ufdcf",
    "replacement character": "\ufffd",
    "astral": "\U0001d400",
}

LAYOUT = {"TAB": "\t", "LF": "\n", "CR": "\r"}


@pytest.mark.parametrize("ch", REFUSED.values(), ids=REFUSED.keys())
def test_refused_characters_are_refused_even_where_lines_are_allowed(ch: str) -> None:
    assert refused_character(f"a{ch}b", LINES) == ch
    with pytest.raises(InputError):
        check_text("note", f"a{ch}b", 100, allow=LINES)


@pytest.mark.parametrize("text", ALLOWED.values(), ids=ALLOWED.keys())
def test_allowed_text_passes_unchanged(text: str) -> None:
    assert refused_character(text) is None
    assert check_text("title", text, 100) == text
    assert is_plain_id(text)


@pytest.mark.parametrize("ch", LAYOUT.values(), ids=LAYOUT.keys())
def test_layout_characters_only_where_the_field_allows_them(ch: str) -> None:
    assert refused_character(f"a{ch}b", ONE_LINE) == ch
    assert refused_character(f"a{ch}b", LINES) is None
    assert refused_character(f"a{ch}b", "\n") == (None if ch == "\n" else ch)
    assert not is_plain_id(f"a{ch}b")


def test_only_layout_characters_can_be_allowed() -> None:
    with pytest.raises(ValueError, match="TAB, LF and CR"):
        refused_character("a", "\x00")


def test_check_text_refuses_non_strings_blanks_and_long_text_with_the_given_error() -> None:
    with pytest.raises(LabelError, match="must be a string"):
        check_text("provider", 3, 10, error=LabelError)
    with pytest.raises(InputError, match="must not be empty"):
        check_text("title", " \t", 10, allow=LINES)
    assert check_text("title", " ", 10, blank=True) == " "
    with pytest.raises(InputError, match="longer than 3"):
        check_text("title", "abcd", 3)


def test_the_message_names_the_character_but_never_echoes_it() -> None:
    with pytest.raises(InputError) as caught:
        check_text("title", "evil\u202eexe.png", 100)
    assert "U+202E" in str(caught.value)
    assert "\u202e" not in str(caught.value)
    with pytest.raises(InputError, match="not valid Unicode"):
        check_text("title", "\ud800", 100)


# every validator of user text, each as one call that raises or returns -----------------------


def _desk(value: str) -> object:
    return base._text("note", value)


def _appeals(value: str) -> object:
    return appeals._text("statement", value, 1000, required=True)


def _keys(value: str) -> object:
    return keys._text("owner", value, 200)


def _audit(value: str) -> object:
    return audit._check_text("subject", value, 200)


def _label(value: str) -> object:
    label._check_text("provider", value, 200, allow_empty=False)
    return value


def _visible(value: str) -> object:
    visible._check_visible_text(value)
    return value


VALIDATORS: dict[str, Callable[[str], object]] = {
    "desk": _desk,
    "appeals": _appeals,
    "keys": _keys,
    "audit": _audit,
    "label field": _label,
    "visible label": _visible,
    "work id": check_work_id,
}


@pytest.mark.parametrize("validate", VALIDATORS.values(), ids=VALIDATORS.keys())
@pytest.mark.parametrize("ch", REFUSED.values(), ids=REFUSED.keys())
def test_every_validator_refuses_the_same_characters(
    validate: Callable[[str], object], ch: str
) -> None:
    with pytest.raises(InputError):
        validate(f"a{ch}b")


@pytest.mark.parametrize("validate", VALIDATORS.values(), ids=VALIDATORS.keys())
@pytest.mark.parametrize("text", ALLOWED.values(), ids=ALLOWED.keys())
def test_every_validator_accepts_the_same_text(
    validate: Callable[[str], object], text: str
) -> None:
    validate(text)


# Which layout characters each field takes (a note has lines; a name, an id, a label has not).
LAYOUT_BY_FIELD = {
    "desk": LINES,
    "appeals": LINES,
    "keys": "\t\n",
    "audit": ONE_LINE,
    "label field": ONE_LINE,
    "visible label": "\n",
    "work id": ONE_LINE,
}


@pytest.mark.parametrize("field", VALIDATORS.keys())
@pytest.mark.parametrize("ch", LAYOUT.values(), ids=LAYOUT.keys())
def test_layout_characters_per_field(field: str, ch: str) -> None:
    validate = VALIDATORS[field]
    if ch in LAYOUT_BY_FIELD[field]:
        validate(f"a{ch}b")
    else:
        with pytest.raises(InputError):
            validate(f"a{ch}b")
