from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from screener.core.prompt import keyword_matches, normalise

KEYWORDS = {"ultraman": ("Ultraman", "奥特曼"), "medusa": ("Medusa", "美杜莎"), "x": ("X",)}


def test_latin_keywords_match_whole_words_case_insensitively() -> None:
    assert keyword_matches("An ULTRAMAN fighting a monster", KEYWORDS) == {"ultraman": ["Ultraman"]}
    assert keyword_matches("ultramanlike hero", KEYWORDS) == {}


def test_cjk_keywords_match_inside_text() -> None:
    assert keyword_matches("画一个奥特曼在城市里", KEYWORDS) == {"ultraman": ["奥特曼"]}
    assert keyword_matches("美杜莎的头像", KEYWORDS) == {"medusa": ["美杜莎"]}


def test_full_width_forms_are_folded() -> None:
    assert keyword_matches("ＵＬＴＲＡＭＡＮ", KEYWORDS) == {"ultraman": ["Ultraman"]}


def test_single_characters_are_not_evidence() -> None:
    assert keyword_matches("x marks the spot", KEYWORDS) == {}


@settings(deadline=None)  # the first call loads the converters
@given(st.text())
def test_arbitrary_prompts_never_fail(prompt: str) -> None:
    found = keyword_matches(prompt, KEYWORDS)
    assert set(found) <= set(KEYWORDS)
    assert normalise(normalise(prompt)) == normalise(prompt)
