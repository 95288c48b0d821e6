from datetime import date

from hotline.schemas.events import parse_event
from hotline.schemas.registry import default_registry, parse_registry
from hotline.sinks.base import DeadLetter
from hotline.sinks.redaction import strip_personal
from hotline.streams.processing import OrderState, Record, Source, apply_order_event, decode, decode_batch, payload
from tests.factories import event, raw
from tests.unit.schemas.test_registry import REORGANISED

SRC = Source("hotline.orders", 0, 7)


def fold(*events: dict) -> tuple[OrderState, list[tuple[str, str, int]], list[bool]]:
    state: OrderState | None = None
    deltas: list[tuple[str, str, int]] = []
    duplicates: list[bool] = []
    for ev in events:
        step = apply_order_event(state, parse_event(raw(ev)), SRC)
        state = step.state
        deltas += [(d.unit_id, d.metric, d.value) for d in step.counters]
        duplicates.append(step.duplicate)
    assert state is not None
    return state, deltas, duplicates


def test_dispatch_counts_for_the_unit_at_the_cohort_day() -> None:
    ev = event("order.dispatched")
    step = apply_order_event(None, parse_event(raw(ev)), SRC)
    assert [(d.unit_id, d.day, d.metric, d.value) for d in step.counters] == [
        ("yuhu", date(2019, 11, 4), "dispatched", 1)
    ]
    assert step.row is not None and step.row["due_computed"] is True
    assert step.state["due"] == "2019-11-11T09:31:00+08:00"  # five working days


def test_same_event_twice_counts_once() -> None:
    ev = event("order.dispatched")
    _, deltas, duplicates = fold(ev, ev)
    assert deltas == [("yuhu", "dispatched", 1)]
    assert duplicates == [False, True]


def test_redispatch_moves_the_order_and_its_completion_to_the_new_unit() -> None:
    _, deltas, _ = fold(
        event("order.dispatched", due_at="2019-11-05T09:00:00+08:00"),
        event("order.returned", occurred_at="2019-11-04T10:00:00+08:00"),
        event(
            "order.dispatched",
            unit_id="yuetang",
            occurred_at="2019-11-04T11:00:00+08:00",
            due_at="2019-11-08T09:00:00+08:00",
        ),
        event("order.completed", unit_id="yuetang", occurred_at="2019-11-07T09:00:00+08:00"),
    )
    totals: dict[tuple[str, str], int] = {}
    for unit, metric, value in deltas:
        totals[unit, metric] = totals.get((unit, metric), 0) + value
    assert totals == {
        ("yuhu", "dispatched"): 0,
        ("yuhu", "returned"): 1,
        ("yuetang", "dispatched"): 1,
        ("yuetang", "completed_on_time"): 1,
    }


def test_completion_after_the_deadline_is_late() -> None:
    state, deltas, _ = fold(
        event("order.dispatched", due_at="2019-11-05T09:00:00+08:00"),
        event("order.completed", occurred_at="2019-11-05T09:00:01+08:00"),
    )
    assert ("yuhu", "completed_late", 1) in deltas
    assert state["completed_on_time"] is False


def test_visit_and_supervision_counters() -> None:
    dispatched = event("order.dispatched")
    _, cohort, _ = fold(dispatched)
    _, deltas, _ = fold(
        dispatched,
        event("order.visited", outcome="unsatisfied", citizen_replied=False),
        event("order.visited", outcome="unreached", citizen_replied=False),
        event("order.visited", outcome="satisfied"),
        event("order.supervised", method="written"),
        event("order.supervision_replied", method="written", satisfied=True),
    )
    assert sorted(m for _, m, _ in deltas[len(cohort) :]) == sorted(
        [
            "visits",
            "not_replied",
            "visits_unreached",
            "visits",
            "visits_satisfied",
            "written_supervised",
            "written_supervised_replied",
            "written_supervision_satisfied",
            *["feedback_events"] * 5,  # whether a unit's feedback arrived at all (else '-')
        ]
    )


def test_an_event_before_its_unit_existed_is_dead_lettered_naming_the_registry_version() -> None:
    registry = parse_registry(REORGANISED)  # 市资源局 (resources) from 2023-07-01
    early = event("order.completed", unit_id="resources", occurred_at="2023-06-30T23:59:00+08:00")
    dead = decode(raw(early), SRC, registry, ("order.",))
    assert isinstance(dead, DeadLetter)
    assert dead.error == (
        f"unknown unit_id 'resources' on 2023-06-30: not in the unit registry (version {registry.version})"
    )


def test_an_event_is_counted_for_a_unit_from_its_first_local_day() -> None:
    registry = parse_registry(REORGANISED)
    first = event("order.completed", unit_id="resources", occurred_at="2023-06-30T16:00:00Z")  # 07-01 00:00 local
    assert not isinstance(decode(raw(first), SRC, registry, ("order.",)), DeadLetter)


