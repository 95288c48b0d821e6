"""Reporting periods: a week, a month, a quarter, a year or any range of days, in the office's calendar.

Offices publish weekly (一周情况通报), monthly, quarterly and annual bulletins, and compare a
period with the one before it (环比) and with the same period a year earlier (同比). Every
bulletin is a range of local days, so everything the store sums by day (the day windows, the
order cohorts) serves any period alike; this module only says which days a period holds, how
it is written (``2019-W47``) and how it is named in Chinese (``2019年第47周``). It is pure:
no clock, no store.

Weeks start on the office's week start (:func:`week_start`, Monday by default); week 1 of a
year is the week that holds 4 January, which for Monday is ISO 8601's week numbering.
"""

from __future__ import annotations

import calendar
import enum
import re
from dataclasses import dataclass
from datetime import date, timedelta

MONDAY = 0
CN_QUARTERS = ("一", "二", "三", "四")


def week_start() -> int:
    """The weekday the office's weeks start on (0 Monday … 6 Sunday).

    One place, so an office profile can say otherwise; today every office starts on Monday."""
    return MONDAY


class Kind(enum.Enum):
    """What kind of period a bulletin covers; its value is how the bulletin's prose says "this …"."""

    WEEK = "本周"
    MONTH = "本月"
    QUARTER = "本季度"
    YEAR = "本年度"
    RANGE = "本期"


@dataclass(frozen=True)
class Period:
    """An inclusive range of local days and the kind of period it is."""

    kind: Kind
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"a period ends on or after its start: {self.start} to {self.end}")

    @property
    def key(self) -> str:
        """How the period is written on the command line and in URLs (``2019-W47``, ``2019-11``, …)."""
        if self.kind is Kind.WEEK:
            year, number = week_number(self.start)
            return f"{year}-W{number:02d}"
        if self.kind is Kind.MONTH:
            return f"{self.start.year}-{self.start.month:02d}"
        if self.kind is Kind.QUARTER:
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.kind is Kind.YEAR:
            return str(self.start.year)
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def months(self) -> tuple[int, int]:
        """The first and last YYYYMM the period touches (the stores' partitions)."""
        return self.start.year * 100 + self.start.month, self.end.year * 100 + self.end.month

    @property
    def whole_months(self) -> bool:
        """Whether the period is made of whole calendar months (a month, quarter, year or such a range)."""
        return self.start.day == 1 and (self.end + timedelta(days=1)).day == 1

    @property
    def label(self) -> str:
        """The period's name in a title: 2019年第47周, 2019年11月, 2019年第四季度, 2019年度, or its days."""
        if self.kind is Kind.WEEK:
            return f"{week_number(self.start)[0]}年第{week_number(self.start)[1]}周"
        if self.kind is Kind.MONTH:
            return f"{self.start.year}年{self.start.month}月"
        if self.kind is Kind.QUARTER:
            return f"{self.start.year}年第{CN_QUARTERS[(self.start.month - 1) // 3]}季度"
        if self.kind is Kind.YEAR:
            return f"{self.start.year}年度"
        return self.span

    @property
    def span(self) -> str:
        """The days it holds: 2019年11月4日至11月10日 (the end's year only when it differs)."""
        end_year = f"{self.end.year}年" if self.end.year != self.start.year else ""
        return (
            f"{self.start.year}年{self.start.month}月{self.start.day}日至{end_year}{self.end.month}月{self.end.day}日"
        )

    @property
    def term(self) -> str:
        """How the prose says "in this period": 11月 for a month (as the office writes), else 本周, 本季度, …."""
        return f"{self.start.month}月" if self.kind is Kind.MONTH else self.kind.value

    @property
    def short(self) -> str:
        """The period named against another one of its kind: 10月, 第46周, 第三季度, 2018年, or its days."""
        if self.kind is Kind.WEEK:
            return f"第{week_number(self.start)[1]}周"
        if self.kind is Kind.MONTH:
            return f"{self.start.month}月"
        if self.kind is Kind.QUARTER:
            return f"第{CN_QUARTERS[(self.start.month - 1) // 3]}季度"
        if self.kind is Kind.YEAR:
            return f"{self.start.year}年"
        return self.span

    def __str__(self) -> str:
        return self.key


# -------------------------------------------------------------------------- weeks


