"""Every relative link in README.md and in docs/ points to a file (or folder) that exists, and every
`#anchor` into a Markdown file names one of its headings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *ROOT.joinpath("docs").rglob("*.md")])
# [text](target) outside code spans and fences; the target ends at the first space or ')'
LINK = re.compile(r"\[[^\]\n]*\]\((?P<target>[^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = FENCE.sub("", page.read_text())
    slugs = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        slugs.add(slug)
    return slugs


def relative_links(page: Path) -> list[str]:
    text = CODE_SPAN.sub("", FENCE.sub("", page.read_text()))
    return [m["target"] for m in LINK.finditer(text) if not re.match(r"[a-z][a-z0-9+.-]*:", m["target"])]


def broken(page: Path) -> list[str]:
    found = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            found.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            found.append(f"{target} (no heading #{anchor})")
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page):
    assert broken(page) == [], f"{page.relative_to(ROOT)}: broken links"


def test_the_check_sees_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# A heading, here\n")
    page.write_text(
        "[ok](there.md) [ok](there.md#a-heading-here) [web](https://example.org/x.md) `[code](no.md)`\n"
        "[gone](missing.md) [bad anchor](there.md#nowhere)\n"
    )
    assert broken(page) == ["missing.md (no such file)", "there.md#nowhere (no heading #nowhere)"]
