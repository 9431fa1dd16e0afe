"""Prompt screening: each fold step, romanisation, word edges, fuzzy bounds, the
related-terms rule, and the automaton kept in step with a real SQLite catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from screener.core import policy as policy_mod
from screener.core.errors import PolicyError
from screener.core.policy import PromptPolicy
from screener.core.prompt import TermIndex, WorkTerms, fold, normalise
from screener.core.prompt.fold import key
from screener.core.prompt.romanise import term_keys
from screener.store.catalog import Catalog
from screener.store.prompt_terms import PromptScreen, match

POLICY = PromptPolicy()
WORKS = (
    WorkTerms(
        "ultraman",
        "Ultraman",
        "tsuburaya",
        ("Ultraman", "奥特曼", "ウルトラマン"),
        ("光之巨人", "M78星云", "color timer"),
    ),
    WorkTerms("pikachu", "Pikachu", "poke", ("Pikachu", "皮卡丘", "ピカチュウ")),
    WorkTerms("medusa", "Medusa Queen", "gorgon", ("Medusa Queen", "彩鳞")),
    WorkTerms("simba", "Simba", "pride", ("Simba",)),
)


@pytest.fixture(scope="module")
def index() -> TermIndex:
    built = TermIndex()
    built.load(WORKS)
    return built


def found(index: TermIndex, prompt: str) -> dict[str, list[tuple[str, str]]]:
    result = match(index, prompt, POLICY)
    return {m.work_id: [(t.term, t.how) for t in m.terms] for m in result.matches}


# each fold step ---------------------------------------------------------------------------


def test_width_and_case_fold() -> None:
    assert key("ＵＬＴＲＡＭＡＮ") == key("ultraman")


def test_format_and_zero_width_characters_are_removed() -> None:
    assert key("Ult\u200bra\u200dm\u2060an\ufeff") == key("Ultraman")
    assert key("Ultra\u00adman") == key("Ultraman")


def test_confusable_letters_fold_to_latin() -> None:
    assert key("Ultrаmаn") == key("Ultraman")  # Cyrillic а
    assert key("РІКАСНU") == key("pikachu")  # Cyrillic capitals
    assert key("ΡΙΚΑ") == key("pika")  # Greek capitals


def test_separators_are_removed_but_mark_token_edges() -> None:
    folded = fold("U l t-r_a*m·a n")
    assert folded.text == key("ultraman")
    assert folded.separated(0, len(folded.text))
    assert key("奥*特 曼") == "奥特曼"
    assert normalise("ultra   man") == "ultra man"


def test_leetspeak_folds_to_one_skeleton() -> None:
    assert key("U1tr4m4n") == key("Ultraman")
    assert key("P!k@chu") != key("Pikachu")  # "!" separates unless read as a letter
    assert fold("P!k@chu", symbols_as_letters=True).text == key("Pikachu")
    assert key("$1mb4") == key("Simba")


def test_traditional_chinese_and_hiragana_fold() -> None:
    assert key("奧特曼") == key("奥特曼")
    assert key("彩鱗") == key("彩鳞")
    assert key("ぴかちゅう") == key("ピカチュウ")


def test_accents_and_tone_marks_fold_away() -> None:
    assert key("Àotèmàn") == key("aoteman")


def test_romanised_keys_of_chinese_and_japanese_names() -> None:
    assert key("aoteman") in term_keys("奥特曼")
    assert key("ao4te4man4") in term_keys("奥特曼")
    assert key("pikaqiu") in term_keys("皮卡丘")
    assert key("urutoraman") in term_keys("ウルトラマン")
    assert key("pikachu") in term_keys("ピカチュウ")  # long vowel shortened
    assert term_keys("Ultraman") == set()


# matching -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "how"),
    [
        ("An ULTRAMAN fighting", "exact"),
        ("奧特曼在城市里", "exact"),
        ("U l t r a m a n", "separator"),
        ("奥*特*曼 wallpaper", "separator"),
        ("Ult\u200bramаn", "homoglyph"),
        ("U1tr4m4n hero", "homoglyph"),
        ("aoteman", "romanised"),
        ("Ao Te Man poster", "romanised"),
        ("澳特曼", "romanised"),  # homophone characters of a three-character name
        ("Ultramn in a city", "fuzzy"),
    ],
)
def test_evasions_name_the_work(index: TermIndex, prompt: str, how: str) -> None:
    terms = found(index, prompt)["ultraman"]
    assert how in {h for _, h in terms}


@pytest.mark.parametrize(
    "prompt",
    [
        "ultramarine sky",
        "ultramanlike hero",
        "an ultra manual",
        "奥特莱斯购物中心",
        "Medusa jellyfish",
        "samba dancers",  # one edit from a five-letter name: too short for fuzzy
        "彩林 forest",  # same pinyin as a two-character name: homophones only from three
        "a pika on a rock",
    ],
)
def test_look_alikes_do_not_match(index: TermIndex, prompt: str) -> None:
    assert found(index, prompt) == {}


def test_one_related_term_alone_never_matches(index: TermIndex) -> None:
    result = match(index, "a color timer on the kitchen wall", POLICY)
    assert result.matches == ()
    assert result.decision.value == "allow"
    assert result.evidence() == {"ultraman": POLICY.related_weight}  # for image checks
    again = match(index, "color timer, colour timer, COLOR-TIMER", POLICY)
    assert again.matches == ()  # one term however often: still one


def test_two_distinct_related_terms_match(index: TermIndex) -> None:
    result = match(index, "光之巨人 from M78星云", POLICY)
    assert [m.work_id for m in result.matches] == ["ultraman"]
    assert {t.how for t in result.matches[0].terms} == {"related"}
    assert result.matches[0].score == pytest.approx(2 * POLICY.related_weight)
    assert result.decision.value == "warn"
    assert result.risk_prompt is not None and "Ultraman" in result.risk_prompt["en"]


def test_names_refuse_and_licensed_works_do_not(index: TermIndex) -> None:
    refused = match(index, "pikaqiu", POLICY)
    assert refused.decision.value == "refuse"
    assert refused.risk_prompt is not None and "Pikachu" in refused.risk_prompt["zh"]
    licensed = match(index, "pikaqiu", POLICY, licensed={"pikachu"})
    assert licensed.decision.value == "allow" and licensed.matches[0].licensed


def test_prompt_policy_keeps_related_terms_weak() -> None:
    document = policy_mod.load().to_dict()
    document["prompt"]["related_min_terms"] = 1
    with pytest.raises(PolicyError, match="related_min_terms"):
        policy_mod.parse(document)
    document["prompt"]["related_min_terms"] = 2
    document["prompt"]["weights"]["nearby"] = 1.0
    with pytest.raises(PolicyError, match="unknown prompt match"):
        policy_mod.parse(document)


# the automaton and the catalog --------------------------------------------------------------


def test_automaton_follows_adds_edits_and_removals(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = Catalog(url)
    other = Catalog(url)  # another process's view of the same database
    try:
        screen = PromptScreen(catalog)
        catalog.register("a", title="Zanthorix", owner="o", aliases=["赞索里克斯"], references=())
        assert [m.work_id for m in screen.check("zanthorix", POLICY).matches] == ["a"]
        builds = screen.index.builds

        other.register(
            "b",
            title="Quorra Vel",
            owner="o",
            aliases=[],
            related_terms=["red", "x"],
            references=(),
        )
        assert [m.work_id for m in screen.check("quorra vel", POLICY).matches] == ["b"]
        other.update_work("b", aliases=["Velquor"], related_terms=["ember crown", "ash wings"])
        assert screen.check("velquor", POLICY).matches
        assert screen.check("ember crown and ash wings", POLICY).matches
        assert not screen.check("red x", POLICY).matches  # the old related terms are gone
        other.remove_work("a")
        assert not screen.check("zanthorix", POLICY).matches
        assert screen.index.builds == builds  # followed the log; no full rebuild
        assert screen.mark == catalog.term_high_water()
    finally:
        other.close()
        catalog.close()


def test_a_catalog_made_before_related_terms_opens_and_matches(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    catalog = Catalog(url)
    catalog.register("old", title="Quillton", owner="o", aliases=["奎尔顿"], references=())
    with catalog.engine.begin() as connection:  # as the schema was before them
        connection.execute(text("DROP TABLE related_terms"))
        connection.execute(text("DROP TABLE term_log"))
    catalog.close()
    reopened = Catalog(url)
    try:
        assert reopened.get_work("old").related_terms == ()
        screen = PromptScreen(reopened)
        assert [m.work_id for m in screen.check("Qui11ton", POLICY).matches] == ["old"]
        reopened.update_work("old", related_terms=["copper monocle", "porcupine knight"])
        assert screen.check("a porcupine knight with a copper monocle", POLICY).matches
    finally:
        reopened.close()
