"""The sink's values and dataclasses as JSON, between workers and the storage owner (``hotline store``).

JSON, never pickle: the store decodes only what this module names. A value that JSON has no
type for travels as a *tagged* object ``{"$t": tag, "v": …}``:

* ``datetime`` (ISO 8601; an aware one keeps its offset, and its IANA zone as ``"z"`` when it
  has one, so ``Asia/Shanghai`` comes back as ``ZoneInfo("Asia/Shanghai")``), ``date`` (ISO),
  ``Decimal`` (its string), ``bytes`` (base64), a ``tuple`` (its items; only where
  :func:`tagged_tuples` tags them: query parameters, where ClickHouse tells ``(a, b)`` from
  ``[a, b]``);
* the sink's dataclasses by name: :class:`Batch`, :class:`DeadLetter`, :class:`OrderRow`,
  :class:`WindowRow`, :class:`ReturnRow`, :class:`Stored`, :class:`Generation`, each field by
  name and rebuilt with its own types (``OrderRow.seen`` a tuple, ``DeadLetter.headers`` pairs
  of a name and bytes).

Every JSON object with a ``"$t"`` key is a tag, so plain mappings must not use that key (the
sink's rows are keyed by column names, windows' counts by metric names). An unknown tag, or a
tag whose value does not fit, is a :class:`CodecError`, never a guess.

Encoding goes through ``json.dumps(default=…)``: strings, numbers, lists and row dicts are
written by the C encoder and only the values above reach Python, so a batch of events costs
little more than its JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hotline.sinks.clickhouse import Batch, DeadLetter, Generation, OrderRow, ReturnRow, Stored, WindowRow

TAG = "$t"
T = TypeVar("T")


class CodecError(ValueError):
    """What arrived is not a value this codec writes."""


def dumps(value: Any) -> bytes:
    """``value`` as UTF-8 JSON (Chinese text as is)."""
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """JSON written by :func:`dumps`, every tagged object rebuilt; :class:`CodecError` otherwise."""
    try:
        return json.loads(data, object_hook=_object)
    except CodecError:
        raise
    except (ValueError, TypeError, KeyError) as exc:  # malformed JSON, or a tag's value of the wrong shape
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


# -- encoding -----------------------------------------------------------------------------------


def _default(value: Any) -> Any:
    """What the JSON encoder does not know: tagged."""
    if isinstance(value, datetime):
        tagged: dict[str, Any] = {TAG: "datetime", "v": value.isoformat()}
        if isinstance(value.tzinfo, ZoneInfo):
            tagged["z"] = value.tzinfo.key
        return tagged
    if isinstance(value, date):
        return {TAG: "date", "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {TAG: "decimal", "v": str(value)}
    if isinstance(value, bytes):
        return {TAG: "bytes", "v": base64.b64encode(value).decode("ascii")}
    kind = type(value)
    encode = _ENCODERS.get(kind)
    if encode is not None:
        return {TAG: kind.__name__, "v": encode(value)}
    raise TypeError(f"the store codec does not write {kind.__name__}")


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in fields(value)}


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    cls: _fields for cls in (Batch, DeadLetter, OrderRow, WindowRow, ReturnRow, Stored, Generation)
}


# -- decoding -----------------------------------------------------------------------------------


def _object(obj: dict[str, Any]) -> Any:
    """A JSON object: a tagged value rebuilt, any other returned as is (inner values come first)."""
    tag = obj.get(TAG)
    if tag is None:
        return obj
    decode = _DECODERS.get(tag) if isinstance(tag, str) else None
    if decode is None:
        raise CodecError(f"unknown tag {tag!r}")
    return decode(obj)


def _datetime(obj: dict[str, Any]) -> datetime:
    value = datetime.fromisoformat(_text(obj["v"]))
    zone = obj.get("z")
    if zone is not None:
        try:
            value = value.astimezone(ZoneInfo(_text(zone)))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CodecError(f"unknown time zone {zone!r}") from exc
    return value


def _date(obj: dict[str, Any]) -> date:
    return date.fromisoformat(_text(obj["v"]))


def _decimal(obj: dict[str, Any]) -> Decimal:
    try:
        return Decimal(_text(obj["v"]))
    except InvalidOperation as exc:
        raise CodecError(f"not a decimal: {obj['v']!r}") from exc


def _bytes(obj: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(_text(obj["v"]), validate=True)
    except binascii.Error as exc:
        raise CodecError(f"not base64: {exc}") from exc


def _tuple(obj: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(_list(obj["v"]))


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


def _fields_of(obj: dict[str, Any], cls: type) -> dict[str, Any]:
    """The tagged dataclass's fields: exactly its own names (defaults may be left out)."""
    values = obj["v"]
    if not isinstance(values, dict):
        raise CodecError(f"{cls.__name__}: expected its fields")
    names = {f.name for f in fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise CodecError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
    return values


def _optional(value: Any, kind: type[T]) -> T | None:
    if value is not None and not isinstance(value, kind):
        raise CodecError(f"expected {kind.__name__} or null, got {type(value).__name__}")
    return value


def _typed(value: Any, kind: type[T]) -> T:
    if not isinstance(value, kind):
        raise CodecError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _deadletter(obj: dict[str, Any]) -> DeadLetter:
    v = _fields_of(obj, DeadLetter)
    headers = tuple((_text(name), _typed(value, bytes)) for name, value in (_list(h) for h in v.get("headers", [])))
    return DeadLetter(
        _text(v["source_topic"]),
        _int(v["source_partition"]),
        _int(v["source_offset"]),
        _text(v["error"]),
        _typed(v["raw"], bytes),
        _optional(v.get("key"), bytes),
        headers,
        _bool(v.get("store_copy", True)),
    )


def _order_row(obj: dict[str, Any]) -> OrderRow:
    v = _fields_of(obj, OrderRow)
    return OrderRow(
        _text(v["order_id"]),
        _typed(v["cohort_day"], date),
        _text(v["unit_id"]),
        _text(v["order_type"]),
        _typed(v["due"], datetime),
        _optional(v["completed_at"], datetime),
        _int(v["returns"]),
        tuple(_text(s) for s in _list(v["seen"])),
        _int(v["version"]),
        _int(v.get("unsatisfied_visits", 0)),
        _optional(v.get("supervision_due"), datetime),
        _bool(v.get("supervised", False)),
    )


def _window_row(obj: dict[str, Any]) -> WindowRow:
    v = _fields_of(obj, WindowRow)
    counts = _typed(v["counts"], dict)
    return WindowRow(
        _text(v["unit_id"]),
        _typed(v["day"], date),
        _text(v["source_topic"]),
        _int(v["source_partition"]),
        _int(v["version"]),
        {_text(k): _int(n) for k, n in counts.items()},
    )


def _return_row(obj: dict[str, Any]) -> ReturnRow:
    v = _fields_of(obj, ReturnRow)
    return ReturnRow(_int(v["month"]), _text(v["order_id"]), _int(v["times"]))


def _stored(obj: dict[str, Any]) -> Stored:
    v = _fields_of(obj, Stored)
    return Stored(_text(v["payload"]), _text(v["source_topic"]), _int(v["source_partition"]), _int(v["source_offset"]))


def _generation(obj: dict[str, Any]) -> Generation:
    v = _fields_of(obj, Generation)
    return Generation(_int(v.get("gen", 0)), _text(v.get("kind", "")))


def _batch(obj: dict[str, Any]) -> Batch:
    v = _fields_of(obj, Batch)
    events = [_typed(row, dict) for row in _list(v.get("events", []))]
    return Batch(
        events,
        [_typed(d, DeadLetter) for d in _list(v.get("deadletters", []))],
        [_typed(w, WindowRow) for w in _list(v.get("windows", []))],
        [_typed(o, OrderRow) for o in _list(v.get("orders", []))],
        [_typed(r, ReturnRow) for r in _list(v.get("returns", []))],
    )


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "datetime": _datetime,
    "date": _date,
    "decimal": _decimal,
    "bytes": _bytes,
    "tuple": _tuple,
    "Batch": _batch,
    "DeadLetter": _deadletter,
    "OrderRow": _order_row,
    "WindowRow": _window_row,
    "ReturnRow": _return_row,
    "Stored": _stored,
    "Generation": _generation,
}
