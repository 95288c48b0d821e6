"""The bulletin's SQL, read off SPEC.md's rules; every read deduplicates with FINAL.

Cohort columns come from each order's events (first dispatch decides the month,
latest dispatch the unit and deadline, first completion after it the outcome);
event columns count events by their own month and unit. Every figure's column is
generated from the metric catalogue (``hotline.schemas.metrics``) and named after it:
results are read by column name.
"""

from __future__ import annotations

from collections.abc import Iterable

from hotline.schemas import metrics

# An order's latest dispatch decides its unit and deadline (used per order_id, over
# its dispatch and completion events); the bulletin and the live monitor share it.
LATEST_DISPATCH = """maxIf(occurred_at, type = 'order.dispatched') AS last_dispatch,
           argMaxIf(unit_id, occurred_at, type = 'order.dispatched') AS final_unit,
           argMaxIf(assumeNotNull(due_at), occurred_at, type = 'order.dispatched') AS due"""


def order_rows(now: str = "now64(3)", soon: str = str(metrics.DUE_SOON_S), columns: str = "", where: str = "") -> str:
    """One row per dispatched order: its first dispatch, its unit (``final_unit``) and deadline
    (``due``), whether a completion after that dispatch closed it (``done``, ``completed_at``: the
    first one) and its catalogue :class:`~hotline.schemas.metrics.OrderStatus` at ``now`` (``status``).
    """
    return f"""SELECT order_id,
           {columns}minIf(occurred_at, type = 'order.dispatched') AS first_dispatch,
           {LATEST_DISPATCH},
           arraySort(arrayFilter(t -> t >= last_dispatch,
                     groupArrayIf(occurred_at, type = 'order.completed'))) AS completions,
           length(completions) > 0 AS done,
           completions[1] AS completed_at,
           {metrics.status_sql(now, soon)} AS status
    FROM {{db}}.events FINAL
    WHERE type IN ('order.dispatched', 'order.completed'){where}
    GROUP BY order_id
    HAVING countIf(type = 'order.dispatched') > 0"""


def count_sql(m: metrics.EventCount | metrics.OrderCount) -> str:
    """The aggregate that counts ``m`` over event rows (its rule) or order rows (its statuses)."""
    condition = m.rule.sql() if isinstance(m, metrics.EventCount) else m.sql()
    return "count()" if condition == "1" else f"countIf({condition})"


def select_counts(counted: Iterable[metrics.EventCount | metrics.OrderCount]) -> str:
    return ",\n       ".join(f"{count_sql(m)} AS {m.name}" for m in counted)


def event_types(counted: Iterable[metrics.EventCount]) -> str:
    types = dict.fromkeys(t for m in counted for t in m.rule.types)
    return ", ".join(metrics.sql_literal(t) for t in types)


ORDER_COLUMNS = f"""
SELECT final_unit AS unit_id,
       {select_counts(metrics.COHORT_COUNTS)}
FROM (
    {order_rows()}
)
WHERE toYYYYMM(first_dispatch) = %(month)s
GROUP BY final_unit
"""

EVENT_COLUMNS = f"""
SELECT unit_id,
       {select_counts(metrics.UNIT_EVENT_COUNTS)}
FROM {{db}}.events FINAL
WHERE toYYYYMM(occurred_at) = %(month)s
  AND type IN ({event_types(metrics.UNIT_EVENT_COUNTS)})
GROUP BY unit_id
"""

# The per-unit queries and the counts each one's columns hold.
PER_UNIT: tuple[tuple[str, tuple[metrics.EventCount | metrics.OrderCount, ...]], ...] = (
    (ORDER_COLUMNS, metrics.COHORT_COUNTS),
    (EVENT_COLUMNS, metrics.UNIT_EVENT_COUNTS),
)

CALLS = f"""
SELECT {select_counts(metrics.CALL_COUNTS)}
FROM {{db}}.events FINAL
WHERE toYYYYMM(occurred_at) = %(month)s AND type IN ({event_types(metrics.CALL_COUNTS)})
"""

CATEGORIES = """
SELECT category, count() AS calls
FROM {db}.events FINAL
WHERE toYYYYMM(occurred_at) = %(month)s AND type = 'call.handled'
GROUP BY category
ORDER BY calls DESC, category
LIMIT 5
"""

ORDER_TYPES = """
SELECT first_type, count() AS orders
FROM (
    SELECT order_id, argMin(order_type, occurred_at) AS first_type, min(occurred_at) AS first_dispatch
    FROM {db}.events FINAL
    WHERE type = 'order.dispatched'
    GROUP BY order_id
)
WHERE toYYYYMM(first_dispatch) = %(month)s
GROUP BY first_type
"""

TIMES_RETURNED = """
SELECT times, count() AS orders
FROM (
    SELECT order_id,
           countIf(toYYYYMM(occurred_at) <= %(month)s) AS times,
           countIf(toYYYYMM(occurred_at) = %(month)s) AS in_month
    FROM {db}.events FINAL
    WHERE type = 'order.returned'
    GROUP BY order_id
    HAVING in_month > 0
)
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
