"""The store's values and dataclasses as JSON, between workers and the storage owner (``hotline store``).

JSON, never pickle: the store decodes only what this module names. Wire format version
:data:`CODEC_VERSION` (2); a worker and a store of another version refuse each other
(``hotline.sinks.remote``: the ``X-Hotline-Codec`` header of every call, and ``hello``'s answer).

**Where the type is known from the position, the value is plain JSON, converted by that type.**
A tagged dataclass's fields are converted by their declared types, and a :class:`Batch`'s event
rows by the events table's column types (``hotline.sinks.tables.EVENTS``):

* a ``datetime`` is its ISO 8601 text, with the IANA zone appended in brackets when its
  ``tzinfo`` is a ``ZoneInfo`` (RFC 9557: ``2019-11-04T09:31:00+06:00[Asia/Urumqi]`` comes
  back in ``ZoneInfo("Asia/Urumqi")``, one with a fixed offset in that offset, a naive one
  naive); a ``date`` its ISO text; a ``Decimal`` its string; ``bytes`` base64; a tuple a list;
* the dataclasses, by name: :class:`Batch`, :class:`DeadLetter`, :class:`OrderRow`,
  :class:`WindowRow`, :class:`ReturnRow`, :class:`Stored`, :class:`Generation`, each rebuilt
  with its own types (``OrderRow.seen`` a tuple, ``DeadLetter.headers`` pairs of a name and
  bytes); the fields are exactly the class's own names (defaults may be left out);
* an event row is a JSON object of column → value: the events table's ``DateTime64`` columns
  hold datetime text, its ``Decimal`` columns decimal strings (lists of them for an
  ``Array(Decimal)``); every other key of a row must hold a JSON value (a datetime there is not
  written: :class:`TypeError`, never a string that would come back as one).

**Anywhere else** (a call's arguments, an answer's result) a value that JSON has no type for
travels *tagged*, ``{"$t": tag, "v": …}``: ``datetime``, ``date``, ``decimal``, ``bytes``,
``tuple`` (only where :func:`tagged_tuples` tags them: query parameters, where ClickHouse tells
``(a, b)`` from ``[a, b]``; elsewhere a tuple is a list) and the dataclasses' names, ``v`` as
above. Every such JSON object with a ``"$t"`` key is a tag, so plain mappings must not use that
key. An unknown tag, or a value that does not fit its type, is a :class:`CodecError`, never a guess.

Why this format (version 1 tagged every datetime, inside rows too, and rebuilt tags with
``json.loads(object_hook=…)``): a write call carries up to 5,000 event rows, and the store spent
more CPU calling the hook for every row and tagged datetime than inserting the rows into chDB.
Now ``orjson`` (C) parses and writes the JSON, and Python touches only the typed columns of
each row: ``python -m bench.codec`` measures both. JSON limits that come with ``orjson``:
integers are 64-bit (ClickHouse's widest here; a larger one is a :class:`TypeError` on
writing), object keys are strings, and NaN or an infinity is written as ``null``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from hotline.sinks.base import Batch, DeadLetter, Generation, OrderRow, ReturnRow, Stored, WindowRow
from hotline.sinks.tables import EVENTS, POINTS, TS

CODEC_VERSION = 2  # the wire format: a store and a worker of different versions refuse each other
TAG = "$t"
T = TypeVar("T")
# Datetimes and dataclasses reach :func:`_default` (tagged or converted there), not orjson's own
# writing, which would make them untagged text and objects that come back as strings and dicts.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_PLAIN = frozenset({str, int, float, bool, type(None)})


class CodecError(ValueError):
    """What arrived is not a value this codec writes."""


def dumps(value: Any) -> bytes:
    """``value`` as UTF-8 JSON (Chinese text as is); :class:`TypeError` for what the codec does not write."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def loads(data: bytes | str) -> Any:
    """JSON written by :func:`dumps`, every tagged object rebuilt; :class:`CodecError` otherwise."""
    try:
        return _value(orjson.loads(data))
    except CodecError:
        raise
    except (ValueError, TypeError, KeyError, RecursionError) as exc:  # malformed JSON, a value of the wrong shape
        raise CodecError(f"not a store message: {type(exc).__name__}: {exc}") from None


