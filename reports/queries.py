"""The bulletin's SQL, read off SPEC.md's rules; every read deduplicates with FINAL.

Cohort columns come from each order's events (first dispatch decides the month,
latest dispatch the unit and deadline, first completion after it the outcome);
event columns count events by their own month and unit.
"""

from __future__ import annotations

# An order's latest dispatch decides its unit and deadline (used per order_id, over
# its dispatch and completion events); the bulletin and the live monitor share it.
LATEST_DISPATCH = """maxIf(occurred_at, type = 'order.dispatched') AS last_dispatch,
           argMaxIf(unit_id, occurred_at, type = 'order.dispatched') AS final_unit,
           argMaxIf(assumeNotNull(due_at), occurred_at, type = 'order.dispatched') AS due"""

ORDER_COLUMNS = """
SELECT final_unit,
       count() AS dispatched,
       countIf(done AND completed_at <= due) AS on_time,
       countIf((done AND completed_at > due) OR (NOT done AND due < now64(3))) AS overdue,
       countIf(NOT done AND due >= now64(3)) AS open_not_due
FROM (
    SELECT order_id,
           minIf(occurred_at, type = 'order.dispatched') AS first_dispatch,
           {LATEST_DISPATCH},
           arraySort(arrayFilter(t -> t >= last_dispatch,
                     groupArrayIf(occurred_at, type = 'order.completed'))) AS completions,
           length(completions) > 0 AS done,
           completions[1] AS completed_at
    FROM {db}.events FINAL
    WHERE type IN ('order.dispatched', 'order.completed')
    GROUP BY order_id
    HAVING countIf(type = 'order.dispatched') > 0
)
WHERE toYYYYMM(first_dispatch) = %(month)s
GROUP BY final_unit
""".replace("{LATEST_DISPATCH}", LATEST_DISPATCH)

EVENT_COLUMNS = """
SELECT unit_id,
       countIf(type = 'order.returned') AS returned,
       countIf(type = 'order.visited' AND outcome IN ('satisfied', 'unsatisfied')) AS visits,
       countIf(type = 'order.visited' AND outcome = 'unreached') AS visits_unreached,
       countIf(type = 'order.visited' AND outcome = 'satisfied') AS visits_satisfied,
       countIf(type = 'order.visited' AND outcome IN ('satisfied', 'unsatisfied')
               AND citizen_replied = false) AS not_replied,
       countIf(type = 'order.supervised' AND method = 'phone') AS phone_supervised,
       countIf(type = 'order.supervision_replied' AND method = 'phone') AS phone_supervised_replied,
       countIf(type = 'order.supervision_replied' AND method = 'phone' AND satisfied) AS phone_satisfied,
       countIf(type = 'order.supervised' AND method = 'written') AS written_supervised,
       countIf(type = 'order.supervision_replied' AND method = 'written') AS written_supervised_replied,
       countIf(type = 'order.supervision_replied' AND method = 'written' AND satisfied) AS written_satisfied,
       countIf(type IN ('order.visited', 'order.supervised', 'order.supervision_replied')) AS feedback_events
FROM {db}.events FINAL
WHERE toYYYYMM(occurred_at) = %(month)s
  AND type IN ('order.returned', 'order.visited', 'order.supervised', 'order.supervision_replied')
GROUP BY unit_id
"""

CALLS = """
SELECT countIf(type = 'call.received') AS n_received,
       countIf(type = 'call.received' AND answered) AS n_answered,
       countIf(type = 'call.handled' AND valid) AS n_valid,
       countIf(type = 'call.handled' AND valid AND order_id = '') AS n_answered_directly,
       countIf(type = 'call.handled' AND resolved_online) AS n_resolved_online
FROM {db}.events FINAL
WHERE toYYYYMM(occurred_at) = %(month)s AND type IN ('call.received', 'call.handled')
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
SELECT count()
FROM {db}.deadletter FINAL
WHERE toYYYYMM(ifNull(occurred_at, received_at)) = %(month)s
"""
