import json

import pytest

from schemas.events import (
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
