"""环比 and 同比 over complete periods equal an independent computation from the events.

The two synthetic years are complete from their first day (1 January 2019), so every period of
2019 and 2020 compares; a period a year before 2019 holds no data and its 同比 is withheld.
Expected changes come from ``tests/reference.py``: exact fractions of counts read off the
events, rounded half up to hundredths of a point.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest

from hotline.reports.bulletin import Bulletin
from hotline.reports.compare import PERIOD_OVER_PERIOD, UNIT_RATES, YEAR_OVER_YEAR, Comparison
from hotline.reports.edition import assemble
from hotline.reports.periods import parse
from hotline.reports.prose import change_sentence
from hotline.reports.render import render
from tests import reference
from tests.unit.reports.conftest import Stored

# 2020-01 and 2020-Q1: 环比 across the year boundary; 2020-01, 2020-W02: 同比 in the year before.
COMPARED = ("2020-03", "2020-01", "2020-Q1", "2020-W02", "2020")
RANGE = "2019-12-30..2020-01-12"


@pytest.fixture(scope="module")
def editions(two_years: Stored) -> dict[str, Bulletin]:
    return {key: assemble(two_years.store, key) for key in (*COMPARED, RANGE, "2019-03")}


def _figures(two_years: Stored, key: str) -> tuple[dict[str, Counter[str]], Counter[str]]:
    period = parse(key)
    units = reference.period_figures(two_years.events, period.start, period.end)
    return units, reference.city(units, reference.period_calls(two_years.events, period.start, period.end))


def _made(bulletin: Bulletin, kind: str) -> Comparison:
    made = bulletin.comparison if kind == PERIOD_OVER_PERIOD else bulletin.year_over_year
    assert made is not None, bulletin.withheld
    return made


@pytest.mark.parametrize("kind", [PERIOD_OVER_PERIOD, YEAR_OVER_YEAR])
@pytest.mark.parametrize("key", COMPARED)
def test_headline_changes_equal_the_events(
    two_years: Stored, editions: dict[str, Bulletin], key: str, kind: str
) -> None:
    comparison = _made(editions[key], kind)
    _, now = _figures(two_years, key)
    _, before = _figures(two_years, comparison.previous_month)
    got = {c.metric.name: None if c.points is None else str(c.points) for c in comparison.headline}
    assert got == {rate: reference.points(rate, now, before) for rate in reference.RATE_TERMS}


@pytest.mark.parametrize("kind", [PERIOD_OVER_PERIOD, YEAR_OVER_YEAR])
@pytest.mark.parametrize("key", COMPARED)
def test_each_units_changes_equal_the_events(
    two_years: Stored, editions: dict[str, Bulletin], key: str, kind: str
) -> None:
    comparison = _made(editions[key], kind)
    now, _ = _figures(two_years, key)
    before, _ = _figures(two_years, comparison.previous_month)
    got = {(u.unit_id, c.metric.name): c.points for u in comparison.units for c in u.changes}
    expected = {
        (unit, m.name): reference.points(m.name, now[unit], before.get(unit)) for unit in now for m in UNIT_RATES
    }
    assert {k: None if v is None else str(v) for k, v in got.items()} == expected
    assert sum(v is not None for v in expected.values()) >= 5  # units in both periods compare: the test has teeth


def test_the_periods_compared_are_the_previous_and_a_year_before(editions: dict[str, Bulletin]) -> None:
    made = {key: (_made(editions[key], PERIOD_OVER_PERIOD), _made(editions[key], YEAR_OVER_YEAR)) for key in COMPARED}
    pairs = {key: (before.previous_month, year_before.previous_month) for key, (before, year_before) in made.items()}
    assert pairs == {
        "2020-03": ("2020-02", "2019-03"),
        "2020-01": ("2019-12", "2019-01"),
        "2020-Q1": ("2019-Q4", "2019-Q1"),
        "2020-W02": ("2020-W01", "2019-W02"),
        "2020": ("2019", "2019"),
    }


def test_a_range_compares_with_as_many_days_just_before(two_years: Stored, editions: dict[str, Bulletin]) -> None:
    comparison = _made(editions[RANGE], PERIOD_OVER_PERIOD)
    _, now = _figures(two_years, RANGE)
    _, before = _figures(two_years, "2019-12-16..2019-12-29")
    assert comparison.previous_month == "2019-12-16..2019-12-29"
    assert {c.metric.name: str(c.points) for c in comparison.headline} == {
        rate: reference.points(rate, now, before) for rate in reference.RATE_TERMS
    }


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("2019-03", "2018年3月无数据（数据自2019年1月1日起），不作比较。"),
        (RANGE, "2018年12月30日至2019年1月12日数据自2019年1月1日起，不完整，不作比较。"),
    ],
)
def test_a_year_before_the_data_is_withheld_with_its_reason(editions: dict[str, Bulletin], key: str, why: str) -> None:
    bulletin = editions[key]
    assert bulletin.year_over_year is None and [w.text for w in bulletin.withheld] == [why]
    assert json.loads(render(bulletin, "json"))["comparisons_withheld"][0]["kind"] == YEAR_OVER_YEAR
    assert why in render(bulletin, "md").decode()


@pytest.mark.parametrize("key", COMPARED)
def test_every_format_carries_both_comparisons(editions: dict[str, Bulletin], key: str) -> None:
    bulletin = editions[key]
    sentences = [change_sentence(c) for c in bulletin.comparisons]
    assert len(sentences) == 2 and sentences[1].startswith("与上年同期（")
    for fmt in ("md", "table"):
        text = "".join(render(bulletin, fmt).decode().split())  # the terminal wraps long lines
        assert all("".join(s.split()) in text for s in sentences), fmt
    data = json.loads(render(bulletin, "json"))
    for kind, part in ((PERIOD_OVER_PERIOD, "period_over_period"), (YEAR_OVER_YEAR, "year_over_year")):
        made = _made(bulletin, kind)
        assert [u["on_time_rate"]["points"] for u in data[part]["units"]] == [
            None if u.changes[0].points is None else str(u.changes[0].points) for u in made.units
        ]
    rows = list(csv.DictReader(io.StringIO(render(bulletin, "csv").decode())))
    yoy = _made(bulletin, YEAR_OVER_YEAR)
    assert [r["satisfaction_rate_yoy_change"] for r in rows] == [
        u.of(UNIT_RATES[-1]).signed for u in (*yoy.units, yoy.total)
    ]
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(render(bulletin, "xlsx")))["环比同比"]
    assert [sheet.cell(row=i + 1, column=1).value for i in range(2)] == sentences


def test_a_merged_unit_is_compared_with_the_sum_of_its_predecessors_as_the_registry_says() -> None:
    """The registry's history: 市水务局 and 市国土局 merged into 市资源局 on 1 July; July's 环比 is
    against June's two, summed; a unit the registry gives no history is itself."""
    from hotline.reports import compare as module
    from hotline.reports.bulletin import UnitCounts, total_of
    from hotline.schemas import metrics as mc
    from hotline.schemas.registry import parse_registry
    from tests.unit.schemas.test_registry import REORGANISED

    registry = parse_registry(REORGANISED)
    before = [UnitCounts(u, u, "", 1, dispatched=2, completed_on_time=n) for u, n in (("water", 1), ("land", 2))]
    now = [UnitCounts("resources", "市资源局", "", 1, dispatched=4, completed_on_time=4)]
    made = module.compare(
        Bulletin("2023-07", now, total_of(now), {"calls": {}}),
        Bulletin("2023-06", before, total_of(before), {"calls": {}}),
        registry=registry,
    )
    assert made.units[0].of(mc.ON_TIME_RATE).text == "提升25.00个百分点"  # 4/4 against (1+2)/(2+2)
    alone = module.compare(
        Bulletin("2023-07", now, total_of(now), {"calls": {}}),
        Bulletin("2023-06", before, total_of(before), {"calls": {}}),
    )
    assert alone.units[0].of(mc.ON_TIME_RATE).text != "提升25.00个百分点", "without the registry: no predecessor"
