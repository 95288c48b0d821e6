from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.reports import periods
from hotline.reports.periods import Kind, between, parse, previous, year_before

DAYS = st.dates(min_value=date(2001, 1, 1), max_value=date(2098, 12, 31))


@given(DAYS)
def test_weeks_are_iso_weeks_when_they_start_on_monday(day: date) -> None:
    iso = day.isocalendar()
    assert periods.week_number(day) == (iso.year, iso.week)


@given(DAYS)
def test_a_week_holds_seven_days_from_the_week_start_and_its_day(day: date) -> None:
    week = periods.week_of(day)
    assert (week.days, week.start.weekday(), week.start <= day <= week.end) == (7, periods.week_start(), True)


@given(DAYS)
def test_a_parsed_key_is_the_same_period(day: date) -> None:
    for period in (periods.week_of(day), periods.month(day.year, day.month), between(day, day + timedelta(days=9))):
        assert parse(period.key) == period


@given(DAYS, st.sampled_from(["week", "month", "quarter", "year"]))
def test_the_previous_period_ends_the_day_before_and_is_of_the_same_kind(day: date, kind: str) -> None:
    period = {
        "week": periods.week_of(day),
        "month": periods.month(day.year, day.month),
        "quarter": periods.quarter(day.year, (day.month - 1) // 3 + 1),
        "year": periods.year_of(day.year),
    }[kind]
    before = previous(period)
    assert (before.kind, before.end + timedelta(days=1)) == (period.kind, period.start)


@given(DAYS, st.integers(min_value=0, max_value=400))
def test_a_ranges_previous_period_is_as_long_and_just_before(day: date, length: int) -> None:
    period = between(day, day + timedelta(days=length))
    before = previous(period)
    assert (before.days, before.end + timedelta(days=1)) == (period.days, period.start)


def test_iso_weeks_across_year_boundaries() -> None:
    assert parse("2020-W01").start == date(2019, 12, 30)  # week 1 of 2020 starts in 2019
    assert parse("2020-W53").end == date(2021, 1, 3)  # 2020 has 53 weeks
    assert periods.week_number(date(2021, 1, 3)) == (2020, 53)
    assert previous(parse("2021-W01")).key == "2020-W53"


def test_a_year_without_week_53_refuses_it() -> None:
    with pytest.raises(ValueError, match="weeks 1 to 52"):
        parse("2019-W53")


def test_week_53_a_year_before_is_week_52_when_that_year_has_none() -> None:
    assert year_before(parse("2020-W53")).key == "2019-W52"


def test_quarters_and_their_comparisons() -> None:
    q4 = parse("2019-Q4")
    assert (q4.start, q4.end) == (date(2019, 10, 1), date(2019, 12, 31))
    assert (previous(parse("2020-Q1")).key, year_before(q4).key) == ("2019-Q4", "2018-Q4")


def test_the_previous_month_of_january_is_december_of_the_year_before() -> None:
    assert (previous(parse("2020-01")).key, year_before(parse("2020-01")).key) == ("2019-12", "2019-01")


def test_a_range_a_year_before_keeps_its_dates_and_29_february_becomes_the_28th() -> None:
    assert year_before(parse("2020-02-29..2020-03-06")) == between(date(2019, 2, 28), date(2019, 3, 6))


@pytest.mark.parametrize(
    ("key", "label", "kind"),
    [
        ("2019-W47", "2019年第47周", Kind.WEEK),
        ("2019-11", "2019年11月", Kind.MONTH),
        ("2019-Q4", "2019年第四季度", Kind.QUARTER),
        ("2019", "2019年度", Kind.YEAR),
        ("2019-11-04..2019-11-10", "2019年11月4日至11月10日", Kind.RANGE),
        ("2019-12-30..2020-01-05", "2019年12月30日至2020年1月5日", Kind.RANGE),
    ],
)
def test_labels_in_chinese(key: str, label: str, kind: Kind) -> None:
    period = parse(key)
    assert (period.label, period.kind) == (label, kind)


@pytest.mark.parametrize("bad", ["2019-13", "2019-1", "201911", "2019-Q5", "2019-W00", "2019-11-10..2019-11-04", "x"])
def test_a_malformed_or_impossible_period_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse(bad)


def test_whole_months_are_recognised() -> None:
    assert [parse(k).whole_months for k in ("2019-Q4", "2019-11", "2019-W47", "2019-10-01..2019-11-30")] == [
        True,
        True,
        False,
        True,
    ]
