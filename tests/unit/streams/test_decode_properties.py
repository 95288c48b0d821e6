"""decode() never raises: for any bytes, and for any JSON object built around a valid event,
it returns an event or the dead letter that says why not."""

from __future__ import annotations

import json
from typing import Any, get_args

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.schemas.events import MAX_RECORD_BYTES, CallEvent, OrderEvent, parse_event
from hotline.schemas.personal import mask_personal
from hotline.schemas.registry import default_registry
from hotline.sinks.base import DeadLetter
from hotline.sinks.redaction import redact
from hotline.streams.processing import Source, decode
from tests.factories import event

REGISTRY = default_registry()
SOURCES = {"calls": Source("t.calls", 1, 42), "orders": Source("t.orders", 3, 7)}
PREFIX = {"calls": ("call.",), "orders": ("order.",)}
EVENT_CLASSES = (*get_args(CallEvent), *get_args(OrderEvent))
TYPES = (
    "call.received",
    "call.handled",
    "order.dispatched",
    "order.returned",
    "order.completed",
    "order.visited",
    "order.supervised",
    "order.supervision_replied",
)
# No example database: nothing written into the work tree.
EXAMPLES = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _check(raw: bytes | None, topic: str) -> None:
    """The one property: an event that belongs here, or a dead letter with a reason and the record."""
    source = SOURCES[topic]
    result = decode(raw, source, REGISTRY, PREFIX[topic])
    if isinstance(result, DeadLetter):
        assert result.error and "\n" not in result.error and "\x00" not in result.error
        assert result.raw == (raw or b"")
        assert (result.source_topic, result.source_partition, result.source_offset) == (
            source.topic,
            source.partition,
            source.offset,
        )
        return
    assert isinstance(result, EVENT_CLASSES), type(result)
    assert result.type.startswith(PREFIX[topic])
    assert getattr(result, "unit_id", None) is None or result.unit_id in REGISTRY  # type: ignore[union-attr]
    assert raw is not None and len(raw) <= MAX_RECORD_BYTES
    assert parse_event(raw) == result


topics = st.sampled_from(sorted(SOURCES))


@EXAMPLES
@given(raw=st.binary(max_size=2048), topic=topics)
def test_arbitrary_bytes_decode_without_raising(raw: bytes, topic: str) -> None:
    _check(raw, topic)


@EXAMPLES
@given(
    type_=st.sampled_from(TYPES),
    size=st.integers(min_value=MAX_RECORD_BYTES - 4, max_value=MAX_RECORD_BYTES + 4),
    pad=st.sampled_from([b" ", b"\n", b"x", b"\x00"]),
    topic=topics,
)
def test_records_around_the_size_limit(type_: str, size: int, pad: bytes, topic: str) -> None:
    """A valid event padded to the limit (with whitespace: still valid JSON) or past it."""
    raw = json.dumps(event(type_)).encode()
    _check(raw + pad * (size - len(raw)), topic)


def test_a_null_record_is_a_dead_letter() -> None:
    for topic in SOURCES:
        _check(None, topic)


# JSON values of every shape, text with control characters, lone surrogates and bidi marks included.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(
        [
            "2019-11-05T10:00:00+08:00",
            "2019-11-05T10:00:00",
            "9999-12-31T23:00:00-12:00",
            "0001-01-01T00:00:00+14:00",
            "1900-01-01T00:00:00+08:00",
            "2150-01-01T00:00:00Z",
            "yuhu",
            "no-such-unit",
            "call.received",
            "order.dispatched\n2019 forged line\x00",
            "complaint",
            "satisfied",
            "phone",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)
field_names = st.one_of(
    st.sampled_from(
        [
            "event_id",
            "type",
            "occurred_at",
            "schema_version",
            "call_id",
            "order_id",
            "unit_id",
            "answered",
            "caller",
            "valid",
            "call_type",
            "category",
            "resolved_online",
            "order_type",
            "due_at",
            "reason",
            "outcome",
            "citizen_replied",
            "method",
            "satisfied",
        ]
    ),
    st.text(max_size=12),
)