def test_unknown_unit_and_wrong_topic_are_dead_letters() -> None:
    registry = default_registry()
    unknown = decode(raw(event("order.completed", unit_id="nowhere")), SRC, registry, ("order.",))
    assert isinstance(unknown, DeadLetter) and "unknown unit_id 'nowhere'" in unknown.error
    wrong = decode(raw(event("call.received")), SRC, registry, ("order.",))
    assert isinstance(wrong, DeadLetter) and "does not belong on topic" in wrong.error
    assert (wrong.source_topic, wrong.source_partition, wrong.source_offset) == ("hotline.orders", 0, 7)


def test_the_audit_row_drops_the_callers_personal_data() -> None:
    ev = parse_event(raw(event("call.received", caller={"phone": "13800000000", "name": "张三"})))
    step_row = decode(
        raw(event("call.received", caller={"phone": "13800000000", "name": "张三"})),
        SRC,
        default_registry(),
        ("call.",),
    )
    assert not isinstance(step_row, DeadLetter)
    from hotline.streams.processing import event_row

    row = event_row(ev, SRC)
    assert "13800000000" not in repr(row) and "张三" not in repr(row)


def test_the_payload_is_what_earlier_versions_stored() -> None:
    """Identity compares payloads with stored ones: the fast serialiser must match the old one byte for byte."""
    record = event(
        "order.returned",
        reason='a\tb\u0001é😀 \u2028 "/',
        occurred_at="2019-11-01T00:00:00.123456+08:00",
    )
    received = event("call.received", caller={"phone": "13800000000", "name": "张三"})
    for ev in (record, received):
        parsed = parse_event(raw(ev))
        assert payload(parsed) == strip_personal(parsed.model_dump(mode="json", exclude_none=True))


def test_the_second_unsatisfied_visit_marks_the_order_due_for_supervision() -> None:
    from hotline.streams.alerts import awaiting_supervision

    visit = {"outcome": "unsatisfied"}
    once, _, _ = fold(event("order.dispatched"), event("order.visited", **visit))
    twice, _, _ = fold(
        event("order.dispatched"),
        event("order.visited", **visit),
        event("order.visited", **visit, occurred_at="2019-11-20T10:00:00+08:00"),
    )
    assert not awaiting_supervision(once)
    assert awaiting_supervision(twice) and twice["supervision_due"] == "2019-11-20T10:00:00+08:00"


def test_supervision_takes_the_order_off_the_awaiting_list() -> None:
    from hotline.streams.alerts import awaiting_supervision

    visit = {"outcome": "unsatisfied"}
    state, _, _ = fold(
        event("order.dispatched"),
        event("order.visited", **visit),
        event("order.visited", **visit),
        event("order.supervised"),
    )
    assert state["supervision_due"] and not awaiting_supervision(state)


def _records(*values: bytes | None) -> list[Record]:
    return [Record(Source("hotline.orders", 0, n), None, v) for n, v in enumerate(values)]


def test_decode_batch_decodes_each_record_and_serialises_each_event_once() -> None:
    ev = event("order.dispatched")
    records = _records(raw(ev), b"not json")
    ready = decode_batch(records, default_registry(), ("order.",))
    good, bad = (r.source for r in records)
    assert ready.events[good] == decode(raw(ev), good, default_registry(), ("order.",))
    assert isinstance(ready.events[bad], DeadLetter)
    assert ready.contents == {good: payload(parse_event(raw(ev)))}


def test_decode_batch_keeps_what_was_decoded_ahead_and_decodes_the_rest() -> None:
    first, second = event("order.dispatched"), event("order.completed")
    records = _records(raw(first), raw(second))
    ahead = decode_batch(records[:1], default_registry(), ("order.",))
    ready = decode_batch(records, default_registry(), ("order.",), ahead)
    assert ready.events[records[0].source] is ahead.events[records[0].source]  # not decoded again
    assert ready.contents[records[1].source] == payload(parse_event(raw(second)))


def test_a_visit_before_its_orders_dispatch_counts_once_the_dispatch_arrives() -> None:
    visited = event("order.visited", outcome="satisfied", occurred_at="2019-11-06T09:00:00+08:00")
    dispatched = event("order.dispatched")
    state, deltas, _ = fold(visited)
    assert deltas == [] and len(state["held"]) == 3  # visits, visits_satisfied, feedback_events: held
    state, deltas, _ = fold(visited, dispatched)
    assert ("yuhu", "visits", 1) in deltas and ("yuhu", "visits_satisfied", 1) in deltas
    assert "held" not in state
    assert sorted(deltas) == sorted(fold(dispatched, visited)[1])


def test_an_order_never_dispatched_counts_for_no_unit() -> None:
    _, deltas, _ = fold(
        event("order.returned"),
        event("order.completed"),
        event("order.visited", outcome="unsatisfied", citizen_replied=True),
    )
    assert deltas == []
