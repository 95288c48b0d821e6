"""Bad records for the pipeline, built from a month of valid events: pure, deterministic, importable.

Three kinds, each a :class:`Bad` with a unique Kafka key to find it again in the
dead-letter topic and table:

- :func:`poison_records`: hand-made records aimed at one limit each (nesting, dates at
  the ends of the calendar, size, strict types, control characters, null, bad UTF-8,
  wrong topic, unknown unit) and at the personal-data path (real callers of the month
  in records that cannot be parsed, or whose reason quotes a phone number);
- :func:`malformed_corpus`: seeded mutations of valid events (dropped and mistyped
  fields, extra fields, cut or random bytes, huge strings, bad timestamps…);
- :func:`conflict_records`: events reusing an event id of the month with other content.

Every record but the conflicts carries an event id of its own (never one of the month's),
so none can shadow a real event; each must be refused by ``hotline.streams.processing.decode``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hotline.schemas.events import (
    MAX_RECORD_BYTES,
    CallHandled,
    CallReceived,
    OrderCompleted,
    OrderDispatched,
    OrderReturned,
    OrderSupervised,
    OrderSupervisionReplied,
    OrderVisited,
    prefixes,
)

Event = Mapping[str, Any]

CALLS, ORDERS = "calls", "orders"
PREFIX = {CALLS: prefixes(CALLS), ORDERS: prefixes(ORDERS)}  # what decode() expects on each topic

MODELS: dict[str, Any] = {
    "call.received": CallReceived,
    "call.handled": CallHandled,
    "order.dispatched": OrderDispatched,
    "order.returned": OrderReturned,
    "order.completed": OrderCompleted,
    "order.visited": OrderVisited,
    "order.supervised": OrderSupervised,
    "order.supervision_replied": OrderSupervisionReplied,
}

# The start of a forged log line: a record whose ``type`` holds a newline followed by this
# must not make the worker's log hold a line starting with it.
FORGED = "FORGED-LINE hotline worker: all records processed"
HUGE_RECORD_BYTES = 1_000_100  # under the broker's and producer's default 1 MiB limits


@dataclass(frozen=True)
class Bad:
    """One record the pipeline must dead-letter (and carry on)."""

    name: str  # the poison's name, or the corpus mutation
    topic: str  # logical topic: "calls" or "orders"
    key: bytes  # unique: how the record is found again
    value: bytes | None
    reason: str = ""  # a fragment the dead-letter reason must contain ("" = any non-empty reason)
    event_id: str | None = None  # the id it carries, when it has one
    reuses: str | None = None  # for a conflict: the month's event id it reuses

    @property
    def expected(self) -> tuple[str, ...]:
        return PREFIX[self.topic]


def topic_of(event: Event) -> str:
    return CALLS if str(event["type"]).startswith("call.") else ORDERS


def dumps(event: Any) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def callers(month: Sequence[Event]) -> tuple[set[str], set[str]]:
    """The phone numbers and names of the month's callers (``call.received`` events' ``caller``)."""
    phones: set[str] = set()
    names: set[str] = set()
    for event in month:
        caller = event.get("caller") if event.get("type") == "call.received" else None
        if isinstance(caller, dict):
            if caller.get("phone"):
                phones.add(str(caller["phone"]))
            if caller.get("name"):
                names.add(str(caller["name"]))
    return phones, names


def _first(month: Sequence[Event], type_: str, where: Callable[[Event], bool] = lambda e: True, skip: int = 0) -> Event:
    found = [e for e in month if e.get("type") == type_ and where(e)]
    assert len(found) > skip, f"the month has no {type_} to copy"
    return found[skip]


def _with_caller(event: Event) -> bool:
    return isinstance(event.get("caller"), dict) and bool(event["caller"].get("phone"))


def poison_records(month: Sequence[Event]) -> list[Bad]:
    """The hand-made poison records, keyed ``poison-001``…, each with a fragment of its expected reason."""
    dispatched = _first(month, "order.dispatched")
    completed = _first(month, "order.completed")
    received = [_first(month, "call.received", _with_caller, skip=n) for n in range(10)]
    out: list[Bad] = []

    def add(name: str, topic: str, value: bytes | None, reason: str, event_id: str | None = None) -> None:
        key = f"poison-{len(out) + 1:03d}"
        out.append(Bad(name, topic, key.encode(), value, reason, event_id))

    def copy(event: Event, **fields: Any) -> tuple[dict[str, Any], str]:
        event_id = f"poison-{len(out) + 1:03d}-{fields.pop('tag', 'ev')}"
        return {**event, "event_id": event_id, **fields}, event_id

    # Nesting far beyond any parser's recursion limit, inside an otherwise plausible event.
    ev, eid = copy(dispatched)
    nested = dumps(ev)[:-1] + b',"extra":' + b"[" * 5000 + b"]" * 5000 + b"}"
    add("nested 5,000 deep", ORDERS, nested, "recursion limit", eid)
    for year_name, occurred_at, fragment in (
        ("dated 1900", "1900-11-05T10:00:00+08:00", "year 1900"),
        ("dated 2150", "2150-11-05T10:00:00+08:00", "year 2150"),
    ):
        ev, eid = copy(dispatched, occurred_at=occurred_at)
        add(year_name, ORDERS, dumps(ev), fragment, eid)
    ev, eid = copy(completed, occurred_at="9999-12-31T23:00:00-12:00")  # 10000-01-01 in UTC
    add("occurred_at 9999-12-31T23:00-12:00", ORDERS, dumps(ev), "year 9999", eid)
    ev, eid = copy(completed, occurred_at="0001-01-01T00:00:00+14:00")  # year 0 in UTC
    add("occurred_at 0001-01-01T00:00+14:00", ORDERS, dumps(ev), "year 1 ", eid)
    ev, eid = copy(dispatched, occurred_at="9999-12-30T10:00:00+08:00")
    ev.pop("due_at", None)  # so a deadline would have to be computed from 9999-12-30
    add("order.dispatched at 9999-12-30", ORDERS, dumps(ev), "year 9999", eid)
    # A non-JSON record of 1,000,100 bytes that starts like a call with a real caller.
    ev, eid = copy(received[0])
    start = dumps(ev)[:-1] + b", "
    huge = start + b"x" * (HUGE_RECORD_BYTES - len(start))
    add("non-JSON of 1,000,100 bytes", CALLS, huge, f"record of {HUGE_RECORD_BYTES:,} bytes exceeds", eid)
    ev, eid = copy(dispatched)
    add("schema_version 1.0", ORDERS, dumps(ev)[:-1] + b',"schema_version":1.0}', "schema_version", eid)
    ev, eid = copy(dispatched, schema_version=True)
    add("schema_version true", ORDERS, dumps(ev), "schema_version", eid)
    ev, eid = copy(completed, type=f"order.completed\n{FORGED}\x00 end")
    add("type with a newline and a NUL", ORDERS, dumps(ev), "order.completed\\n" + FORGED, eid)
    add("null value", ORDERS, None, "null")
    ev, eid = copy(completed)
    add("invalid UTF-8", ORDERS, dumps(ev).replace(b'"type"', b'"ty\xff\xfepe"'), "not JSON", eid)
    # Lone UTF-16 surrogates: what a lenient parser (Python's json) turns into text no UTF-8 encoder takes.
    ev, eid = copy(completed)
    add("surrogate as UTF-8 bytes", ORDERS, dumps(ev).replace(b'"type"', b'"ty\xed\xa0\x80pe"'), "not JSON", eid)
    ev, eid = copy(completed, note="\ud800")
    add("surrogate as a JSON escape", ORDERS, json.dumps(ev).encode(), "not JSON", eid)
    ev, eid = copy(dispatched)
    add("order event on the calls topic", CALLS, dumps(ev), "does not belong on topic", eid)
    ev, eid = copy(dispatched, unit_id="no-such-unit")
    add("unknown unit_id", ORDERS, dumps(ev), "unknown unit_id", eid)

    # Real callers of the month where the dead-letter path has to keep them out of storage.
    ev, eid = copy(received[1], answered="yes")
    add("caller, answered 'yes'", CALLS, dumps(ev), "answered", eid)
    caller = received[2]["caller"]
    for cut_name, cut in (
        ("caller, cut in half", lambda whole: len(whole) // 2),
        ("caller, cut inside the phone", lambda whole: whole.index(str(caller["phone"]).encode()) + 6),
        ("caller, cut inside the name (mid-character)", lambda whole: whole.index(str(caller["name"]).encode()) + 4),
        ("caller, cut after the caller", lambda whole: whole.index(b"}") + 1),
    ):
        ev, eid = copy(received[2])
        whole = dumps(ev)
        add(cut_name, CALLS, whole[: cut(whole)], "not JSON", eid)
    ev, eid = copy(received[3])
    add("caller, in an array", CALLS, dumps([ev]), "not a JSON object", eid)
    ev, eid = copy(received[3], caller={**received[3]["caller"], "id_card": "4303"})
    add("caller with an unknown member", CALLS, dumps(ev), "caller.id_card", eid)
    ev, eid = copy(received[4], contact=received[4]["caller"])
    add("caller copied under another member", CALLS, dumps(ev), "contact", eid)
    ev, eid = copy(received[4], category="x" * MAX_RECORD_BYTES)
    add("caller in an oversized record", CALLS, dumps(ev), "exceeds the limit", eid)
    ev, eid = copy(received[5], answered=1)
    add("caller, ASCII-escaped", CALLS, json.dumps([ev]).encode(), "not a JSON object", eid)
    # A phone number in what the reason quotes back (the type tag, an unknown unit, schema_version).
    phone = str(received[5]["caller"]["phone"])
    ev, eid = copy(received[5], type=f"call.received {phone}")
    add("phone in the type (quoted by the reason)", CALLS, dumps(ev), "Input tag", eid)
    ev, eid = copy(dispatched, unit_id=phone)
    add("phone as unit_id (quoted by the reason)", ORDERS, dumps(ev), "unknown unit_id", eid)
    ev, eid = copy(received[5], schema_version=phone)
    add("phone as schema_version (quoted by the reason)", CALLS, dumps(ev), "schema_version", eid)
    ev, eid = copy(received[5], **{phone: True})
    add("phone as a member name (quoted by the reason)", CALLS, dumps(ev), "Extra inputs", eid)
    # A phone as people write it: with dots or uneven hyphen groups, in full-width digits, as JSON
    # escapes in a record that does not parse, in the free text of an otherwise valid event.
    for form_name, written in _written_forms(str(received[6]["caller"]["phone"])):
        ev, eid = copy(received[6], answered="yes", contact=written)
        add(f"phone {form_name} in another member", CALLS, dumps(ev), "answered", eid)
    escaped = "".join(f"\\u{ord(c):04x}" for c in str(received[7]["caller"]["phone"]))
    ev, eid = copy(received[7])
    add("phone as JSON escapes, not JSON", CALLS, dumps(ev)[:-1] + f', "x": "{escaped}" oops'.encode(), "not JSON", eid)
    return out


def _written_forms(phone: str) -> list[tuple[str, str]]:
    """One phone number as people write it (each form must be masked like the plain digits)."""
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in phone)
    return [
        ("with dots", f"{phone[:3]}.{phone[3:7]}.{phone[7:]}"),
        ("with uneven hyphens", f"{phone[:4]}-{phone[4:6]}-{phone[6:]}"),
        ("with spaces", f"{phone[:3]} {phone[3:7]} {phone[7:]}"),
        ("in full-width digits", full_width),
    ]


def valid_with_phones(month: Sequence[Event]) -> list[Event]:
    """Valid events whose free text holds a caller's phone (stored: the text must be masked first)."""
    returned = _first(month, "order.returned")
    phone = str(_first(month, "call.received", _with_caller, skip=8)["caller"]["phone"])
    return [
        {**returned, "event_id": "phone-in-reason-1", "reason": f"请回电{phone}"},
        {**returned, "event_id": "phone-in-reason-2", "reason": f"联系 {phone[:3]}.{phone[3:7]}.{phone[7:]} 处理"},
    ]


