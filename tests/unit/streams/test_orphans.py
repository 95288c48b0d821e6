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
