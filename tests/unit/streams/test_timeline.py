"""An order's timeline (streams/timeline.py): the same events give the same figures in any arrival order.

The property folds a drawn month through the stream's engine (``folding.fold``, with the
store's identities and the order states carried from batch to batch, as the worker does) in
event-time order, and again shuffled, with duplicates at random places and random batch
boundaries: the day windows, the order states as ClickHouse would read them, and the returns
must be the same.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.schemas.events import SOURCE_PREFIXES, parse_event
from hotline.schemas.registry import default_registry
from hotline.sinks.base import RETRACTED, OrderRow, Stored
from hotline.streams import timeline
from hotline.streams.deadlines import DEFAULT_LIMITS
from hotline.streams.folding import Inputs, fold, order_ids
from hotline.streams.processing import (
    OrderState,
    Record,
    Source,
    apply_order_event,
    decode_batch,
    identify,
    state_from_events,
)
from tests.factories import event, month_of_orders, raw

LIMITS = dict(DEFAULT_LIMITS)
REGISTRY = default_registry()
SRC = Source("hotline.orders", 0, 1)
at = "2019-11-{:02d}T09:00:00+08:00".format


@dataclass
class Store:
    """What ClickHouse would hold after the batches: windows summed, order rows deduplicated as
    ``ReplacingMergeTree(version)`` within a cohort-month partition, returns by their maximum."""

    states: dict[str, OrderState] = field(default_factory=dict)
    stored: dict[str, Stored] = field(default_factory=dict)
    windows: Counter[tuple[str, date, str]] = field(default_factory=Counter)
    rows: dict[tuple[int, str], OrderRow] = field(default_factory=dict)
    returns: dict[tuple[int, str], int] = field(default_factory=dict)
    offset: int = 0

    def stream(self, lines: list[bytes]) -> None:
        records = [Record(Source("hotline.orders", 0, self.offset + i), None, line) for i, line in enumerate(lines)]
        self.offset += len(lines)
        ready = decode_batch(records, REGISTRY, SOURCE_PREFIXES)
        events = [(s, e) for s, e in ready.events.items() if not isinstance(e, Exception) and hasattr(e, "event_id")]
        identities = identify(events, self.stored, ready.contents)  # type: ignore[arg-type]
        states = {i: self.states.get(i) for i in order_ids(records, ready.events)}
        folded = fold(records, Inputs(ready.events, identities, ready.contents, states, {}), LIMITS, 0)
        assert not folded.batch.deadletters, folded.batch.deadletters
        for row in folded.batch.events:
            self.stored[row["event_id"]] = Stored(row["payload"], "hotline.orders", 0, row["source_offset"])
        for s in folded.steps:
            self.windows[s.delta.unit_id, s.delta.day, s.delta.metric] += s.delta.value
        for o in folded.batch.orders:
            key = (o.cohort_day.year * 100 + o.cohort_day.month, o.order_id)
            if key not in self.rows or self.rows[key].version <= o.version:
                self.rows[key] = o
        for r in folded.batch.returns:
            self.returns[r.month, r.order_id] = max(self.returns.get((r.month, r.order_id), 0), r.times)
        self.states.update(folded.orders)

    def figures(self) -> dict[str, Any]:
        live = [row for row in self.rows.values() if row.unit_id != RETRACTED]
        assert len({r.order_id for r in live}) == len(live), "an order counted in two cohort months"
        return {
            "windows": {k: v for k, v in self.windows.items() if v},
            "orders": sorted(live, key=lambda r: r.order_id),
            "returns": self.returns,
        }


def streamed(lines: list[bytes], cuts: list[int]) -> dict[str, Any]:
    store = Store()
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(lines)), len(lines)]
    for lo, hi in itertools.pairwise(bounds):
        store.stream(lines[lo:hi])
    return store.figures()


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[bytes], list[bytes], list[int]]:
    """A month in event-time order, and the same events shuffled with some sent twice, cut into batches."""
    month = [raw(e) for e in month_of_orders(draw)]
    shuffled = draw(st.permutations(month))
    for line in draw(st.lists(st.sampled_from(month), max_size=4)):
        shuffled.insert(draw(st.integers(0, len(shuffled))), line)
    cuts = draw(st.lists(st.integers(0, len(shuffled)), max_size=5))
    return month, shuffled, cuts


@given(arrivals())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_arrival_order_gives_the_figures_of_event_time(drawn: tuple[list[bytes], list[bytes], list[int]]) -> None:
    in_time, shuffled, cuts = drawn
    assert streamed(shuffled, cuts) == streamed(in_time, [])


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_a_state_read_back_from_its_events_is_the_folded_state(data: st.DataObject) -> None:
    month = month_of_orders(data.draw, orders=1)
    state: OrderState | None = None
    for ev in data.draw(st.permutations(month)):
        state = apply_order_event(state, parse_event(raw(ev)), SRC, LIMITS).state
    assert state is not None
    # Only a dispatched order has a row to be read back from, and a dispatched one holds nothing back.
    assert ("held" in state) == (not state.get("unit") and any(e["type"] != "order.completed" for e in month))
    folded = {k: v for k, v in state.items() if k != "held"}
    assert dict(folded, gen=0) == state_from_events([parse_event(raw(e)) for e in month], LIMITS, 0)


def _fold(*events: dict[str, Any]) -> tuple[OrderState, Counter[tuple[str, str]]]:
    state: OrderState | None = None
    totals: Counter[tuple[str, str]] = Counter()
    for ev in events:
        step = apply_order_event(state, parse_event(raw(ev)), SRC, LIMITS)
        state = step.state
        for d in step.counters:
            totals[d.unit_id, d.metric] += d.value
    assert state is not None
    return state, Counter({k: v for k, v in totals.items() if v})


def test_a_completion_before_its_dispatch_arrived_counts_once_the_dispatch_does() -> None:
    completed = event("order.completed", occurred_at=at(6))
    dispatched = event("order.dispatched", occurred_at=at(4), due_at=at(8))
    state, totals = _fold(completed, dispatched)
    assert state["completed_on_time"] is True
    assert totals == _fold(dispatched, completed)[1]
    assert totals[("yuhu", "dispatched")] == 1


def test_the_earliest_dispatch_decides_the_cohort_whatever_arrives_first() -> None:
    first = event("order.dispatched", occurred_at=at(4), due_at=at(8))
    second = event("order.dispatched", unit_id="police", occurred_at=at(6), due_at=at(12))
    state, totals = _fold(second, first)
    assert (state["cohort_day"], state["unit"], state["due"]) == ("2019-11-04", "police", at(12))
    assert totals == _fold(first, second)[1]


def test_on_time_is_judged_against_the_deadline_in_force_at_the_completion() -> None:
    first = event("order.dispatched", occurred_at=at(4), due_at=at(8))
    completed = event("order.completed", occurred_at=at(7))
    again = event("order.dispatched", unit_id="police", occurred_at=at(10), due_at=at(12))
    state, _ = _fold(completed, again, first)
    assert state["unit"] == "police" and state["completed_on_time"] is None  # re-dispatched after: open again
    state, _ = _fold(completed, first)
    assert state["completed_on_time"] is True


def test_an_unsatisfied_visit_arriving_late_moves_when_supervision_became_due() -> None:
    visits = [
        event("order.visited", occurred_at=at(d), outcome="unsatisfied", citizen_replied=True) for d in (9, 12, 15)
    ]
    dispatched = event("order.dispatched", occurred_at=at(4), due_at=at(8))
    state, _ = _fold(dispatched, visits[2], visits[1], visits[0])
    assert state["supervision_due"] == at(12)


def test_a_return_arriving_late_counts_every_later_return_again() -> None:
    returns = [event("order.returned", occurred_at=f"2019-{m}T09:00:00+08:00") for m in ("10-30", "11-02", "11-05")]
    state: OrderState | None = apply_order_event(
        None, parse_event(raw(event("order.dispatched", occurred_at="2019-10-29T09:00:00+08:00"))), SRC, LIMITS
    ).state
    written: dict[int, int] = {}
    for ev in [returns[2], returns[1], returns[0]]:
        step = apply_order_event(state, parse_event(raw(ev)), SRC, LIMITS)
        state = step.state
        for r in step.returned:
            written[r.month] = max(written.get(r.month, 0), r.times)
    assert written == {201910: 1, 201911: 3}


def test_a_late_earlier_dispatch_retracts_the_order_from_the_month_it_leaves() -> None:
    store = Store()
    store.stream([raw(event("order.dispatched", order_id="X", occurred_at=at(2), due_at=at(8)))])
    store.stream([raw(event("order.dispatched", order_id="X", occurred_at="2019-10-30T09:00:00+08:00"))])
    rows = store.rows
    assert rows[201911, "X"].unit_id == RETRACTED and rows[201910, "X"].unit_id == "yuhu"
    assert [r.cohort_day for r in store.figures()["orders"]] == [date(2019, 10, 30)]


def test_ties_in_time_fold_in_lifecycle_order() -> None:
    dispatched = event("order.dispatched", event_id="z", occurred_at=at(4), due_at=at(4))
    completed = event("order.completed", event_id="a", occurred_at=at(4))
    assert _fold(completed, dispatched)[0]["completed_on_time"] is True
    facts = _fold(completed, dispatched)[0]["facts"]
    assert [f[2] for f in facts] == [timeline.DISPATCHED, timeline.COMPLETED]


def test_an_order_past_the_event_limit_dead_letters_the_event_and_keeps_its_state() -> None:
    lines = [raw(event("order.dispatched", order_id="X", occurred_at=at(4)))]
    lines += [raw(event("order.visited", order_id="X", occurred_at=at(5), event_id=f"v{n}")) for n in range(12)]
    records = [Record(Source("hotline.orders", 0, i), None, line) for i, line in enumerate(lines)]
    ready = decode_batch(records, REGISTRY, SOURCE_PREFIXES)
    events = [(s, e) for s, e in ready.events.items()]
    identities = identify(events, {}, ready.contents)  # type: ignore[arg-type]
    folded = fold(records, Inputs(ready.events, identities, ready.contents, {}, {}), LIMITS, 0, max_events=10)
    assert len(folded.orders["X"]["facts"]) == 10
    assert [d.source_offset for d in folded.batch.deadletters] == [10, 11, 12]
    assert "already holds 10 events" in folded.batch.deadletters[0].error
    assert len(json.dumps(folded.orders["X"])) < 10 * 250


def test_a_fact_is_small_even_with_long_ids() -> None:
    long_id = "e" * 64
    ev = event("order.dispatched", event_id=long_id, order_id="X", occurred_at=at(4), due_at=at(8))
    assert len(json.dumps(timeline.fact_of(parse_event(raw(ev)), parse_event(raw(ev)).due_at))) < 250
