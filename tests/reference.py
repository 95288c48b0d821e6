"""Reference figures computed straight from an event file with plain Python and SPEC.md's rules.

Independent of the pipeline's SQL and of the generator's planning, so that a
counting bug on either side cannot hide behind a matching one on the other.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hotline.streams.deadlines import TZ, due_at

MONTH_START = datetime(2019, 11, 1, tzinfo=TZ)
MONTH_END = datetime(2019, 12, 1, tzinfo=TZ)
NOW = datetime(2030, 1, 1, tzinfo=TZ)  # long after every deadline of the month

Event = dict[str, Any]


def pct(numerator: int, denominator: int) -> str:
    if denominator == 0:
        return "-"
    value = (Decimal(numerator) * 100 / Decimal(denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return f"{value}%"


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def in_month(event: Event) -> bool:
    return MONTH_START <= ts(event["occurred_at"]) < MONTH_END


def distinct_events(records: Iterable[bytes]) -> list[Event]:
    """Distinct events, first occurrence, in arrival order."""
    seen: set[str] = set()
    result = []
    for record in records:
        event = json.loads(record)
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            result.append(event)
    return result


def orders_of(events: list[Event]) -> dict[str, list[Event]]:
    by_order: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event["type"].startswith("order."):
            by_order[event["order_id"]].append(event)
    return {k: sorted(v, key=lambda e: ts(e["occurred_at"])) for k, v in by_order.items()}


def order_facts(history: list[Event]) -> dict[str, Any]:
    """Cohort, final unit, deadline and first completion of one order."""
    dispatches = [e for e in history if e["type"] == "order.dispatched"]
    first, last = ts(dispatches[0]["occurred_at"]), dispatches[-1]
    deadline = ts(last["due_at"]) if "due_at" in last else due_at(ts(last["occurred_at"]), last["order_type"])
    completions = [ts(e["occurred_at"]) for e in history if e["type"] == "order.completed"]
    return {
        "cohort": (first.astimezone(TZ).year, first.astimezone(TZ).month),
        "unit": last["unit_id"],
        "type": last["order_type"],
        "deadline": deadline,
        "completed": completions[0] if completions else None,
    }


def unit_figures(events: list[Event], orders: dict[str, list[Event]]) -> dict[str, dict[str, int]]:
    """Every numeric column of the table, per unit_id, by SPEC.md's rules."""
    fig: dict[str, Counter[str]] = defaultdict(Counter)
    for history in orders.values():
        facts = order_facts(history)
        if facts["cohort"] != (2019, 11):
            continue
        row = fig[facts["unit"]]
        row["dispatched"] += 1
        done = facts["completed"]
        if done is not None and done <= facts["deadline"]:
            row["completed_on_time"] += 1
        elif done is not None or facts["deadline"] < NOW:
            row["overdue"] += 1
    for e in events:
        if not e["type"].startswith("order.") or not in_month(e):
            continue
        row = fig[e["unit_id"]]
        if e["type"] == "order.returned":
            row["returned"] += 1
        elif e["type"] == "order.visited":
            if e["outcome"] == "unreached":
                row["visits_unreached"] += 1
            else:
                row["visits"] += 1
                row["visits_satisfied"] += e["outcome"] == "satisfied"
                row["not_replied"] += not e["citizen_replied"]
            row["visit_events"] += 1
        elif e["type"] == "order.supervised":
            row[f"{e['method']}_supervised"] += 1
            row["supervision_events"] += 1
        elif e["type"] == "order.supervision_replied":
            row[f"{e['method']}_supervised_replied"] += 1
            row["supervision_events"] += 1
    return {unit: dict(counts) for unit, counts in fig.items()}
