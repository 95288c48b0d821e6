"""Personal data is masked in every common written form, and ordinary numbers are left alone."""

from __future__ import annotations

import re

import pytest

from hotline.schemas.events import CheckTestCall, InvalidEvent, OrderReturned, parse_event
from hotline.schemas.personal import mask_free_text, mask_personal
from hotline.sinks.base import DeadLetter
from hotline.sinks.redaction import deadletter_row
from tests.factories import event, raw


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def test_a_mobile_written_with_dots_is_masked() -> None:
    assert mask_personal("回电 139.1234.5680 谢谢") == "回电 ************* 谢谢"


def test_a_mobile_written_with_hyphens_between_uneven_groups_is_masked() -> None:
    assert mask_personal("1391-23-456830") == "*" * len("1391-23-456830")


def test_a_landline_with_its_area_code_in_parentheses_is_masked_whole() -> None:
    assert mask_personal("座机(0731)5551234") == "座机*************"


def test_a_mobile_written_as_json_escapes_is_masked() -> None:
    escaped = "".join(f"\\u{ord(c):04x}" for c in "13912345678")
    assert _digits(mask_personal(f'{{"note":"{escaped}"')) == ""


def test_a_mobile_written_with_spaces_is_masked_in_free_text() -> None:
    assert mask_free_text("请回电 139 1234 5680") == "请回电 *************"


def test_a_mobile_in_full_width_digits_is_masked_in_free_text() -> None:
    assert mask_free_text("请回电１３９１２３４５６７８") == "请回电***********"


@pytest.mark.parametrize(
    "text",
    [
        "offsets 123456789 (1)",
        "record of 1048576 bytes",
        "day 20191105",
        "at 1573000000000 ms",
        "offset 13912345678901",
        "lag 13.912345678 s",
        "order XT2019110001",
        "event 00000000-0000-4000-8000-000000000001",
    ],
)
def test_ordinary_numbers_are_not_masked(text: str) -> None:
    assert (mask_personal(text), mask_free_text(text)) == (text, text)


def test_a_reason_does_not_quote_the_callers_name_used_as_the_type() -> None:
    record = raw(event("张三", caller={"phone": "13912345678", "name": "张三"}))
    with pytest.raises(InvalidEvent) as info:
        parse_event(record)
    assert "Input tag" in info.value.reason and "张三" not in info.value.reason


def test_a_reason_does_not_quote_a_member_name_under_caller() -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw(event("call.received", caller={"王五": "x"})))
    assert "call.received.caller." in info.value.reason and "王五" not in info.value.reason


def test_the_dead_letter_of_an_escaped_phone_with_a_phone_like_key_holds_no_digit_of_it() -> None:
    escaped = "".join(f"\\u{ord(c):04x}" for c in "13912345686")
    record = f'{{"type":"call.received","note":"{escaped}"'.encode()  # cut short: not JSON
    row = deadletter_row(DeadLetter("calls", 0, 5, "not JSON", record, b"139.1234.5686"))
    error, copy, key = row[3:6]
    assert (_digits(copy), _digits(key)) == ("", ""), row
    assert error == "not JSON"


def test_the_dead_letter_of_a_record_with_the_callers_name_as_its_type_holds_no_name() -> None:
    record = raw(event("张三", caller={"phone": "13912345678", "name": "张三"}))
    with pytest.raises(InvalidEvent) as info:
        parse_event(record)
    row = deadletter_row(DeadLetter("calls", 0, 6, info.value.reason, record, "张三".encode()))
    assert "张三" not in repr(row) and "13912345678" not in repr(row)


def test_a_returned_orders_reason_is_parsed_without_the_phone() -> None:
    returned = parse_event(raw(event("order.returned", reason="请回电13912345690")))
    assert isinstance(returned, OrderReturned)
    assert returned.reason == "请回电***********"


def test_a_test_calls_note_is_parsed_without_the_phone() -> None:
    call = parse_event(raw(event("check.test_call", note="市民留电 0731-5551234，工单XT2019110001")))
    assert isinstance(call, CheckTestCall)
    assert call.note == "市民留电 ************，工单XT2019110001"
