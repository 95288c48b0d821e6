"""identify(): what an event id means against the store and against the batch before it."""

from typing import Any

from hotline.schemas.events import Event, parse_event
from hotline.sinks.base import Stored
from hotline.streams.processing import Identity, Source, Verdict, identify, payload
from tests.factories import event, raw

A = Source("hotline.orders", 0, 10)
B = Source("hotline.orders", 1, 3)
C = Source("hotline.orders", 0, 11)


def ev(type_: str = "order.dispatched", **fields: Any) -> Event:
    return parse_event(raw(event(type_, **fields)))


def stored_at(source: Source, e: Event) -> dict[str, Stored]:
    return {e.event_id: Stored(payload(e), source.topic, source.partition, source.offset)}


# -- against the store ------------------------------------------------------------------


def test_an_id_nobody_holds_is_new() -> None:
    e = ev()
    assert identify([(A, e)], {}) == {A: Identity(Verdict.NEW)}


def test_the_stored_record_itself_is_a_replay() -> None:
    e = ev()
    assert identify([(A, e)], stored_at(A, e)) == {A: Identity(Verdict.REPLAY)}


def test_the_same_event_stored_from_other_coordinates_is_a_duplicate_of_it() -> None:
    e = ev(event_id="e-1")
    assert identify([(B, e)], stored_at(A, e)) == {B: Identity(Verdict.DUPLICATE, A)}


def test_another_event_under_a_stored_id_is_a_conflict_with_it() -> None:
    first = ev(event_id="e-1", order_id="O1")
    other = ev(event_id="e-1", order_id="O2")
    assert identify([(B, other)], stored_at(A, first)) == {B: Identity(Verdict.CONFLICT, A)}


def test_other_content_at_the_stored_coordinates_is_still_a_replay() -> None:
    """The coordinates name the record: Kafka does not change what an offset holds."""
    first = ev(event_id="e-1", order_id="O1")
    other = ev(event_id="e-1", order_id="O2")
    assert identify([(A, other)], stored_at(A, first)) == {A: Identity(Verdict.REPLAY)}


def test_content_is_the_audit_copy_so_the_caller_does_not_make_an_event_differ() -> None:
    with_caller = ev("call.received", event_id="c-1", caller={"phone": "13800000000", "name": "张三"})
    without = ev("call.received", event_id="c-1")
    assert identify([(B, with_caller)], stored_at(A, without)) == {B: Identity(Verdict.DUPLICATE, A)}


def test_store_entries_for_ids_not_in_the_batch_change_nothing() -> None:
    e = ev(event_id="e-2")
    stored = stored_at(A, ev(event_id="e-1"))
    assert identify([(B, e)], stored) == {B: Identity(Verdict.NEW)}


# -- within one batch -------------------------------------------------------------------


def test_the_same_event_twice_in_a_batch_is_new_then_a_duplicate_of_the_first() -> None:
    e = ev(event_id="e-1")
    assert identify([(A, e), (B, e)], {}) == {A: Identity(Verdict.NEW), B: Identity(Verdict.DUPLICATE, A)}


def test_two_events_under_one_id_in_a_batch_are_new_then_a_conflict() -> None:
    first = ev(event_id="e-1", order_id="O1")
    other = ev(event_id="e-1", order_id="O2")
    assert identify([(A, first), (B, other)], {}) == {
        A: Identity(Verdict.NEW),
        B: Identity(Verdict.CONFLICT, A),
    }


def test_the_first_event_under_an_id_keeps_it_after_a_conflict() -> None:
    first = ev(event_id="e-1", order_id="O1")
    other = ev(event_id="e-1", order_id="O2")
    verdicts = identify([(A, first), (B, other), (C, first), (Source("x", 0, 0), other)], {})
    assert verdicts[C] == Identity(Verdict.DUPLICATE, A)
    assert verdicts[Source("x", 0, 0)] == Identity(Verdict.CONFLICT, A)


def test_a_replayed_record_and_a_copy_of_it_in_one_batch() -> None:
    e = ev(event_id="e-1")
    assert identify([(A, e), (B, e)], stored_at(A, e)) == {
        A: Identity(Verdict.REPLAY),
        B: Identity(Verdict.DUPLICATE, A),
    }


def test_the_store_wins_over_the_batch_for_the_first_event() -> None:
    stored = ev(event_id="e-1", order_id="O1")
    other = ev(event_id="e-1", order_id="O2")
    assert identify([(B, other), (C, other)], stored_at(A, stored)) == {
        B: Identity(Verdict.CONFLICT, A),
        C: Identity(Verdict.CONFLICT, A),
    }


def test_different_ids_in_a_batch_are_each_new() -> None:
    one, two = ev(event_id="e-1"), ev(event_id="e-2")
    assert identify([(A, one), (B, two)], {}) == {A: Identity(Verdict.NEW), B: Identity(Verdict.NEW)}
