"""The bulletin's SQL: the period's day windows and cohort days' order states, never the whole history.

A bulletin covers a period (:mod:`hotline.reports.periods`: a week, month, quarter, year or
any range of local days); every query takes its days (``%(start)s``, ``%(end)s``, both
included) and the months they touch (``%(first_month)s``, ``%(last_month)s``: the partitions),
from :func:`period_parameters`.

* cohort columns (交办数, 按期办结数, 逾期数, …) count the orders first dispatched in the period,
  from ``order_states`` (the cohort months' partitions), each at the unit and deadline of
  its latest dispatch, by its catalogue :class:`~hotline.schemas.metrics.OrderStatus` now;
* event columns (退单数, 回访数, 督办数, …) and the calls sum the period's ``unit_windows``,
  which the stream keeps per unit (calls: ``metrics.CITY``) and day;
* the returns headline reads ``order_returns`` of the period's months (for a period of whole
  months) or the period's return events (a week, a range), the top categories the period's
  partitions of ``events``.

Every figure's column is generated from the metric catalogue (``hotline.schemas.metrics``)
and named after it: results are read by column name. Reads deduplicate (``FINAL``, or one row
per event id of the period's events of the types asked for).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from hotline.reports.periods import Period
from hotline.schemas import metrics


class Queryable(Protocol):
    """What the reports read through: a store, or a test's stand-in; rows by column name."""

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


CITY = metrics.sql_literal(metrics.CITY)
# The period's days, both included, for a Date column (the day windows' ``day``, ``cohort_day``).
DAYS = "BETWEEN toDate(%(start)s) AND toDate(%(end)s)"


def period_parameters(period: Period) -> dict[str, Any]:
    """What every query of the bulletin is bound to: the period's days and the months they touch."""
    first, last = period.months
    return {"start": period.start.isoformat(), "end": period.end.isoformat(), "first_month": first, "last_month": last}


def in_period(column: str) -> str:
    """``column`` (a DateTime64 in the office's time zone) on one of the period's local days; the month
    bounds select the partitions (``toYYYYMM``, the tables' partition key) before any row is read."""
    return f"toYYYYMM({column}) BETWEEN %(first_month)s AND %(last_month)s AND toDate({column}) {DAYS}"


def order_rows(
    now: str = "now64(3)", soon: str = str(metrics.DUE_SOON_S), where: str = "", done: str = "completed_at IS NOT NULL"
) -> str:
    """One row per dispatched order of ``order_states``: its unit and deadline (of its latest
    dispatch), whether it is ``done`` and when (``completed_at``), and its catalogue status at ``now``."""
    return f"""SELECT order_id, unit_id, cohort_day, order_type, due, completed_at,
           {done} AS done,
           {metrics.status_sql(now, soon)} AS status
    FROM {{db}}.order_states FINAL
    WHERE unit_id != ''{f" AND {where}" if where else ""}"""


def count_sql(m: metrics.OrderCount) -> str:
    """The aggregate that counts ``m`` over order rows (its statuses)."""
    condition = m.sql()
    return "count()" if condition == "1" else f"countIf({condition})"


def select_counts(counted: Iterable[metrics.OrderCount]) -> str:
    return ",\n       ".join(f"{count_sql(m)} AS {m.name}" for m in counted)


def select_sums(counted: Iterable[metrics.EventCount | metrics.OrderCount]) -> str:
    """Windowed counts summed over the windows selected."""
    return ",\n       ".join(f"sum({m.name}) AS {m.name}" for m in counted)


ORDER_COLUMNS = f"""
SELECT unit_id,
       {select_counts(metrics.COHORT_COUNTS)}
FROM (
    {order_rows(where=f"cohort_day {DAYS}")}
)
GROUP BY unit_id
"""

EVENT_COLUMNS = f"""
SELECT unit_id,
       {select_sums(metrics.UNIT_EVENT_COUNTS)}
FROM {{db}}.unit_windows FINAL
WHERE day {DAYS} AND unit_id != {CITY}
GROUP BY unit_id
HAVING {" OR ".join(f"{m.name} != 0" for m in metrics.UNIT_EVENT_COUNTS)}
"""

# The per-unit queries and the counts each one's columns hold.
PER_UNIT: tuple[tuple[str, tuple[metrics.EventCount | metrics.OrderCount, ...]], ...] = (
    (ORDER_COLUMNS, metrics.COHORT_COUNTS),
    (EVENT_COLUMNS, metrics.UNIT_EVENT_COUNTS),
)

