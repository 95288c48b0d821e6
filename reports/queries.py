"""The bulletin's SQL: the month's day windows and the cohort month's order states, never the whole history.

* cohort columns (交办数, 按期办结数, 逾期数, …) count the orders first dispatched in the month,
  from ``order_states`` (one partition: the cohort month), each at the unit and deadline of
  its latest dispatch, by its catalogue :class:`~hotline.schemas.metrics.OrderStatus` now;
* event columns (退单数, 回访数, 督办数, …) and the calls sum the month's ``unit_windows`` (one
  partition), which the stream keeps per unit (calls: ``metrics.CITY``) and day;
* the returns headline reads ``order_returns`` of the month, the top categories the month's
  partition of ``events``.

Every figure's column is generated from the metric catalogue (``hotline.schemas.metrics``)
and named after it: results are read by column name. Reads deduplicate (``FINAL``, or one row
per event id of the month's events of the types asked for).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from hotline.schemas import metrics


class Queryable(Protocol):
    """What the reports read through: a store, or a test's stand-in; rows by column name."""

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


CITY = metrics.sql_literal(metrics.CITY)


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
    {order_rows(where="toYYYYMM(cohort_day) = %(month)s")}
)
GROUP BY unit_id
"""

EVENT_COLUMNS = f"""
SELECT unit_id,
       {select_sums(metrics.UNIT_EVENT_COUNTS)}
FROM {{db}}.unit_windows FINAL
WHERE toYYYYMM(day) = %(month)s AND unit_id != {CITY}
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
WHERE toYYYYMM(day) = %(month)s AND unit_id = {CITY}
"""


def month_events(types: str, where: str = "") -> str:
    """The month's stored events of these types, each once: its partition, only the rows of
    those types, deduplicated by event id (``FINAL`` would merge the whole partition)."""
    condition = f"toYYYYMM(occurred_at) = %(month)s AND type IN ({types}){where}"
    return f"(SELECT * FROM {{db}}.events WHERE {condition} ORDER BY event_id LIMIT 1 BY event_id)"


CATEGORIES = f"""
SELECT category, count() AS calls
FROM {month_events("'call.handled'")}
GROUP BY category
ORDER BY calls DESC, category
LIMIT 5
"""

ORDER_TYPES = """
SELECT order_type AS first_type, count() AS orders
FROM {db}.order_states FINAL
WHERE toYYYYMM(cohort_day) = %(month)s AND unit_id != ''
GROUP BY order_type
"""

TIMES_RETURNED = """
SELECT times, count() AS orders
FROM {db}.order_returns FINAL
WHERE month = %(month)s
GROUP BY times
ORDER BY times DESC
"""

# The month's dead letters: by the event's own time when the record parsed far enough to
# carry one, by the time the pipeline received it otherwise (not JSON, no timestamp).
DEADLETTERS = """
SELECT count() AS deadletters
FROM {db}.deadletter FINAL
WHERE toYYYYMM(ifNull(occurred_at, received_at)) = %(month)s
"""


# -- section 二: the provincial platform's checks, from the month's events partition ----------


def _check_types(counted: Iterable[metrics.CheckCount | metrics.CheckPoints]) -> str:
    types = sorted({t for m in counted for t in m.rule.types})
    return ", ".join(metrics.sql_literal(t) for t in types)


def select_check_counts(counted: Iterable[metrics.CheckCount]) -> str:
    return ",\n       ".join(f"countIf({m.rule.sql()}) AS {m.name}" for m in counted)


CHECK_UNITS = f"""
SELECT unit_id,
       {select_check_counts(metrics.UNIT_CHECK_COUNTS)}
FROM {month_events(_check_types(metrics.UNIT_CHECK_COUNTS))}
GROUP BY unit_id
"""

CHECK_CITY = f"""
SELECT {select_check_counts(metrics.CITY_CHECK_COUNTS)}
FROM {month_events(_check_types(metrics.CITY_CHECK_COUNTS))}
"""


def check_points(m: metrics.CheckPoints) -> str:
    """``m``'s points by item (its ``by`` column) in the month: one row per item, ``item`` and ``m.name``."""
    events = month_events(_check_types((m,)), f" AND {m.rule.sql()}")
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
