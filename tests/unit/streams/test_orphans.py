"""Events of orders whose dispatch never arrives (streams/orphans.py): which are overdue, and their letters."""

from __future__ import annotations

from hotline.schemas.events import parse_event
from hotline.sinks.base import Stored
from hotline.streams import orphans
from hotline.streams.processing import OrderState, Source, apply_order_event
from tests.factories import event, raw

SRC = Source("hotline.orders", 0, 3)
HOUR_US = 3600 * orphans.MICROS


def _state(*events: dict) -> OrderState:
    state: OrderState | None = None
    for ev in events:
        state = apply_order_event(state, parse_event(raw(ev)), SRC).state
    assert state is not None
    return state


def test_an_order_holding_events_is_overdue_from_its_first_event() -> None:
    state = _state(
        event("order.visited", outcome="satisfied", occurred_at="2019-11-06T09:00:00+08:00"),
        event("order.returned", occurred_at="2019-11-05T09:00:00+08:00"),
    )
    first = orphans.waiting_since(state)
    assert first is not None
    assert orphans.overdue([("O1", state)], first + 72 * HOUR_US, 72 * 3600) == ["O1"]
    assert orphans.overdue([("O1", state)], first + 71 * HOUR_US, 72 * 3600) == []


def test_a_dispatched_order_and_one_holding_nothing_are_never_overdue() -> None:
    dispatched = _state(event("order.dispatched"), event("order.visited", outcome="satisfied"))
    completed_only = _state(event("order.completed"))  # a completion moves nothing by itself: nothing held
    assert orphans.overdue([("A", dispatched), ("B", completed_only), ("C", None)], 2**62, 1) == []


def test_each_held_event_is_one_letter_under_its_coordinates() -> None:
    visited = event("order.visited", outcome="satisfied")
    state = _state(visited)
    stored = {visited["event_id"]: Stored('{"x":1}', "hotline.orders", 2, 41)}
    [letter] = orphans.letters("O1", state, stored, 72 * 3600)
    assert (letter.source_partition, letter.source_offset, letter.raw, letter.key) == (2, 41, b'{"x":1}', b"O1")
    assert "not dispatched within 72 h" in letter.error
    assert "held" not in orphans.released(state) and orphans.released(state)["facts"] == state["facts"]


# -- a redrive of an orphan's dead letter --------------------------------------------------------


def _moved(state: OrderState, ev: dict) -> tuple[OrderState, list[tuple[str, str]], bool]:
    step = apply_order_event(state, parse_event(raw(ev)), Source("hotline.orders", 0, 90))
    return step.state, [(d.unit_id, d.metric) for d in step.counters], step.duplicate


def test_a_released_event_redriven_after_the_dispatch_counts_once() -> None:
    visited = event("order.visited", outcome="satisfied", occurred_at="2019-11-06T09:00:00+08:00")
    released = orphans.released(_state(visited))
    assert released["released"] == [visited["event_id"]]
    dispatched, _, _ = _moved(released, event("order.dispatched", occurred_at="2019-11-05T09:00:00+08:00"))
    after, counted, duplicate = _moved(dispatched, visited)
    assert not duplicate and counted and all(unit == "yuhu" for unit, _ in counted)
    assert "released" not in after
    _, again, duplicate = _moved(after, visited)
    assert duplicate and again == []


def test_a_released_event_redriven_before_any_dispatch_is_held_again_and_overdue_again() -> None:
    visited = event("order.visited", outcome="satisfied", occurred_at="2019-11-06T09:00:00+08:00")
    released = orphans.released(_state(visited))
    assert orphans.overdue([("O1", released)], 2**62, 1) == []  # nothing held: not swept again
    held, counted, duplicate = _moved(released, visited)
    assert not duplicate and counted == []
    assert orphans.held_ids(held) == [visited["event_id"]]
    assert orphans.overdue([("O1", held)], 2**62, 1) == ["O1"]


def test_the_fold_counts_a_released_event_its_identity_calls_a_duplicate() -> None:
    from hotline.streams.folding import Inputs, fold
    from hotline.streams.processing import Identity, Record, Verdict, payload

    visited = event("order.visited", outcome="satisfied", occurred_at="2019-11-06T09:00:00+08:00")
    released = orphans.released(_state(visited))
    dispatched, _, _ = _moved(released, event("order.dispatched", occurred_at="2019-11-05T09:00:00+08:00"))
    source = Source("hotline.orders", 0, 95)
    decoded = parse_event(raw(visited))
    inputs = Inputs(
        {source: decoded},
        {source: Identity(Verdict.DUPLICATE, SRC)},  # stored from its first reading
        {source: payload(decoded)},
        {"O1": dispatched},
        {},
    )
    result = fold([Record(source, b"O1", raw(visited))], inputs, {}, 0)
    assert result.duplicates == 0 and result.steps and result.batch.events == []
    assert "released" not in result.orders["O1"]