def decode_as(cls: type[T], value: Any) -> T:
    """``value`` (from :func:`loads`) checked to be a ``cls``."""
    if not isinstance(value, cls):
        raise CodecError(f"expected {cls.__name__}, got {type(value).__name__}")
    return value


def tagged_tuples(value: Any) -> Any:
    """``value`` with its tuples (at any depth of lists, tuples and dicts) tagged, so they come back as
    tuples: JSON would make them lists, and a query parameter ``(topic, partition)`` means a tuple."""
    if isinstance(value, tuple):
        return {TAG: "tuple", "v": [tagged_tuples(v) for v in value]}
    if isinstance(value, list):
        return [tagged_tuples(v) for v in value]
    if isinstance(value, dict):
        return {k: tagged_tuples(v) for k, v in value.items()}
    return value


# -- plain values of a known type, both ways ------------------------------------------------------


def _datetime_text(value: Any) -> str:
    """ISO 8601, and the IANA zone in brackets (RFC 9557) when it has one: the zone, not only its offset."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    zone = value.tzinfo
    if isinstance(zone, ZoneInfo) and zone.key:
        return f"{value.isoformat()}[{zone.key}]"
    return value.isoformat()


def _datetime(value: Any) -> datetime:
    # Checked inline (this runs for every datetime of a batch). isoformat() always writes the
    # time: a date alone, which fromisoformat would take as midnight, is refused.
    if type(value) is not str or value[10:11] != "T":
        raise CodecError(f"not a datetime's text: {value!r}")
    if not value.endswith("]"):
        return datetime.fromisoformat(value)
    text, bracket, key = value[:-1].partition("[")
    at = datetime.fromisoformat(text)
    if not bracket or at.tzinfo is None:
        raise CodecError(f"not a datetime with a zone: {value!r}")
    try:
        return at.astimezone(ZoneInfo(key))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CodecError(f"unknown time zone {key!r}") from exc


def _date_text(value: Any) -> str:
    if type(value) is not date:  # a datetime is a date too, and would not come back as one
        raise TypeError(f"expected a date, got {type(value).__name__}")
    return value.isoformat()


def _date(value: Any) -> date:
    return date.fromisoformat(_text(value))


def _decimal_text(value: Any) -> str:
    if not isinstance(value, Decimal):
        raise TypeError(f"expected a Decimal, got {type(value).__name__}")
    return str(value)


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(_text(value))
    except InvalidOperation as exc:
        raise CodecError(f"not a decimal: {value!r}") from exc


def _bytes_text(value: Any) -> str:
    if not isinstance(value, bytes):
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    return base64.b64encode(value).decode("ascii")


def _bytes(value: Any) -> bytes:
    try:
        return base64.b64decode(_text(value), validate=True)
    except binascii.Error as exc:
        raise CodecError(f"not base64: {exc}") from exc


def _optional(convert: Callable[[Any], T], value: Any) -> T | None:
    return None if value is None else convert(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise CodecError(f"expected a string, got {type(value).__name__}")
    return value


def _int(value: Any) -> int:
    if type(value) is not int:
        raise CodecError(f"expected an integer, got {type(value).__name__}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise CodecError(f"expected true or false, got {type(value).__name__}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise CodecError(f"expected a list, got {type(value).__name__}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CodecError(f"expected an object, got {type(value).__name__}")
    return value


# -- event rows: converted by the events table's column types ---------------------------------------


def _decimals_text(value: Any) -> list[str]:
    return [_decimal_text(v) for v in value]


def _decimals(value: Any) -> list[Decimal]:
    return [_decimal(v) for v in _list(value)]


# The column types that JSON has no type for: (to the wire, from the wire). Nullable ones hold null.
_BY_TYPE: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    TS: (_datetime_text, _datetime),
    f"Nullable({TS})": (_datetime_text, _datetime),
    POINTS: (_decimal_text, _decimal),
    f"Nullable({POINTS})": (_decimal_text, _decimal),
    f"Array({POINTS})": (_decimals_text, _decimals),
}
_EVENT_TYPED = tuple((name, *_BY_TYPE[kind]) for name, kind in EVENTS.columns if kind in _BY_TYPE)
_EVENT_FROM_WIRE = tuple((name, from_wire) for name, _, from_wire in _EVENT_TYPED)


def _not_in_a_row(value: Any) -> Any:
    raise TypeError(f"an event row holds a {type(value).__name__} outside the events table's typed columns")


def _event_out(row: Any) -> dict[str, Any]:
    """A row with its typed columns as text (a copy: the worker's row stays as it is)."""
    if not isinstance(row, dict):
        raise TypeError(f"an event row is a dict, not {type(row).__name__}")
    out = dict(row)
    for name, to_wire, _ in _EVENT_TYPED:
        value = out.get(name)
        if value is not None:
            out[name] = to_wire(value)
    return out


def _event(row: Any) -> dict[str, Any]:
    """A row from the wire, its typed columns rebuilt in place (orjson's fresh dict: nobody else holds it).

    Written for speed, it runs for every row of a batch: an empty list (most rows' deductions)
    is left as it is, any other value not null is converted, or refused."""
    if type(row) is not dict:
        raise CodecError(f"an event row is an object, not {type(row).__name__}")
    for name, from_wire in _EVENT_FROM_WIRE:
        value = row.get(name)
        if value or (value is not None and type(value) is not list):
            row[name] = from_wire(value)
    return row


def _events_out(rows: list[dict[str, Any]]) -> orjson.Fragment:
    """The batch's rows, written apart: any value of a type JSON lacks, outside the typed columns, is refused."""
    return orjson.Fragment(orjson.dumps([_event_out(r) for r in rows], default=_not_in_a_row, option=_OPTIONS))


# -- the dataclasses: fields by their declared types ------------------------------------------------


def _fields_of(values: Any, cls: type) -> dict[str, Any]:
    """The dataclass's fields from the wire: exactly its own names (defaults may be left out)."""
    if not isinstance(values, dict):
        raise CodecError(f"{cls.__name__}: expected its fields")
    unknown = set(values) - _NAMES[cls]
    if unknown:
        raise CodecError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    return values


def _deadletter_out(d: DeadLetter) -> dict[str, Any]:
    return {
        "source_topic": d.source_topic,
        "source_partition": d.source_partition,
        "source_offset": d.source_offset,
        "error": d.error,
        "raw": _bytes_text(d.raw),
        "key": _optional(_bytes_text, d.key),
        "headers": [[name, _bytes_text(value)] for name, value in d.headers],
        "store_copy": d.store_copy,
    }


def _deadletter(values: Any) -> DeadLetter:
    v = _fields_of(values, DeadLetter)
    headers = tuple((_text(name), _bytes(value)) for name, value in (_list(h) for h in _list(v.get("headers", []))))
    return DeadLetter(
        _text(v["source_topic"]),
        _int(v["source_partition"]),
        _int(v["source_offset"]),
        _text(v["error"]),
        _bytes(v["raw"]),
        _optional(_bytes, v.get("key")),
        headers,
        _bool(v.get("store_copy", True)),
    )


def _order_row_out(o: OrderRow) -> dict[str, Any]:
    return {
        "order_id": o.order_id,
        "cohort_day": _date_text(o.cohort_day),
        "unit_id": o.unit_id,
        "order_type": o.order_type,
        "due": _datetime_text(o.due),
        "completed_at": _optional(_datetime_text, o.completed_at),
        "returns": o.returns,
        "seen": list(o.seen),
        "version": o.version,
        "unsatisfied_visits": o.unsatisfied_visits,
        "supervision_due": _optional(_datetime_text, o.supervision_due),
        "supervised": o.supervised,
    }


def _order_row(values: Any) -> OrderRow:
    v = _fields_of(values, OrderRow)
    return OrderRow(
        _text(v["order_id"]),
        _date(v["cohort_day"]),
        _text(v["unit_id"]),
        _text(v["order_type"]),
        _datetime(v["due"]),
        _optional(_datetime, v["completed_at"]),
        _int(v["returns"]),
        tuple(_text(s) for s in _list(v["seen"])),
        _int(v["version"]),
        _int(v.get("unsatisfied_visits", 0)),
        _optional(_datetime, v.get("supervision_due")),
        _bool(v.get("supervised", False)),
    )


def _window_row_out(w: WindowRow) -> dict[str, Any]:
    return {
        "unit_id": w.unit_id,
        "day": _date_text(w.day),
        "source_topic": w.source_topic,
        "source_partition": w.source_partition,
        "version": w.version,
        "counts": w.counts,
    }


def _window_row(values: Any) -> WindowRow:
    v = _fields_of(values, WindowRow)
    return WindowRow(
        _text(v["unit_id"]),
        _date(v["day"]),
        _text(v["source_topic"]),
        _int(v["source_partition"]),
        _int(v["version"]),
        {_text(k): _int(n) for k, n in _dict(v["counts"]).items()},
    )


def _plain_fields(value: Any) -> dict[str, Any]:
    """A dataclass whose fields are all JSON values (strings and integers): as they are."""
    return {f.name: getattr(value, f.name) for f in fields(value)}


def _return_row(values: Any) -> ReturnRow:
    v = _fields_of(values, ReturnRow)
    return ReturnRow(_int(v["month"]), _text(v["order_id"]), _int(v["times"]))


def _stored(values: Any) -> Stored:
    v = _fields_of(values, Stored)
    return Stored(_text(v["payload"]), _text(v["source_topic"]), _int(v["source_partition"]), _int(v["source_offset"]))


def _generation(values: Any) -> Generation:
    v = _fields_of(values, Generation)
    return Generation(_int(v.get("gen", 0)), _text(v.get("kind", "")))


def _batch_out(b: Batch) -> dict[str, Any]:
    return {
        "events": _events_out(b.events),
        "deadletters": [_deadletter_out(d) for d in b.deadletters],
        "windows": [_window_row_out(w) for w in b.windows],
        "orders": [_order_row_out(o) for o in b.orders],
        "returns": [_plain_fields(r) for r in b.returns],
    }


def _batch(values: Any) -> Batch:
    v = _fields_of(values, Batch)
    return Batch(
        [_event(row) for row in _list(v.get("events", []))],
        [_deadletter(d) for d in _list(v.get("deadletters", []))],
        [_window_row(w) for w in _list(v.get("windows", []))],
        [_order_row(o) for o in _list(v.get("orders", []))],
        [_return_row(r) for r in _list(v.get("returns", []))],
    )


_CLASSES: dict[type, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    Batch: (_batch_out, _batch),
    DeadLetter: (_deadletter_out, _deadletter),
    OrderRow: (_order_row_out, _order_row),
    WindowRow: (_window_row_out, _window_row),
    ReturnRow: (_plain_fields, _return_row),
    Stored: (_plain_fields, _stored),
    Generation: (_plain_fields, _generation),
}
_NAMES = {cls: frozenset(f.name for f in fields(cls)) for cls in _CLASSES}


# -- tagged values, anywhere else -------------------------------------------------------------------


def _default(value: Any) -> Any:
    """What orjson does not write itself (or is told not to): tagged, or a :class:`TypeError`."""
    kind = type(value)
    classes = _CLASSES.get(kind)
    if classes is not None:
        return {TAG: kind.__name__, "v": classes[0](value)}
    if isinstance(value, datetime):
        return {TAG: "datetime", "v": _datetime_text(value)}
    if isinstance(value, date):
        return {TAG: "date", "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {TAG: "decimal", "v": str(value)}
    if isinstance(value, bytes):
        return {TAG: "bytes", "v": _bytes_text(value)}
    raise TypeError(f"the store codec does not write {kind.__name__}")


def _value(value: Any) -> Any:
    """A parsed JSON value with its tagged objects rebuilt, at any depth."""
    if type(value) is list:
        return [v if type(v) in _PLAIN else _value(v) for v in value]
    if type(value) is not dict:
        return value
    if TAG not in value:
        return {k: v if type(v) in _PLAIN else _value(v) for k, v in value.items()}
    tag = value[TAG]
    decode = _DECODERS.get(tag) if isinstance(tag, str) else None
    if decode is None:
        raise CodecError(f"unknown tag {tag!r}")
    if value.keys() != {TAG, "v"}:
        raise CodecError(f"a {tag} tag is {{{TAG!r}, 'v'}}, not {sorted(value)}")
    return decode(value["v"])


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(_value(v) for v in _list(value))


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": _datetime,
    "date": _date,
    "decimal": _decimal,
    "bytes": _bytes,
    "tuple": _tuple,
    **{cls.__name__: from_wire for cls, (_, from_wire) in _CLASSES.items()},
}