@st.composite
def events_around_valid_ones(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with some fields dropped, some replaced by arbitrary JSON, some added."""
    ev = event(draw(st.sampled_from(TYPES)))
    if ev["type"] == "call.received" and draw(st.booleans()):
        ev["caller"] = {"phone": "13800001234", "name": "王先生"}
    for name in draw(st.lists(st.sampled_from(sorted(ev)), max_size=3, unique=True)):
        del ev[name]
    for name, value in draw(st.dictionaries(field_names, json_values, max_size=4)).items():
        ev[name] = value
    return ev


def _encode(value: Any, ascii_only: bool, indent: bool) -> bytes:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=2 if indent else None)
    return text.encode("utf-8", errors="surrogatepass")  # a lone surrogate becomes invalid UTF-8


@EXAMPLES
@given(ev=events_around_valid_ones(), topic=topics, ascii_only=st.booleans(), indent=st.booleans())
def test_json_objects_around_valid_events_decode_without_raising(
    ev: dict[str, Any], topic: str, ascii_only: bool, indent: bool
) -> None:
    _check(_encode(ev, ascii_only, indent), topic)


@EXAMPLES
@given(
    ev=events_around_valid_ones(),
    topic=topics,
    cut=st.integers(min_value=0, max_value=400),
    junk=st.binary(max_size=8),
    depth=st.integers(min_value=0, max_value=3000),
)
def test_cut_padded_and_deeply_nested_events_decode_without_raising(
    ev: dict[str, Any], topic: str, cut: int, junk: bytes, depth: int
) -> None:
    whole = _encode(ev, False, False)
    _check(whole[:cut] + junk, topic)
    _check(whole[:-1] + b',"deep":' + b"[" * depth + b"]" * depth + b"}", topic)
    _check(b'{"x":' * depth + whole + b"}" * depth, topic)


@given(topic=topics, type_=st.sampled_from(TYPES))
@settings(max_examples=50, deadline=None, database=None)
def test_valid_events_still_decode(topic: str, type_: str) -> None:
    """The property is not vacuous: a valid event on its own topic is an event."""
    raw = json.dumps(event(type_)).encode()
    result = decode(raw, SOURCES[topic], REGISTRY, PREFIX[topic])
    assert isinstance(result, DeadLetter) != type_.startswith(PREFIX[topic])


def _storable(dead: DeadLetter) -> None:
    """Every text of the dead letter's ClickHouse row and Kafka headers encodes as UTF-8 (what the drivers do)."""
    redacted, _ = redact(dead.raw)
    redacted.encode("utf-8")
    dead.error.encode("utf-8")
    mask_personal((dead.key or b"").decode("utf-8", errors="replace")).encode("utf-8")


lone_surrogates = st.integers(min_value=0xD800, max_value=0xDFFF).map(chr)


@EXAMPLES
@given(ev=events_around_valid_ones(), topic=topics, surrogate=lone_surrogates, escaped=st.booleans())
def test_the_dead_letter_of_a_record_with_a_lone_surrogate_can_be_stored(
    ev: dict[str, Any], topic: str, surrogate: str, escaped: bool
) -> None:
    """A lone surrogate, as a JSON escape or as its (invalid) UTF-8 bytes, must not make the dead letter unstorable:
    the store would refuse the row, and the batch holding it would never be stored."""
    ev["note"] = surrogate
    raw = _encode(ev, ascii_only=escaped, indent=False)
    dead = decode(raw, SOURCES[topic], REGISTRY, PREFIX[topic])
    assert isinstance(dead, DeadLetter)
    _storable(dead)


@EXAMPLES
@given(raw=st.binary(max_size=512), topic=topics)
def test_the_dead_letter_of_arbitrary_bytes_can_be_stored(raw: bytes, topic: str) -> None:
    dead = decode(raw, SOURCES[topic], REGISTRY, PREFIX[topic])
    if isinstance(dead, DeadLetter):
        _storable(dead)
