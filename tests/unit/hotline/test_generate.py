"""The generated month must reproduce every seed figure when recomputed from raw events.

The figures are recomputed here with plain Python straight from SPEC.md's rules
(dedup by event_id, cohort = month of the first dispatch, unit and deadline of
the latest dispatch), independently of the generator's own planning, so a
generator bug and a matching counting bug cannot hide each other.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hotline.generate import generate, write_jsonl
from hotline.schemas.events import parse_event, route_of
from hotline.schemas.registry import default_registry
from hotline.seed import HEADLINE, TABLE
from hotline.streams.deadlines import TZ, is_workday
from tests.reference import (
    MONTH_END,
    MONTH_START,
    Event,
    distinct_events,
    in_month,
    order_facts,
    orders_of,
    pct,
    ts,
    unit_figures,
)


@pytest.fixture(scope="module")
def records() -> list[bytes]:
    return generate(TABLE, HEADLINE)


@pytest.fixture(scope="module")
def events(records: list[bytes]) -> list[Event]:
    return distinct_events(records)


@pytest.fixture(scope="module")
def orders(events: list[Event]) -> dict[str, list[Event]]:
    return orders_of(events)


@pytest.fixture(scope="module")
def table() -> list[dict[str, str]]:
    with TABLE.open(encoding="utf-8", newline="") as fh:
        return [r for r in csv.DictReader(fh) if r["unit"] != "总计"]


@pytest.fixture(scope="module")
def headline() -> dict[str, Any]:
    return json.loads(HEADLINE.read_text(encoding="utf-8"))


COUNT_COLUMNS = ("dispatched", "completed_on_time", "overdue", "returned")
VISIT_COLUMNS = (
    "visits",
    "visits_unreached",
    "visits_satisfied",
    "not_replied",
    "phone_supervised",
    "phone_supervised_replied",
    "written_supervised",
    "written_supervised_replied",
)


def test_every_cell_of_the_table(
    events: list[Event], orders: dict[str, list[Event]], table: list[dict[str, str]]
) -> None:
    registry = default_registry()
    figures = unit_figures(events, orders)
    assert len(table) == 54
    for row in table:
        unit_id = registry.by_name[row["unit"]].id
        got = figures.get(unit_id, {})
        for column in COUNT_COLUMNS:
            assert got.get(column, 0) == int(row[column]), (row["unit"], column)
        assert pct(got.get("completed_on_time", 0), got["dispatched"]) == row["on_time_rate"], row["unit"]
        if row["visits"] == "-":
            assert got.get("visit_events", 0) == 0, row["unit"]
            assert got.get("supervision_events", 0) == 0, row["unit"]
            continue
        for column in VISIT_COLUMNS:
            assert got.get(column, 0) == int(row[column]), (row["unit"], column)
        visits, unreached = got.get("visits", 0), got.get("visits_unreached", 0)
        assert pct(visits + unreached, got["dispatched"]) == row["visit_rate"], row["unit"]
        assert pct(got.get("visits_satisfied", 0), visits) == row["satisfaction_rate"], row["unit"]
    table_units = {registry.by_name[r["unit"]].id for r in table}
    assert set(figures) <= table_units, "events in M for a unit outside the table"


def test_totals_and_headline_orders(
    events: list[Event], orders: dict[str, list[Event]], headline: dict[str, Any]
) -> None:
    figures = unit_figures(events, orders)
    total = Counter[str]()
    for counts in figures.values():
        total.update(counts)
    assert total["dispatched"] == headline["calls"]["dispatched_to_units"] == 3297
    assert total["completed_on_time"] == headline["orders"]["completed"]
    assert total["overdue"] == headline["orders"]["overdue"]
    assert pct(total["completed_on_time"], total["dispatched"]) == headline["orders"]["on_time_completion_rate"]
    visits = headline["visits"]
    assert total["visits"] == visits["valid_visits"]
    assert total["visits_unreached"] == visits["unreached"]
    assert total["visits"] + total["visits_unreached"] == visits["visited_completed_orders"]
    assert total["visits_satisfied"] == visits["satisfied"]
    assert total["visits"] - total["visits_satisfied"] == visits["unsatisfied"]
    assert pct(total["visits_satisfied"], total["visits"]) == visits["satisfaction_rate"]
    assert total["not_replied"] == headline["not_replied_to_citizen"]["total"]
    by_type = Counter(order_facts(h)["type"] for h in orders.values() if order_facts(h)["cohort"] == (2019, 11))
    assert by_type == {t: v["count"] for t, v in headline["dispatched_by_type"].items()}


def test_headline_calls(events: list[Event], headline: dict[str, Any]) -> None:
    received = [e for e in events if e["type"] == "call.received" and in_month(e)]
    handled = [e for e in events if e["type"] == "call.handled" and in_month(e)]
    calls = headline["calls"]
    assert len(received) == calls["received"]
    answered = sum(e["answered"] for e in received)
    assert pct(answered, len(received)) == calls["connection_rate"]
    assert len(handled) == answered
    valid = [e for e in handled if e["valid"]]
    assert len(valid) == calls["valid"]
    assert sum("order_id" not in e for e in valid) == calls["consult_or_suggest_answered_directly"]
    assert sum("order_id" in e for e in valid) == calls["dispatched_to_units"]
    assert not any("order_id" in e for e in handled if not e["valid"])
    online = sum(e["resolved_online"] for e in handled)
    assert pct(online, len(valid)) == calls["online_resolution_rate"]
    categories = Counter(e["category"] for e in handled).most_common()
    top = headline["top_categories_share_of_all_received_calls"]
    assert [c for c, _ in categories[: len(top)]] == [t["category"] for t in top]
    assert [pct(n, len(received)) for _, n in categories[: len(top)]] == [t["share"] for t in top]
    assert categories[len(top)][1] < categories[len(top) - 1][1], "a sixth category ties the fifth"
    assert len(categories) >= 20


def test_calls_match_their_orders(events: list[Event], orders: dict[str, list[Event]]) -> None:
    handled = {e["call_id"]: e for e in events if e["type"] == "call.handled"}
    for order_id, history in orders.items():
        first = history[0]
        if "call_id" not in first:
            assert order_id.startswith("XT201910"), order_id
            continue
        call = handled[first["call_id"]]
        assert call["order_id"] == order_id
        assert (call["call_type"], call["category"]) == (first["order_type"], first["category"])
        assert ts(call["occurred_at"]) < ts(first["occurred_at"])


def test_times_returned_distribution(orders: dict[str, list[Event]], headline: dict[str, Any]) -> None:
    distribution: Counter[int] = Counter()
    for history in orders.values():
        returns = [ts(e["occurred_at"]) for e in history if e["type"] == "order.returned"]
        if any(MONTH_START <= t < MONTH_END for t in returns):
            distribution[sum(t < MONTH_END for t in returns)] += 1
    expected = {int(k): v for k, v in headline["returns"]["orders_by_times_returned"].items()}
    assert dict(distribution) == expected


def test_supervision(events: list[Event], orders: dict[str, list[Event]], headline: dict[str, Any]) -> None:
    for method in ("phone", "written"):
        issued = [e for e in events if e["type"] == "order.supervised" and e["method"] == method and in_month(e)]
        replies = [
            e for e in events if e["type"] == "order.supervision_replied" and e["method"] == method and in_month(e)
        ]
        assert len(issued) == headline["supervision"][method]["issued"]
        assert sum(e.get("satisfied") is True for e in replies) == headline["supervision"][method]["satisfied_after"]
    for e in events:
        if e["type"] == "order.supervised":
            visits = [v for v in orders[e["order_id"]] if v["type"] == "order.visited"]
            assert sum(v["outcome"] == "unsatisfied" for v in visits) >= 2, "supervision needs two unsatisfied visits"


def test_every_record_parses(records: list[bytes]) -> None:
    for record in records:
        parse_event(record)


def test_event_contract_details(events: list[Event]) -> None:
    for e in events:
        assert e["occurred_at"].endswith("+08:00")
        assert e["schema_version"] == 1
    dispatches = [e for e in events if e["type"] == "order.dispatched"]
    omitted = sum("due_at" not in e for e in dispatches) / len(dispatches)
    assert 0.2 < omitted < 0.4
    months = {ts(e["occurred_at"]).strftime("%Y-%m") for e in events}
    assert months <= {"2019-10", "2019-11", "2019-12"}
    for e in events:
        if e["type"].startswith("call."):
            assert in_month(e)


def test_per_key_time_order(events: list[Event]) -> None:
    """Arrival order of first occurrences keeps every order's and call's events strictly increasing."""
    last: dict[str, datetime] = {}
    for e in events:
        key = str(route_of(dict(e))[1])
        t = ts(e["occurred_at"])
        assert key not in last or last[key] < t, key
        last[key] = t


def test_arrival_interleaves_keys(events: list[Event]) -> None:
    times = [ts(e["occurred_at"]) for e in events]
    assert times != sorted(times), "arrival order should not be a plain time sort"
    keys = [e.get("order_id") or e["call_id"] for e in events[:200]]
    assert len(set(keys)) > 100


def test_duplicates_are_later_exact_repeats(records: list[bytes], events: list[Event]) -> None:
    share = (len(records) - len(events)) / len(events)
    assert 0.025 < share < 0.035
    first_seen: dict[str, int] = {}
    for i, record in enumerate(records):
        event_id = json.loads(record)["event_id"]
        if event_id in first_seen:
            assert records[first_seen[event_id]] == record
        else:
            first_seen[event_id] = i


def test_deterministic(records: list[bytes]) -> None:
    assert generate(TABLE, HEADLINE) == records
    other = generate(TABLE, HEADLINE, seed=7, duplicate_share=0.0)
    assert other != records
    assert len({json.loads(r)["event_id"] for r in other}) == len(other)


def test_write_jsonl(records: list[bytes], tmp_path: Path) -> None:
    out = tmp_path / "month.jsonl"
    assert write_jsonl(records[:500], out) == 500
    lines = out.read_bytes().splitlines()
    assert len(lines) == 500
    for line, record in zip(lines, records[:500], strict=True):
        row = json.loads(line)
        event = row["event"]
        assert event == json.loads(record)
        if event["type"].startswith("call."):
            assert (row["topic"], row["key"]) == ("calls", event["call_id"])
        else:
            assert (row["topic"], row["key"]) == ("orders", event["order_id"])


OFFICE_EVENTS = {
    "order.dispatched",
    "order.returned",
    "order.completed",
    "order.supervised",
    "order.supervision_replied",
}


def test_office_steps_happen_in_office_hours(events: list[Event]) -> None:
    for e in events:
        t = ts(e["occurred_at"])
        seconds = t.hour * 3600 + t.minute * 60 + t.second
        if e["type"] in OFFICE_EVENTS:
            assert is_workday(t.date()) and 8.5 * 3600 <= seconds <= 17.5 * 3600, e
        elif e["type"].startswith("call."):
            assert 7 * 3600 <= seconds <= 22 * 3600, e


def test_open_orders_are_already_overdue_at_month_end(orders: dict[str, list[Event]]) -> None:
    never = [order_facts(h) for h in orders.values() if order_facts(h)["completed"] is None]
    assert 1 <= len(never) <= 5
    assert all(f["cohort"] == (2019, 11) and f["deadline"] < MONTH_END for f in never)


def test_only_completions_spill_into_december(orders: dict[str, list[Event]]) -> None:
    """Late orders finish in early December; on-time ones only if dispatched at closing time."""
    spilled = 0
    for history in orders.values():
        for e in history:
            if ts(e["occurred_at"]) >= MONTH_END:
                spilled += 1
                assert e["type"] == "order.completed" and ts(e["occurred_at"]) < datetime(2019, 12, 20, tzinfo=TZ)
    assert spilled < 50


def test_satisfaction_lists_and_not_replied(
    events: list[Event], orders: dict[str, list[Event]], table: list[dict[str, str]], headline: dict[str, Any]
) -> None:
    """The headline's unit lists follow from the recomputed rows, in table order."""
    registry = default_registry()
    figures = unit_figures(events, orders)
    high, low, not_replied = [], [], {}
    for row in table:
        got = figures[registry.by_name[row["unit"]].id]
        if not got.get("visits"):
            continue
        rate = Decimal(got.get("visits_satisfied", 0)) / got["visits"]
        if rate >= Decimal("0.8"):
            high.append(row["unit"])
        elif rate < Decimal("0.5"):
            low.append(row["unit"])
        not_replied[row["unit"]] = got.get("not_replied", 0)
    assert high == headline["satisfaction_lists"]["at_or_above_80_percent"]
    assert low == headline["satisfaction_lists"]["below_50_percent"]
    for unit, n in headline["not_replied_to_citizen"]["top_units"].items():
        assert not_replied[unit] == n
