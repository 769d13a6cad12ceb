"""The user docs hold together: every relative link resolves, and the README stays short.

A user reads README.md and docs/ on GitHub, so a link to a file that moved, or to a heading
that was renamed, is a dead end; anchors are checked the way GitHub makes them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "examples").glob("*.md")])
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
README_MAX_LINES = 260


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of ``page``; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m[1])
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    """Relative link targets of ``page``, outside code blocks and inline code."""
    text = re.sub(r"`[^`\n]*`", "", FENCE.sub("", page.read_text()))
    return [t for t in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def test_slug_is_githubs() -> None:
    assert slug("Time limits: every probe gives up, and says so") == "time-limits-every-probe-gives-up-and-says-so"
    assert slug("The restore drill (BAK-6)") == "the-restore-drill-bak-6"
    assert slug("The project's own tests") == "the-projects-own-tests"
    assert slug("Before the first run: doctor") == "before-the-first-run-doctor"


def dead_links(page: Path) -> list[str]:
    """Each relative link of ``page`` whose file, or whose heading anchor, does not exist."""
    dead = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            dead.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            dead.append(f"{target}: no heading with that anchor in {dest.name}")
    return dead


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    dead = dead_links(page)
    assert not dead, f"{page.relative_to(REPO)}: {dead}"


def test_the_link_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n```sh\n# not a heading\n```\n")
    page = tmp_path / "page.md"
    page.write_text("# Here\n\n[ok](#here) [gone](missing.md) [bad](#nowhere) [ok](other.md#other-page)\n"
                    "[bad](other.md#not-a-heading) `[code](skipped.md)` [web](https://example.com/x.md)\n")
    assert dead_links(page) == ["missing.md: no such file",
                                "#nowhere: no heading with that anchor in page.md",
                                "other.md#not-a-heading: no heading with that anchor in other.md"]


def test_readme_is_short() -> None:
    n = len((REPO / "README.md").read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; move reference material into docs/"


def test_docs_cite_nothing_outside_the_repository() -> None:
    outside = re.compile(r"SPEC\.md|ARCHITECTURE\.md|STYLE\.md|FIELD-NOTES|\.\./shared|/work/shared")
    hits = [f"{p.relative_to(REPO)}: {m[0]}" for p in PAGES for m in outside.finditer(p.read_text())]
    assert not hits, hits