def conflict_records(month: Sequence[Event]) -> list[Bad]:
    """An order event reusing a month order event's id with other content; one reusing a call's id."""
    visited = _first(month, "order.visited")
    other = {**visited, "outcome": "satisfied" if visited["outcome"] != "satisfied" else "unsatisfied"}
    call = _first(month, "call.received")
    completed = _first(month, "order.completed")
    return [
        Bad("order event id reused", ORDERS, b"conflict-001", dumps(other), "already names another event",
            visited["event_id"], reuses=visited["event_id"]),
        Bad("call event id reused by an order event", ORDERS, b"conflict-002",
            dumps({**completed, "event_id": call["event_id"]}), "already names another event",
            call["event_id"], reuses=call["event_id"]),
    ]  # fmt: skip


# -- the malformed corpus ------------------------------------------------------------------

Mutation = Callable[[random.Random, dict[str, Any]], tuple[bytes, str | None]]  # (value, topic override)

_STRING_FIELDS = ("event_id", "call_id", "order_id", "unit_id", "category", "reason", "type", "occurred_at")
_BOOL_FIELDS = ("answered", "valid", "resolved_online", "citizen_replied")
_ENUMS = {"order_type": "complaints", "call_type": "inquiry", "outcome": "meh", "method": "fax"}


