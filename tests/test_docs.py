"""The documentation's links resolve, and the README stays a front door.

Every relative link and image in the README, ``docs/``, ``benchmarks/README.md`` and the
results folders' READMEs must name a file or folder of the repository; a link to
``file.md#anchor`` (or ``#anchor`` in the same file) must name a heading of that file, as
GitHub turns headings into anchors. Links inside code (fenced blocks and inline code) are
text, not links, and are left alone; so are links with a scheme (``https:``, ``mailto:``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
README_LIMIT = 12_288  # bytes: issue 19 asks for about 10 KB, at most 12 KB

_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](target); text may hold one level of brackets.
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # [text] or ![alt]
    r"\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)"  # (target "title")
)
# [label]: target
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Broken:
    """A link whose target does not exist."""

    source: str
    line: int
    target: str
    why: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.target} ({self.why})"


def documents(repo: Path) -> list[Path]:
    """The Markdown files whose links are checked."""
    found = [repo / "README.md", repo / "benchmarks" / "README.md"]
    found += sorted((repo / "docs").rglob("*.md"))
    found += sorted((repo / "benchmarks" / "results").rglob("README.md"))
    return [p for p in found if p.is_file()]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """Numbered lines outside fenced code blocks, with inline code blanked out."""
    out = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1) == fence:
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        out.append((number, _INLINE_CODE.sub(lambda m: " " * len(m.group(0)), line)))
    return out


def links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every inline link, image and reference definition."""
    found = []
    for number, line in prose_lines(text):
        for match in _INLINE_LINK.finditer(line):
            found.append((number, match.group(1).strip("<>")))
        reference = _REFERENCE.match(line)
        if reference:
            found.append((number, reference.group(1).strip("<>")))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, lower case, punctuation dropped
    (letters, digits, ``_`` and ``-`` stay), each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown file, repeated slugs numbered as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    raw = {n: line for n, line in enumerate(text.splitlines(), start=1)}
    for number, _ in prose_lines(text):
        heading = _HEADING.match(raw[number])
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def broken_links(document: Path, repo: Path) -> list[Broken]:
    """The links of ``document`` that do not resolve inside ``repo``."""
    text = document.read_text(encoding="utf-8")
    source = document.relative_to(repo).as_posix()
    out = []
    for line, target in links(text):
        if _SCHEME.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        resolved = (document.parent / unquote(path_part)).resolve() if path_part else document
        if not resolved.is_relative_to(repo):
            out.append(Broken(source, line, target, "outside the repository"))
            continue
        if not resolved.exists():
            out.append(Broken(source, line, target, "no such file or folder"))
            continue
        checkable = anchor and resolved.suffix == ".md" and resolved.is_file()
        if checkable and unquote(anchor) not in anchors(resolved.read_text(encoding="utf-8")):
            out.append(Broken(source, line, target, "no such heading"))
    return out


def test_every_relative_link_in_the_documentation_resolves() -> None:
    checked = documents(REPO)
    assert REPO / "README.md" in checked and len(checked) > 10  # the set is not empty
    broken = [str(b) for d in checked for b in broken_links(d, REPO)]
    assert broken == [], "\n".join(broken)


def test_the_readme_is_at_most_12_kb() -> None:
    size = len((REPO / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes; move detail to docs/"


def test_the_checker_sees_what_is_broken(tmp_path: Path) -> None:
    """The checks above can fail: a missing file, a missing heading and a link out of the
    repository are each reported; code, external links and good anchors are not."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## Set up: two commands\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Page\n\n"
        "[fine](other.md#set-up-two-commands) [self](#page) ![img](other.md)\n"
        "[gone](missing.md) [bad anchor](other.md#nowhere) [out](../../elsewhere.md)\n"
        "`[in code](missing.md)` [web](https://example.org/x.md)\n"
        "```\n[fenced](missing.md)\n```\n"
        "[ref]: <missing-too.md>\n"
    )
    found = {(b.target, b.why) for b in broken_links(page, tmp_path)}
    assert found == {
        ("missing.md", "no such file or folder"),
        ("other.md#nowhere", "no such heading"),
        ("../../elsewhere.md", "outside the repository"),
        ("missing-too.md", "no such file or folder"),
    }


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Set up: two commands", "set-up-two-commands"),
        ("Accuracy: partial copies", "accuracy-partial-copies"),
        ("Lookup speed ([results](benchmarks/results/lookup/README.md))", "lookup-speed-results"),
        ("`screener check --json`", "screener-check---json"),
        ("审核队列 review", "审核队列-review"),
    ],
)
def test_headings_become_githubs_anchors(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor
