"""The README stays short and the docs build: every page in the nav, no dangling link, no issue numbers.

The README says what the project is, how to run it and where things are; everything else is a page
under ``docs/``, built by MkDocs (``mkdocs.yml``, strict: a broken link or anchor, or a page left out
of the nav, fails the build).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
MKDOCS = REPO / "mkdocs.yml"
README_MAX_LINES = 160
# Writing for readers of this repository only: an internal issue number, or a file beside the checkout.
ISSUE = re.compile(r"\bissues?\s+#?\d", re.IGNORECASE)
OUTSIDE = re.compile(r"\.\./shared\b")


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _prose() -> list[Path]:
    """What people read: the README, the docs and the benchmarks' README."""
    return [README, REPO / "bench" / "README.md", *_pages()]


def _nav() -> list[str]:
    """The pages listed under ``nav:`` in mkdocs.yml (``- Title: page.md`` or ``- page.md``)."""
    text = MKDOCS.read_text(encoding="utf-8")
    block = re.search(r"^nav:\n((?:[ \t]+.*\n|[ \t]*\n)*)", text, re.MULTILINE)
    assert block, "mkdocs.yml has no nav"
    return re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?([\w./-]+\.md)\s*$", block.group(1), re.MULTILINE)


def _table(path: Path, header: str) -> list[str]:
    """The rows of the Markdown table that starts with ``header``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index(header)
    rows: list[str] = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines: move sections into docs/"


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page() -> None:
    nav = _nav()
    pages = [p.relative_to(DOCS).as_posix() for p in _pages()]
    assert sorted(set(pages) - set(nav)) == [], "add these pages to mkdocs.yml's nav"
    assert sorted(set(nav) - set(pages)) == [], "nav entries without a page under docs/"
    assert len(nav) == len(set(nav)), "a page is listed twice"


def test_mkdocs_builds_the_docs_folder() -> None:
    text = MKDOCS.read_text(encoding="utf-8")
    assert re.search(r"^docs_dir:\s*docs\s*$", text, re.MULTILINE)
    assert re.search(r"^theme:\n\s+name:\s*material\s*$", text, re.MULTILINE)


def test_no_page_names_an_issue_number_or_a_file_outside_the_repository() -> None:
    offences = [
        f"{path.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
        for path in _prose()
        for text in [path.read_text(encoding="utf-8")]
        for pattern in (ISSUE, OUTSIDE)
        for m in pattern.finditer(text)
    ]
    assert not offences, "say what it is, not where it was tracked:\n" + "\n".join(offences)


def test_the_readme_links_to_pages_that_exist() -> None:
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    assert links, "the README links to the docs"
    assert [link for link in links if not (REPO / link).is_file()] == []
    linked = {Path(link).name for link in links}
    assert sorted({p.name for p in _pages()} - linked) == [], "the README's list of pages misses these"


def test_every_test_the_readme_names_as_proof_exists() -> None:
    """The alerts table says which test proves each guarantee: a renamed or deleted test leaves it lying."""
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", README.read_text(encoding="utf-8"))
    assert named, "the README's alerts table names its tests"
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not re.search(rf"^(?:async )?def {name}\(", (REPO / path).read_text(encoding="utf-8"), re.MULTILINE)
    ]
    assert missing == []


def test_the_layout_table_is_the_same_in_the_readme_and_the_overview() -> None:
    header = "| folder | imported as | job |"
    readme, overview = _table(README, header), _table(DOCS / "index.md", header)
    assert readme == overview, "keep the layout table of README.md and docs/index.md the same"
    folders = {row.split("`")[1].rstrip("/") for row in readme[2:]}
    top = {p.name for p in REPO.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert top - {"tests"} <= folders, "every top-level package has a row"


def test_the_docs_build_in_strict_mode(tmp_path: Path) -> None:
    missing = [name for name in ("mkdocs", "material") if importlib.util.find_spec(name) is None]
    assert not missing, f"{missing} not installed: they are dev dependencies (pip install -e '.[dev]')"
    # Not --quiet: in MkDocs 1.6 it drops the warnings before --strict counts them.
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert (tmp_path / "site" / "index.html").is_file()