CALLS = f"""
SELECT {select_sums(metrics.CALL_COUNTS)}
FROM {{db}}.unit_windows FINAL
WHERE day {DAYS} AND unit_id = {CITY}
"""


def period_events(types: str, where: str = "") -> str:
    """The period's stored events of these types, each once: its partitions, only the rows of
    those types, deduplicated by event id (``FINAL`` would merge the whole partitions)."""
    condition = f"{in_period('occurred_at')} AND type IN ({types}){where}"
    return f"(SELECT * FROM {{db}}.events WHERE {condition} ORDER BY event_id LIMIT 1 BY event_id)"


CATEGORIES = f"""
SELECT category, count() AS calls
FROM {period_events("'call.handled'")}
GROUP BY category
ORDER BY calls DESC, category
LIMIT 5
"""

ORDER_TYPES = f"""
SELECT order_type AS first_type, count() AS orders
FROM {{db}}.order_states FINAL
WHERE cohort_day {DAYS} AND unit_id != ''
GROUP BY order_type
"""

# Each order returned in the period, by its returns to date at its last return in the period:
# the stream keeps that per month, so over whole months it is the order's highest count of them.
TIMES_RETURNED = """
SELECT times, count() AS orders
FROM (
    SELECT order_id, max(times) AS times
    FROM {db}.order_returns FINAL
    WHERE month BETWEEN %(first_month)s AND %(last_month)s
    GROUP BY order_id
)
GROUP BY times
ORDER BY times DESC
"""

# The same for a period that is not whole months (a week, a range): the returns to date at the
# last return in the period are the order's return events up to the period's end, read from the
# return events of the orders returned in the period (a few a day), each event once.
TIMES_RETURNED_IN_DAYS = f"""
SELECT times, count() AS orders
FROM (
    SELECT order_id, count() AS times
    FROM (
        SELECT event_id, order_id FROM {{db}}.events
        WHERE type = 'order.returned' AND toDate(occurred_at) <= toDate(%(end)s)
          AND order_id IN (
              SELECT order_id FROM {{db}}.events WHERE type = 'order.returned' AND {in_period("occurred_at")}
          )
        ORDER BY event_id LIMIT 1 BY event_id
    )
    GROUP BY order_id
)
GROUP BY times
ORDER BY times DESC
"""


def times_returned(period: Period) -> str:
    """The query of the period's 退单次数分布 (see :data:`TIMES_RETURNED`)."""
    return TIMES_RETURNED if period.whole_months else TIMES_RETURNED_IN_DAYS

# The period's dead letters: by the event's own time when the record parsed far enough to
# carry one, by the time the pipeline received it otherwise (not JSON, no timestamp).
DEADLETTERS = f"""
SELECT count() AS deadletters
FROM {{db}}.deadletter FINAL
WHERE toDate(ifNull(occurred_at, received_at)) {DAYS}
"""


# -- section 二: the provincial platform's checks, from the period's events partitions --------


def _check_types(counted: Iterable[metrics.CheckCount | metrics.CheckPoints]) -> str:
    types = sorted({t for m in counted for t in m.rule.types})
    return ", ".join(metrics.sql_literal(t) for t in types)


def select_check_counts(counted: Iterable[metrics.CheckCount]) -> str:
    return ",\n       ".join(f"countIf({m.rule.sql()}) AS {m.name}" for m in counted)


CHECK_UNITS = f"""
SELECT unit_id,
       {select_check_counts(metrics.UNIT_CHECK_COUNTS)}
FROM {period_events(_check_types(metrics.UNIT_CHECK_COUNTS))}
GROUP BY unit_id
"""

CHECK_CITY = f"""
SELECT {select_check_counts(metrics.CITY_CHECK_COUNTS)}
FROM {period_events(_check_types(metrics.CITY_CHECK_COUNTS))}
"""


def check_points(m: metrics.CheckPoints) -> str:
    """``m``'s points by item (its ``by`` column) in the period: one row per item, ``item`` and ``m.name``."""
    events = period_events(_check_types((m,)), f" AND {m.rule.sql()}")
    if m.arrays:
        return f"""
SELECT item, sum(points_of_item) AS {m.name}
FROM (SELECT {m.by}, {m.field} FROM {events})
ARRAY JOIN {m.by} AS item, {m.field} AS points_of_item
GROUP BY item
ORDER BY item
"""
    return f"""
SELECT {m.by} AS item, sum({m.field}) AS {m.name}
FROM {events}
GROUP BY item
ORDER BY item
"""