def _required(event: Event) -> list[str]:
    fields = MODELS[str(event["type"])].model_fields
    return ["type", *(name for name, f in fields.items() if f.is_required())]


def _drop_required(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    ev.pop(rng.choice(_required(ev)))
    return dumps(ev), None


def _null_required(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    ev[rng.choice(_required(ev))] = None
    return dumps(ev), None


def _wrong_type(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    name = rng.choice([f for f in ev if f != "caller"])
    value = ev[name]
    if isinstance(value, bool):
        ev[name] = rng.choice(["true", "yes", 1, 0, [], {}, 1.0])
    elif isinstance(value, int):
        ev[name] = rng.choice(["1", 1.0, True, [1], {"v": 1}])
    else:
        ev[name] = rng.choice([12345, 1.5, True, [], {}, ["x"], {"value": value}])
    return dumps(ev), None


def _extra_field(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    name = rng.choice(["note", "priority", "Event_ID", "unit", "schemaVersion", "source", "operator", "tags"])
    ev[name] = rng.choice(["x", 0, None, [], {"a": 1}, True])
    return dumps(ev), None


def _truncate(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    data = dumps(ev)
    return data[: rng.randint(0, len(data) - 1)], None


def _random_bytes(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    return rng.randbytes(rng.randint(0, 400)), None


def _huge_string(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    name = rng.choice([f for f in ("category", "reason", "order_id", "call_id", "unit_id") if f in ev] or ["note"])
    size = rng.randint(MAX_RECORD_BYTES + 1, 3 * MAX_RECORD_BYTES)
    ev[name] = rng.choice(["x", "长", "é", "\\"])[0] * size
    return dumps(ev), None


def _bad_timestamp(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    name = rng.choice([f for f in ("occurred_at", "due_at") if f in ev])
    ev[name] = rng.choice(
        [
            "2019-11-05T10:00:00",  # naive
            "2019-11-05 10:00:00",
            "2019-11-05",
            "yesterday",
            "",
            "2019-02-30T10:00:00+08:00",
            "2019-11-05T25:00:00+08:00",
            "2019-11-05T10:00:00+25:00",
            "1573000000",
            "Tue, 05 Nov 2019 10:00:00 +0800",
            "2019-11-05T10:00:00+08:00junk",
            "2019-W45-2T10:00:00+08:00",
        ]
    )
    return dumps(ev), None


def _year_out_of_range(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    year = rng.choice([1, 1000, 1899, 1999, 2100, 2149, 2150, 5000, 9999])
    ev["occurred_at"] = f"{year:04d}-11-05T10:00:00+08:00"
    return dumps(ev), None


def _unknown_type(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    ev["type"] = rng.choice(["order.cancelled", "call.dropped", "Order.Dispatched", "order.dispatched ", "", "order"])
    return dumps(ev), None


def _not_an_object(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    shape = rng.choice(["list", "pairs", "string", "number", "true", "null", "empty list", "empty object"])
    value: Any = {
        "list": [ev],
        "pairs": [[k, v] for k, v in ev.items()],
        "string": json.dumps(ev),
        "number": 12345,
        "true": True,
        "null": None,
        "empty list": [],
        "empty object": {},
    }[shape]
    return dumps(value), None


def _enum_violation(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    names = [f for f in _ENUMS if f in ev]
    if not names:
        ev["type"] = str(ev["type"]).upper()
        return dumps(ev), None
    name = rng.choice(names)
    ev[name] = _ENUMS[name]
    return dumps(ev), None


def _bad_id(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    name = rng.choice([f for f in ("event_id", "order_id", "call_id", "unit_id") if f in ev])
    ev[name] = "" if name != "event_id" else (ev["event_id"] + "-" + "x" * 64)[:65]  # under 1 or over 64 chars
    return dumps(ev), None


def _invalid_utf8(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    marker = "\ue000MARK\ue000"
    name = rng.choice([f for f in ("event_id", "category", "reason", "order_id", "call_id") if f in ev])
    ev[name] = f"{ev[name]}{marker}"
    junk = rng.choice([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe9\x95", b"\xf8\x88\x80\x80\x80"])
    return dumps(ev).replace(marker.encode(), junk), None


def _not_json(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    form = rng.choice(["python repr", "utf-16", "trailing", "two objects", "single quotes", "nan", "comment"])
    if form == "python repr":
        return repr(ev).encode(), None
    if form == "utf-16":
        return json.dumps(ev, ensure_ascii=False).encode("utf-16"), None
    if form == "trailing":
        return dumps(ev) + rng.choice([b"x", b"}", b",", b"\x00", b"]"]), None
    if form == "two objects":
        return dumps(ev) + dumps(ev), None
    if form == "single quotes":
        return dumps(ev).replace(b'"', b"'"), None
    if form == "nan":
        ev["schema_version"] = float("nan")
        return json.dumps(ev, ensure_ascii=False).encode(), None
    return b"// an event\n" + dumps(ev), None


def _schema_version(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    ev["schema_version"] = rng.choice([0, 2, -1, "1", "v1", 1.0, 1.5, True, False, None, [1], 10**30])
    return dumps(ev), None


def _wrong_topic(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    return dumps(ev), ORDERS if topic_of(ev) == CALLS else CALLS


def _unknown_unit(rng: random.Random, ev: dict[str, Any]) -> tuple[bytes, str | None]:
    if "unit_id" not in ev:  # a call: its order event twin on the orders topic would need a unit
        ev["unit_id"] = "nowhere"
        return dumps(ev), None
    ev["unit_id"] = rng.choice(["nowhere", "YUHU", "yuhu ", "湘潭", "unit-0"])
    return dumps(ev), None


MUTATIONS: dict[str, Mutation] = {
    "drop a required field": _drop_required,
    "null in a required field": _null_required,
    "wrong JSON type": _wrong_type,
    "extra field": _extra_field,
    "truncated bytes": _truncate,
    "random bytes": _random_bytes,
    "huge string (> 64 KiB)": _huge_string,
    "bad timestamp": _bad_timestamp,
    "year out of range": _year_out_of_range,
    "unknown type": _unknown_type,
    "array or scalar instead of an object": _not_an_object,
    "value outside its enum": _enum_violation,
    "id too short or too long": _bad_id,
    "invalid UTF-8 in a string": _invalid_utf8,
    "not JSON (repr, UTF-16, trailing bytes…)": _not_json,
    "bad schema_version": _schema_version,
    "valid event on the wrong topic": _wrong_topic,
    "unknown unit": _unknown_unit,
}


def malformed_corpus(month: Sequence[Event], count: int = 180, seed: int = 20191130) -> list[Bad]:
    """``count`` records (keys ``malformed-000``…), every mutation in turn, each on a random event of the month.

    The same month, count and seed give the same bytes: the unit test checks exactly what
    the integration test sends.
    """
    rng = random.Random(seed)
    by_type: dict[str, list[Event]] = {}
    for event in month:
        by_type.setdefault(str(event["type"]), []).append(event)
    types = sorted(t for t in by_type if t in MODELS)  # the corpus mutates calls' and orders' events
    names = list(MUTATIONS)
    out: list[Bad] = []
    for n in range(count):
        name = names[n % len(names)]
        template = rng.choice(by_type[rng.choice(types)])
        event_id = f"malformed-{n:03d}-{rng.getrandbits(32):08x}"
        ev = json.loads(json.dumps(template))  # a deep copy
        ev["event_id"] = event_id
        value, topic = MUTATIONS[name](rng, ev)
        out.append(Bad(name, topic or topic_of(template), f"malformed-{n:03d}".encode(), value, event_id=event_id))
    return out
