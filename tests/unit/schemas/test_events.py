import json

import pytest

from hotline.schemas.events import (
    SCHEMA_PATH,
    InvalidEvent,
    OrderDispatched,
    dump_event,
    json_schema,
    parse_event,
)
from tests.factories import event, raw

ALL_TYPES = [
    "call.received",
    "call.handled",
    "order.dispatched",
    "order.returned",
    "order.completed",
    "order.visited",
    "order.supervised",
    "order.supervision_replied",
]


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_every_contract_type_parses_to_its_model(type_: str) -> None:
    parsed = parse_event(raw(event(type_)))
    assert parsed.type == type_
    assert parsed.occurred_at.utcoffset() is not None


def test_round_trip_keeps_the_contract_json() -> None:
    original = event("order.dispatched", due_at="2019-11-11T09:31:00+08:00", call_id="C9")
    parsed = parse_event(raw(original))
    assert isinstance(parsed, OrderDispatched)
    assert json.loads(dump_event(parsed)) == original


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (raw(event("order.visited", outcome="meh")), "outcome"),
        (raw(event("call.received", answered="yes")), "answered: Input should be a valid boolean"),
        (raw(event("order.completed", occurred_at="2019-11-04T09:31:00")), "timezone"),
        (raw(event("order.completed", extra_field=1)), "extra_field: Extra inputs are not permitted"),
        (raw(event("order.teleported")), "type"),
        (raw(event("order.completed", schema_version=2)), "unsupported schema_version 2"),
        (raw(event("order.completed", schema_version=1.0)), "unsupported schema_version 1.0"),
        (raw(event("order.completed", schema_version=True)), "unsupported schema_version True"),
        (raw(event("order.completed", occurred_at="1900-01-01T00:00:00+08:00")), "outside the years 2000 to 2099"),
        (raw(event("order.completed", occurred_at="2150-01-01T00:00:00+08:00")), "year 2150 is outside"),
        (raw(event("order.completed", occurred_at="9999-12-31T23:00:00-12:00")), "year 9999 is outside"),
        (raw(event("order.completed", occurred_at="0001-01-01T00:00:00+14:00")), "year 1 is outside"),
        (raw(event("order.dispatched", due_at="9999-12-30T00:00:00+08:00")), "due_at: Value error, year 9999"),
        (b"[" * 5000 + b"]" * 5000, "not JSON: Invalid JSON: recursion limit exceeded"),
        (b"{" + b" " * 70_000 + b"}", "exceeds the limit of 65,536"),
        (b"\xff\xfe{}", "not JSON"),
        (raw(event("order.completed", event_id="x" * 65)), "event_id"),
    ],
)
def test_invalid_records_get_a_readable_reason(record: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(record)
    assert reason in info.value.reason


def test_strict_mode_refuses_numbers_as_strings() -> None:
    with pytest.raises(InvalidEvent):
        parse_event(raw(event("order.completed", order_id=123)))


def test_exported_json_schema_is_current() -> None:
    """Users integrate against the file: it must match the models (regenerate: hotline schema)."""
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == json_schema()


def test_json_schema_names_every_type() -> None:
    mapping = json_schema()["discriminator"]["mapping"]
    assert set(ALL_TYPES) <= set(mapping)


def test_a_reason_never_carries_control_characters() -> None:
    """The reason quotes the input and goes to logs and headers: a newline must not forge a line."""
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw(event("order.x\nINFO forged\u0000")))
    assert "\n" not in info.value.reason and "\x00" not in info.value.reason
    assert "order.x\\nINFO forged\\x00" in info.value.reason


def test_an_event_whose_local_day_is_before_2000_is_refused() -> None:
    """2000-01-01T00:00+14:00 is 1999-12-31 in the office: a month no table holds."""
    from hotline.schemas.events import InvalidEvent, parse_event
    from tests.factories import event, raw

    with pytest.raises(InvalidEvent) as refused:
        parse_event(raw(event("order.dispatched", occurred_at="2000-01-01T00:00:00+14:00")))
    assert "local year 1999" in refused.value.reason
