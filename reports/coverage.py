"""Coverage: which days the store holds complete data for, so a comparison is never made with a partial period.

A change against the previous period (环比) or the same period a year before (同比) is as
official as a figure, and a period the store holds only part of gives a wrong one: the demo's
October holds only the orders dispatched from 8 October that carried into November. So the
bulletin compares two periods only when both are complete:

* from: the day an office declares its imported history complete from (``hotline coverage
  declare --from DATE``, table ``coverage_declared``, the latest declaration wins), else the
  first local day the store holds any data of (the day windows and order cohorts, whether
  streamed or imported);
* until: the last local day the store holds data of (the latest event's day): the stream has
  caught up to it, and nothing after it can be complete;
* a period that has been issued (:mod:`hotline.reports.issued`) counts as complete: what went
  out is the office's record.

Reading it costs the minimum and maximum of the two tables' partition key columns, which
ClickHouse answers from its parts' metadata (no filter, so nothing is read): a retracted
order-state row keeps a day the store holds data of, so it changes neither bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from hotline.reports.periods import Period
from hotline.reports.queries import Queryable

HISTORY = "history"  # the source an office declares for its imported history

_STORED = """
SELECT min(first) AS first, max(last) AS last FROM (
    SELECT min(day) AS first, max(day) AS last FROM {db}.unit_windows
    UNION ALL
    SELECT min(cohort_day) AS first, max(cohort_day) AS last FROM {db}.order_states
)
"""
_DECLARED = """
SELECT argMax(complete_from, declared_at) AS complete_from, count() AS declarations
FROM {db}.coverage_declared
WHERE source = %(source)s
"""
_ISSUED = "SELECT count() AS issues FROM {db}.bulletin_issues WHERE month = %(key)s"


def day_text(day: date, year: int) -> str:
    """``10月8日``; with its year (``2018年10月8日``) when that is not ``year``, the period's."""
    return f"{'' if day.year == year else f'{day.year}年'}{day.month}月{day.day}日"


@dataclass(frozen=True)
class Coverage:
    """The local days the store holds complete data for (None: the store holds nothing)."""

    since: date | None
    until: date | None
    declared: bool = False

    def gap(self, period: Period, name: str) -> str | None:
        """Why ``period`` (called ``name`` in the sentence: 10月, 2018年11月, 本月) is incomplete, or None.

        The sentence is the bulletin's: ``10月数据自10月8日起，不完整``."""
        if self.since is None or self.until is None or period.end < self.since:
            since = f"（数据自{day_text(self.since, period.start.year)}起）" if self.since else ""
            return f"{name}无数据{since}"
        if period.start < self.since:
            return f"{name}数据自{day_text(self.since, period.start.year)}起，不完整"
        if period.end > self.until:
            return f"{name}数据截至{day_text(self.until, period.end.year)}，不完整"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "declared": self.declared,
        }


def _date(value: Any) -> date | None:
    """A Date aggregate's value; ClickHouse's min of no rows is 1970-01-01, which means none."""
    if value is None or not isinstance(value, date) or value.year <= 1970:
        return None
    return value


def coverage(db: Queryable, source: str = HISTORY) -> Coverage:
    """What the store holds: the declared or first day, and the last day (see the module's rule)."""
    stored = db.query_rows(_STORED)[0]
    first, last = _date(stored["first"]), _date(stored["last"])
    declared = db.query_rows(_DECLARED, {"source": source})[0]
    if int(declared["declarations"]):
        return Coverage(_date(declared["complete_from"]), last, True)
    return Coverage(first, last)


def issued(db: Queryable, period: Period) -> bool:
    """Whether the period has been issued (an issued period counts as complete)."""
    return int(db.query_rows(_ISSUED, {"key": period.key})[0]["issues"]) > 0
