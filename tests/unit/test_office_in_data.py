"""No office in code: its names, thresholds and time zone live in its profile and registry files.

A second office sets itself up from files (``HOTLINE_OFFICE``); anything of the shipped demo
office written into a Python source would silently follow it there. The seed package (the one
real bulletin's data) and the tests may name it; nothing else may.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from hotline.schemas.office import DEFAULT_PROFILE, load_office
from hotline.schemas.registry import load_registry
from tests.unit.test_layout import REPO, _files

ALLOWED = ("tests", "seed")  # top-level folders that may name the office


def _sources() -> list[Path]:
    return [p for p in _files(".py") if p.relative_to(REPO).parts[0] not in ALLOWED]


def _words() -> list[str]:
    """The shipped office's names, unit and group names, and its time zone, as written in its files."""
    office = load_office(DEFAULT_PROFILE)
    n = office.names
    city = n.city.removesuffix("市")
    units = load_registry(office.registry_path)
    return [
        city,
        n.hotline,
        n.office,
        n.masthead,
        n.table,
        office.timezone,
        *office.bulletin.ordered_groups,
        *{u.name for u in units.history},
    ]


def _share_patterns(share: Decimal) -> list[str]:
    """How a share of the profile would be written in code: ``80%``, ``Decimal("0.8")``, ``* 80``."""
    pct = f"{(share * 100).normalize():f}"
    return [
        rf"(?<![\d.]){re.escape(pct)} ?%",
        rf"Decimal\(\s*['\"]{re.escape(str(share.normalize()))}['\"]\s*\)",
        rf"\* ?{re.escape(pct)}(?![\d.])",
        rf"(?<![\d.]){re.escape(pct)} ?\*",
    ]


def _thresholds() -> list[str]:
    rules = load_office(DEFAULT_PROFILE).bulletin
    shares = [rules.satisfaction_lists.high, rules.satisfaction_lists.low, rules.most_deducted_share]
    return [p for s in [*shares, *rules.standards.values()] for p in _share_patterns(s)]


def test_the_scan_sees_the_sources_and_the_office() -> None:
    names = {p.relative_to(REPO).as_posix() for p in _sources()}
    assert {"reports/prose.py", "schemas/events.py", "sinks/clickhouse.py", "hotline/cli.py"} <= names
    assert not any(name.startswith(("tests/", "seed/")) for name in names)
    assert "Asia/Shanghai" in _words() and len(_words()) > 50


@pytest.mark.parametrize("line", ["回访满意率在80%以上", 'SHARE = Decimal("0.8")', "n * 100 >= 80 * d", "n*80 < d"])
def test_a_threshold_written_in_code_is_caught(line: str) -> None:
    assert any(re.search(p, line) for p in _share_patterns(Decimal("0.8")))


@pytest.mark.parametrize("line", ["180%", 'Decimal("0.85")', "x * 800", "0.8 * y"])
def test_other_numbers_are_not_taken_for_the_threshold(line: str) -> None:
    assert not any(re.search(p, line) for p in _share_patterns(Decimal("0.8")))


def test_no_office_name_or_time_zone_in_code() -> None:
    words = _words()
    found = [
        f"{path.relative_to(REPO)}:{number}: {word}"
        for path in _sources()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        for word in words
        if word in line
    ]
    assert not found, "move these to the office profile or registry:\n" + "\n".join(found)


def test_no_threshold_of_the_office_in_code() -> None:
    patterns = [re.compile(p) for p in _thresholds()]
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in _sources()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if any(p.search(line) for p in patterns)
    ]
    assert not found, "thresholds belong to the office profile ([bulletin]):\n" + "\n".join(found)
