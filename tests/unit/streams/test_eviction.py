"""Which orders leave the worker's table (pure rule) and the filter of orders worth a look-up."""

from __future__ import annotations

from datetime import datetime

from hotline.schemas.events import parse_event
from hotline.streams import timeline
from hotline.streams.eviction import evictable
from hotline.streams.known import EveryId, KnownIds
from hotline.streams.processing import OrderState, state_from_events
from tests.factories import event, raw

DAY_S = 86400.0


def _state(*events: dict[str, object]) -> OrderState:
    return state_from_events([parse_event(raw(e).decode()) for e in events], None, 0)


def _us(iso: str) -> int:
    return timeline.micros(datetime.fromisoformat(iso))


def test_a_completed_order_quiet_for_the_window_is_evictable() -> None:
    state = _state(
        event("order.dispatched", occurred_at="2019-11-04T09:00:00+08:00"),
        event("order.completed", occurred_at="2019-11-05T09:00:00+08:00"),
    )
    assert evictable(state, _us("2019-12-10T09:00:00+08:00"), 35 * DAY_S)


def test_a_completed_order_within_the_window_stays() -> None:
    state = _state(
        event("order.dispatched", occurred_at="2019-11-04T09:00:00+08:00"),
        event("order.completed", occurred_at="2019-11-05T09:00:00+08:00"),
    )
    assert not evictable(state, _us("2019-12-09T09:00:00+08:00"), 35 * DAY_S)


def test_an_open_order_stays_however_old() -> None:
    state = _state(event("order.dispatched", occurred_at="2019-11-04T09:00:00+08:00"))
    assert not evictable(state, _us("2026-01-01T00:00:00+08:00"), 35 * DAY_S)


def test_an_order_owed_supervision_stays() -> None:
    visits = [
        event("order.visited", outcome="unsatisfied", occurred_at=f"2019-11-0{d}T09:00:00+08:00") for d in (6, 7)
    ]
    state = _state(
        event("order.dispatched", occurred_at="2019-11-04T09:00:00+08:00"),
        event("order.completed", occurred_at="2019-11-05T09:00:00+08:00"),
        *visits,
    )
    assert state.get("supervision_due") and not evictable(state, _us("2026-01-01T00:00:00+08:00"), 35 * DAY_S)


def test_the_window_counts_from_the_latest_event_not_the_completion() -> None:
    state = _state(
        event("order.dispatched", occurred_at="2019-11-04T09:00:00+08:00"),
        event("order.completed", occurred_at="2019-11-05T09:00:00+08:00"),
        event("order.visited", occurred_at="2019-12-01T09:00:00+08:00"),
    )
    assert not evictable(state, _us("2019-12-10T09:00:00+08:00"), 35 * DAY_S)


def test_known_orders_answer_certainly_new_for_orders_never_added() -> None:
    known = KnownIds()
    known.add(["O1", "O2"])
    assert list(known.maybe(["O1", "O3", "O2"])) == ["O1", "O2"]


def test_without_a_filter_every_absent_order_is_worth_a_lookup() -> None:
    assert list(EveryId().maybe(["O1", "O3"])) == ["O1", "O3"]
