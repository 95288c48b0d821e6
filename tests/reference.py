"""Reference figures computed straight from an event file with plain Python and SPEC.md's rules.

Independent of the pipeline's SQL and of the generator's planning, so that a
counting bug on either side cannot hide behind a matching one on the other.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
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


# --------------------------------------------------------------------------- any period


def local_day(event: Event) -> date:
    return ts(event["occurred_at"]).astimezone(TZ).date()


def period_figures(events: list[Event], first: date, last: date) -> dict[str, Counter[str]]:
    """Every count of the table per unit_id over the local days ``first`` to ``last`` (both included):
    cohorts by the first dispatch's day, events by their own day, the rules of :func:`unit_figures`."""
    fig: dict[str, Counter[str]] = defaultdict(Counter)
    for history in orders_of(events).values():
        dispatches = [e for e in history if e["type"] == "order.dispatched"]
        if not first <= local_day(dispatches[0]) <= last:
            continue
        facts = order_facts(history)
        row = fig[facts["unit"]]
        row["dispatched"] += 1
        done = facts["completed"]
        if done is not None and done <= facts["deadline"]:
            row["completed_on_time"] += 1
        elif done is not None or facts["deadline"] < NOW:
            row["overdue"] += 1
    for e in events:
        if not e["type"].startswith("order.") or not first <= local_day(e) <= last:
            continue
        row = fig[e["unit_id"]]
        if e["type"] == "order.returned":
            row["returned"] += 1
        elif e["type"] == "order.visited":
            row["visits_unreached" if e["outcome"] == "unreached" else "visits"] += 1
            if e["outcome"] != "unreached":
                row["visits_satisfied"] += e["outcome"] == "satisfied"
                row["not_replied"] += not e["citizen_replied"]
            row["feedback_events"] += 1
        elif e["type"] in ("order.supervised", "order.supervision_replied"):
            suffix = "_supervised" if e["type"] == "order.supervised" else "_supervised_replied"
            row[e["method"] + suffix] += 1
            row["feedback_events"] += 1
    return {unit: counts for unit, counts in fig.items() if +counts}  # a unit with nothing counted is not listed


def period_calls(events: list[Event], first: date, last: date) -> Counter[str]:
    """The headline's call counts over the local days ``first`` to ``last``."""
    calls: Counter[str] = Counter()
    for e in events:
        if not e["type"].startswith("call.") or not first <= local_day(e) <= last:
            continue
        if e["type"] == "call.received":
            calls["calls_received"] += 1
            calls["calls_answered"] += e["answered"]
        else:
            calls["calls_valid"] += e["valid"]
            calls["calls_answered_directly"] += e["valid"] and not e.get("order_id")
            calls["calls_resolved_online"] += e["resolved_online"]
    return calls


# The rates the bulletin compares, as (numerator counts, denominator count), by the catalogue's names.
RATE_TERMS: dict[str, tuple[tuple[str, ...], str]] = {
    "on_time_rate": (("completed_on_time",), "dispatched"),
    "visit_rate": (("visits", "visits_unreached"), "dispatched"),
    "satisfaction_rate": (("visits_satisfied",), "visits"),
    "connection_rate": (("calls_answered",), "calls_received"),
    "online_resolution_rate": (("calls_resolved_online",), "calls_valid"),
}
FEEDBACK_RATES = ("visit_rate", "satisfaction_rate")  # '-' without any visit or supervision event


def city(figures: dict[str, Counter[str]], calls: Counter[str]) -> Counter[str]:
    """The city's counts: every unit's summed, and the calls."""
    total: Counter[str] = Counter()
    for counts in figures.values():
        total.update(counts)
    return total + calls


def points(rate: str, now: Counter[str] | None, before: Counter[str] | None) -> str | None:
    """The change of ``rate`` in percentage points, from exact fractions, half up to hundredths;
    None where either side prints '-' (absent, no feedback for a feedback rate, no denominator)."""
    values = []
    for counts in (now, before):
        numerators, denominator = RATE_TERMS[rate]
        if counts is None or not counts[denominator]:
            return None
        if rate in FEEDBACK_RATES and not counts["feedback_events"]:
            return None
        values.append(Fraction(sum(counts[n] for n in numerators), counts[denominator]))
    change = (values[0] - values[1]) * 100
    with localcontext() as ctx:
        ctx.prec = 60
        exact = Decimal(change.numerator) / Decimal(change.denominator)
        return str(exact.quantize(Decimal("0.01"), ROUND_HALF_UP))
