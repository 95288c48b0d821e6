"""The store's JSON codec (format version 2): every value and dataclass the store exchanges comes back
equal, and typed; what it does not write is refused, on either side."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hotline.sinks.base import Batch, DeadLetter, Generation, OrderRow, ReturnRow, Stored, WindowRow
from hotline.sinks.codec import CodecError, decode_as, dumps, loads, tagged_tuples
from tests.factories import event, folded

SHANGHAI = ZoneInfo("Asia/Shanghai")
AT = datetime(2019, 11, 4, 9, 31, 0, 123000, tzinfo=SHANGHAI)


def _round_trip(value: Any) -> Any:
    return loads(dumps(value))


ORDER = OrderRow(
    "O1", date(2019, 11, 4), "yuhu", "complaint", AT, AT + timedelta(days=1), 2, ("ev-1", "ev-2"), 3, 2, AT, True
)
OPEN_ORDER = OrderRow("O2", date(2019, 11, 5), "police", "help", AT, None, 0, (), 1)
WINDOW = WindowRow("yuhu", date(2019, 11, 4), "hotline.orders", 3, 41, {"dispatched": 2, "returned": 1})
DEAD = DeadLetter(
    "hotline.orders", 1, 7, "not JSON: 张三", b"\x00\xff{", b"O1", (("hotline.conflict.source", b"orders[0]@3"),), False
)
PLAIN_DEAD = DeadLetter("hotline.calls", 0, 1, "bad", b"{")


@pytest.mark.parametrize(
    "value",
    [
        ORDER,
        OPEN_ORDER,
        WINDOW,
        WindowRow("city", date(2019, 11, 30), "import", 2, 0, {}),
        DEAD,
        PLAIN_DEAD,
        ReturnRow(201911, "O1", 3),
        Stored('{"event_id":"e1","note":"办结"}', "hotline.orders", 2, 99),
        Generation(),
        Generation(4, "pending-restate"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_every_dataclass_comes_back_equal_and_typed(value: Any) -> None:
    back = decode_as(type(value), _round_trip(value))
    assert back == value
    for name in value.__dataclass_fields__:
        assert type(getattr(back, name)) is type(getattr(value, name)), name


def test_an_order_rows_datetimes_keep_their_zone() -> None:
    back = decode_as(OrderRow, _round_trip(ORDER))
    assert back.due.tzinfo == SHANGHAI and back.due == AT and back.due.isoformat() == AT.isoformat()
    assert back.seen == ("ev-1", "ev-2")


def test_a_folded_batch_comes_back_equal() -> None:
    batch: Batch = folded(
        [
            event("order.dispatched", order_id="O1", due_at="2019-11-08T09:00:00+08:00"),
            event("order.returned", order_id="O1", occurred_at="2019-11-05T09:00:00+08:00"),
            event(
                "check.test_call", deductions=[{"item": "服务规范", "points": 1.5}, {"item": "业务知识", "points": 2}]
            ),
            event("call.received"),
        ]
    )
    batch.deadletters.append(DEAD)
    assert batch.events and batch.windows and batch.orders and batch.returns
    back = decode_as(Batch, _round_trip(batch))
    assert back == batch
    check = next(row for row in back.events if row["type"] == "check.test_call")
    assert check["deduction_points"] == [Decimal("1.5"), Decimal("2")] and check["points"] == Decimal("3.5")
    assert all(
        type(a) is type(b)
        for row, orig in zip(back.events, batch.events, strict=True)
        for a, b in zip(row.values(), orig.values(), strict=True)
    )


def test_an_empty_batch_comes_back_empty() -> None:
    assert decode_as(Batch, _round_trip(Batch())) == Batch()


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**63),
        2**64 - 1,
        1.25,
        "",
        "回访满意",
        b"",
        b"\x00\x01\xfe",
        Decimal("99.53"),
        Decimal("-0.01"),
        date(2000, 1, 1),
        AT,
        datetime(2019, 11, 4, 1, 0, tzinfo=UTC),
        datetime(2019, 11, 4, 1, 0, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2019, 11, 4, 1, 0),  # naive stays naive
        [1, "a", None, [AT, date(2019, 11, 1)]],
        {"unit_id": "yuhu", "day": date(2019, 11, 4), "due": AT, "points": Decimal("1.50"), "seen": ["a"]},
    ],
)
def test_every_value_comes_back_equal_and_typed(value: Any) -> None:
    back = _round_trip(value)
    assert back == value and type(back) is type(value)
    if isinstance(value, datetime):
        assert back.utcoffset() == value.utcoffset() and back.isoformat() == value.isoformat()


def test_tuples_come_back_as_tuples_where_tagged() -> None:
    params = {"tps": [("hotline.orders", 0), ("hotline.calls", 3)], "days": [date(2019, 11, 4)], "one": ("a",)}
    back = _round_trip(tagged_tuples(params))
    assert back == params
    assert all(type(tp) is tuple for tp in back["tps"]) and type(back["one"]) is tuple
    assert _round_trip((1, 2)) == [1, 2], "untagged, a tuple is a JSON list"


def test_the_wire_is_plain_json_with_chinese_as_is() -> None:
    text = dumps({"unit": "雨湖区", "at": AT}).decode("utf-8")
    assert "雨湖区" in text
    zoned = "2019-11-04T09:31:00.123000+08:00[Asia/Shanghai]"  # RFC 9557: the offset, and the zone
    assert json.loads(text) == {"unit": "雨湖区", "at": {"$t": "datetime", "v": zoned}}


def test_event_rows_carry_plain_values_converted_by_column_type() -> None:
    row = {
        "event_id": "e1",
        "occurred_at": datetime(2019, 11, 4, 9, 0, tzinfo=timezone(timedelta(hours=8))),
        "due_at": AT,
        "points": Decimal("3.50"),
        "deduction_points": [Decimal("1.5"), Decimal("2")],
        "category": "环境保护",
        "schema_version": 1,  # not a column: any JSON value is kept as it is
    }
    wire = json.loads(dumps(Batch([row])))
    assert wire["v"]["events"] == [
        {
            **row,
            "occurred_at": "2019-11-04T09:00:00+08:00",
            "due_at": "2019-11-04T09:31:00.123000+08:00[Asia/Shanghai]",
            "points": "3.50",
            "deduction_points": ["1.5", "2"],
        }
    ]
    back = decode_as(Batch, loads(dumps(Batch([row])))).events[0]
    assert back == row and back["due_at"].tzinfo == SHANGHAI and back["occurred_at"].tzinfo != SHANGHAI
    assert back["deduction_points"][0] == Decimal("1.5") and type(back["points"]) is Decimal


@pytest.mark.parametrize(
    "row",
    [
        {"event_id": "e1", "seen_at": AT},  # a datetime outside the typed columns: it would come back a string
        {"event_id": "e1", "share": Decimal("0.5")},
        {"event_id": "e1", "occurred_at": "2019-11-04T09:00:00+08:00"},  # text in a datetime column: not one
        {"event_id": "e1", "points": 1.5},
        {"event_id": "e1", "raw": b"x"},
    ],
)
def test_an_event_row_value_that_would_not_come_back_as_it_is_is_not_written(row: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        dumps(Batch([row]))


def test_json_has_no_nan_so_it_is_null() -> None:
    """orjson writes NaN and infinities as null (the docstring says so); no query of the store yields them."""
    assert loads(dumps([float("nan"), float("inf")])) == [None, None]


def test_integers_are_64_bit() -> None:
    with pytest.raises(TypeError):
        dumps(2**64)
    with pytest.raises(TypeError):
        dumps({"n": -(2**63) - 1})


@pytest.mark.parametrize(
    "wire",
    [
        b"{not json",
        b'{"$t": "pickle", "v": "gASV"}',
        b'{"$t": 1, "v": 2}',
        b'{"$t": "bytes", "v": "***"}',
        b'{"$t": "decimal", "v": "one"}',
        b'{"$t": "date", "v": "2019-02-30"}',
        b'{"$t": "datetime", "v": 5}',
        b'{"$t": "datetime", "v": "2019-11-04T09:00:00+08:00[Mars/Olympus]"}',
        b'{"$t": "datetime", "v": "2019-11-04T09:00:00[Asia/Shanghai]"}',  # a zone, and no offset
        b'{"$t": "datetime", "v": "2019-11-04T09:00:00+08:00Asia/Shanghai]"}',
        b'{"$t": "datetime", "v": "2019-11-04T09:00:00+08:00", "z": "Asia/Shanghai"}',  # version 1
        b'{"$t": "date", "v": "2019-11-04", "x": 1}',
        b'{"$t": "Generation", "v": {"gen": 1, "kind": "x", "extra": 2}}',
        b'{"$t": "Generation", "v": {"gen": "1"}}',
        b'{"$t": "ReturnRow", "v": {"month": 201911, "order_id": "O1"}}',
        b'{"$t": "ReturnRow", "v": {"month": true, "order_id": "O1", "times": 1}}',
        b'{"$t": "Batch", "v": {"orders": [1]}}',
        b'{"$t": "Batch", "v": {"events": [[1]]}}',
        b'{"$t": "Batch", "v": {"events": [{"occurred_at": 5}]}}',
        b'{"$t": "Batch", "v": {"events": [{"occurred_at": "2019-11-04"}]}}',
        b'{"$t": "Batch", "v": {"events": [{"occurred_at": {"$t": "datetime", "v": "2019-11-04T09:00:00+08:00"}}]}}',
        b'{"$t": "Batch", "v": {"events": [{"points": "1.5x"}]}}',
        b'{"$t": "Batch", "v": {"events": [{"deduction_points": "1.5"}]}}',
        b'{"$t": "OrderRow", "v": {"order_id": "O1", "cohort_day": {"$t": "date", "v": "2019-11-04"}}}',
        b'{"$t": "WindowRow", "v": {"unit_id": "u", "day": "2019-11-04", "source_topic": "t", '
        b'"source_partition": 0, "version": 1, "counts": {"dispatched": "2"}}}',
        b'{"$t": "DeadLetter", "v": {"source_topic": "t", "source_partition": 0, "source_offset": 1, '
        b'"error": "e", "raw": "not bytes"}}',
        b'{"$t": "DeadLetter", "v": {"source_topic": "t", "source_partition": 0, "source_offset": 1, '
        b'"error": "e", "raw": {"$t": "bytes", "v": ""}}}',
        b'[' * 5000 + b']' * 5000,
    ],
)
def test_anything_else_is_refused(wire: bytes) -> None:
    with pytest.raises(CodecError):
        loads(wire)


def test_a_value_it_does_not_know_is_not_written() -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})
    with pytest.raises(TypeError):
        dumps({1, 2})


def test_decode_as_checks_the_type() -> None:
    with pytest.raises(CodecError):
        decode_as(OrderRow, _round_trip(WINDOW))