def first_week_start(year: int, start: int | None = None) -> date:
    """The first day of week 1 of ``year``: the week (from ``start``) that holds 4 January."""
    weekday = week_start() if start is None else start
    fourth = date(year, 1, 4)
    return fourth - timedelta(days=(fourth.weekday() - weekday) % 7)


def weeks_in(year: int) -> int:
    """52 or 53."""
    return (first_week_start(year + 1) - first_week_start(year)).days // 7


def week_number(day: date) -> tuple[int, int]:
    """The (year, week) ``day`` falls in; early January may belong to the previous year's last week."""
    year = day.year + 1 if day >= first_week_start(day.year + 1) else day.year
    if day < first_week_start(year):
        year -= 1
    return year, (day - first_week_start(year)).days // 7 + 1


def week(year: int, number: int) -> Period:
    if not 1 <= number <= weeks_in(year):
        raise ValueError(f"{year} has weeks 1 to {weeks_in(year)}, not {number}")
    start = first_week_start(year) + timedelta(weeks=number - 1)
    return Period(Kind.WEEK, start, start + timedelta(days=6))


def week_of(day: date) -> Period:
    return week(*week_number(day))


# -------------------------------------------------------------------------- the other kinds


def month(year: int, number: int) -> Period:
    if not 1 <= number <= 12:
        raise ValueError(f"a month is 01 to 12, not {number:02d}")
    return Period(Kind.MONTH, date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1]))


def quarter(year: int, number: int) -> Period:
    if not 1 <= number <= 4:
        raise ValueError(f"a quarter is Q1 to Q4, not Q{number}")
    first = month(year, 3 * number - 2)
    return Period(Kind.QUARTER, first.start, month(year, 3 * number).end)


def year_of(year: int) -> Period:
    return Period(Kind.YEAR, date(year, 1, 1), date(year, 12, 31))


def between(start: date, end: date) -> Period:
    """Any range of days, both included (``--from``/``--to``)."""
    return Period(Kind.RANGE, start, end)


_FORMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(\d{4})-W(\d{2})"), "week"),
    (re.compile(r"(\d{4})-(\d{2})"), "month"),
    (re.compile(r"(\d{4})-Q(\d)"), "quarter"),
    (re.compile(r"(\d{4})"), "year"),
    (re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})"), "range"),
)
FORMS_HELP = "2019-W47 (a week), 2019-11, 2019-Q4, 2019, or 2019-11-04..2019-11-10"


def parse(text: str) -> Period:
    """``2019-W47``, ``2019-11``, ``2019-Q4``, ``2019`` or ``2019-11-04..2019-11-10``; ValueError otherwise."""
    for pattern, form in _FORMS:
        found = pattern.fullmatch(text.strip())
        if found is None:
            continue
        a, *rest = found.groups()
        if form == "range":
            return between(date.fromisoformat(a), date.fromisoformat(rest[0]))
        if form == "year":
            return year_of(int(a))
        maker = {"week": week, "month": month, "quarter": quarter}[form]
        return maker(int(a), int(rest[0]))
    raise ValueError(f"a period looks like {FORMS_HELP}; got {text!r}")


# -------------------------------------------------------------------------- comparisons


def _shift_year(day: date, years: int) -> date:
    """The same date ``years`` later (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def previous(period: Period) -> Period:
    """The period of the same kind just before (环比): last week, last month, last quarter, last year,
    or as many days just before a range."""
    before = period.start - timedelta(days=1)
    if period.kind is Kind.WEEK:
        return week_of(before)
    if period.kind is Kind.MONTH:
        return month(before.year, before.month)
    if period.kind is Kind.QUARTER:
        return quarter(before.year, (before.month - 1) // 3 + 1)
    if period.kind is Kind.YEAR:
        return year_of(before.year)
    return between(period.start - timedelta(days=period.days), before)


def year_before(period: Period) -> Period:
    """The same period a year earlier (同比): week N, the month, the quarter, the year, or the range's dates."""
    if period.kind is Kind.WEEK:
        year, number = week_number(period.start)
        return week(year - 1, min(number, weeks_in(year - 1)))
    if period.kind is Kind.MONTH:
        return month(period.start.year - 1, period.start.month)
    if period.kind is Kind.QUARTER:
        return quarter(period.start.year - 1, (period.start.month - 1) // 3 + 1)
    if period.kind is Kind.YEAR:
        return year_of(period.start.year - 1)
    return between(_shift_year(period.start, -1), _shift_year(period.end, -1))
