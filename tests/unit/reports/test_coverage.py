"""Coverage: from the first stored (or declared) day to the last; comparisons only between complete periods."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from hotline.reports.coverage import HISTORY, Coverage, coverage
from hotline.reports.edition import assemble
from hotline.reports.issued import Issue, freeze
from hotline.reports.periods import parse
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.tables import COVERAGE_DECLARED
from tests.synthetic import history
from tests.unit.reports.conftest import imported

STARTED = Coverage(date(2019, 10, 8), date(2019, 11, 30))


@pytest.fixture
def from_8_october(tmp_path: Path) -> Iterator[ClickHouseStore]:
    """Data from 8 October to 30 November 2019, as the demo's store holds (later events spill into December)."""
    store = imported(tmp_path, history(date(2019, 10, 8), date(2019, 11, 30), orders=3, calls=2))
    yield store
    store.close()


@pytest.mark.parametrize(
    ("key", "name", "why"),
    [
        ("2019-10", "10月", "10月数据自10月8日起，不完整"),
        ("2018-11", "2018年11月", "2018年11月无数据（数据自2019年10月8日起）"),
        ("2019-12", "12月", "12月数据截至11月30日，不完整"),
        ("2019-W41", "第41周", "第41周数据自10月8日起，不完整"),
    ],
)
def test_a_period_outside_the_data_says_why(key: str, name: str, why: str) -> None:
    assert STARTED.gap(parse(key), name) == why


@pytest.mark.parametrize("key", ["2019-11", "2019-W42", "2019-10-08..2019-11-30"])
def test_a_period_inside_the_data_is_complete(key: str) -> None:
    assert STARTED.gap(parse(key), key) is None


def test_coverage_runs_from_the_first_stored_day_to_the_last(from_8_october: ClickHouseStore) -> None:
    held = coverage(from_8_october)
    assert (held.since, held.declared) == (date(2019, 10, 8), False)
    assert held.until is not None and held.until >= date(2019, 11, 30)


def test_an_empty_store_covers_nothing(tmp_path: Path) -> None:
    store = imported(tmp_path, [])
    try:
        assert coverage(store) == Coverage(None, None)
    finally:
        store.close()


def test_november_withholds_the_comparison_with_a_partial_october(from_8_october: ClickHouseStore) -> None:
    november = assemble(from_8_october, "2019-11")
    assert november.comparison is None and november.year_over_year is None
    assert [w.text for w in november.withheld] == [
        "10月数据自10月8日起，不完整，不作比较。",
        "2018年11月无数据（数据自2019年10月8日起），不作比较。",
    ]


def test_a_declared_day_makes_the_history_complete_from_it(from_8_october: ClickHouseStore) -> None:
    from_8_october.insert(COVERAGE_DECLARED, [[HISTORY, date(2019, 10, 1), "imported October whole"]])
    assert coverage(from_8_october).since == date(2019, 10, 1)
    november = assemble(from_8_october, "2019-11")
    assert november.comparison is not None and november.comparison.previous_month == "2019-10"


def test_the_latest_declaration_wins(from_8_october: ClickHouseStore) -> None:
    from_8_october.insert(COVERAGE_DECLARED, [[HISTORY, date(2019, 10, 1), ""]])
    from_8_october.insert(COVERAGE_DECLARED, [[HISTORY, date(2019, 11, 1), "October was not whole after all"]])
    assert coverage(from_8_october) == Coverage(date(2019, 11, 1), coverage(from_8_october).until, True)


def test_an_issued_period_counts_as_complete(from_8_october: ClickHouseStore) -> None:
    october = assemble(from_8_october, "2019-10", issue=Issue(10, 111, date(2019, 11, 5)))
    freeze(from_8_october, october, {})
    november = assemble(from_8_october, "2019-11")
    assert november.comparison is not None and november.comparison.previous_month == "2019-10"
    assert [w.kind for w in november.withheld] == ["同比"]  # a year before there is still nothing


def test_an_unfinished_period_compares_with_nothing(from_8_october: ClickHouseStore) -> None:
    december = assemble(from_8_october, "2019-12-01..2019-12-31")
    assert december.comparison is None and december.withheld[0].reasons[0].startswith("本期数据截至")
