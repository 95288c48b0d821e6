"""Sealed originals: a round trip, and every way a sealed original must refuse to open."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.sinks.originals import (
    Original,
    Sealed,
    Unreadable,
    coordinates,
    key_id_of,
    new_key,
    parse_key,
    seal,
    unseal,
)

KEY = parse_key(new_key())
HERE = coordinates("hotline.orders", 2, 41)


@given(st.one_of(st.none(), st.binary(max_size=64)), st.binary(max_size=512))
def test_a_sealed_original_opens_to_the_same_key_and_value(key: bytes | None, value: bytes) -> None:
    original = Original(key, value)
    assert unseal(seal(original, KEY, HERE), KEY, HERE) == original


def test_the_ciphertext_holds_no_byte_of_the_value_in_clear() -> None:
    phone = b"13912345678"
    sealed = seal(Original(b"k", b'{"caller":{"phone":"' + phone + b'"}}'), KEY, HERE)
    assert phone not in base64.b64decode(sealed.ciphertext)
    assert phone.decode() not in sealed.ciphertext


def test_the_key_id_names_the_sealing_key() -> None:
    assert seal(Original(None, b"x"), KEY, HERE).key_id == key_id_of(KEY)
    assert key_id_of(KEY) != key_id_of(parse_key(new_key()))


def test_an_altered_ciphertext_does_not_open() -> None:
    sealed = seal(Original(b"k", b"value"), KEY, HERE)
    raw = bytearray(base64.b64decode(sealed.ciphertext))
    raw[-1] ^= 1
    with pytest.raises(Unreadable, match="does not authenticate"):
        unseal(Sealed(base64.b64encode(bytes(raw)).decode(), sealed.key_id), KEY, HERE)


def test_a_ciphertext_moved_to_another_dead_letter_does_not_open() -> None:
    sealed = seal(Original(b"k", b"value"), KEY, HERE)
    with pytest.raises(Unreadable, match="does not authenticate"):
        unseal(sealed, KEY, coordinates("hotline.orders", 2, 42))


def test_a_rotated_key_says_the_original_is_unreadable_naming_both_keys() -> None:
    sealed = seal(Original(b"k", b"value"), KEY, HERE)
    other = parse_key(new_key())
    with pytest.raises(Unreadable, match=f"sealed with key {key_id_of(KEY)}.*{key_id_of(other)}"):
        unseal(sealed, other, HERE)


def test_no_key_configured_says_the_original_is_unreadable() -> None:
    sealed = seal(Original(b"k", b"value"), KEY, HERE)
    with pytest.raises(Unreadable, match="no HOTLINE_DEADLETTER_KEY is configured"):
        unseal(sealed, None, HERE)


def test_nothing_kept_says_so() -> None:
    with pytest.raises(Unreadable, match="no original was kept"):
        unseal(Sealed("", ""), KEY, HERE)


@pytest.mark.parametrize("text", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_key_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(ValueError, match=r"not base64|32 bytes in base64 are needed") as info:
        parse_key(text)
    assert text not in str(info.value)


# -- the dead-letter row (sinks/clickhouse.py) keeps the original only sealed --------------------

RECORD = b'{"type":"call.received","event_id":"e1","caller":{"phone":"13912345678","name":"\xe5\xbc\xa0\xe4\xb8\x89"}'


def test_a_dead_letter_row_keeps_its_original_sealed_and_no_phone_in_clear() -> None:
    from hotline.sinks.base import DeadLetter
    from hotline.sinks.redaction import deadletter_row as _deadletter_row

    row = _deadletter_row(DeadLetter("calls", 0, 7, "not JSON", RECORD, b"order-1"), KEY)
    assert "13912345678" not in repr(row) and "张三" not in repr(row)
    sealed = Sealed(row[7], row[8])
    assert unseal(sealed, KEY, coordinates("calls", 0, 7)) == Original(b"order-1", RECORD)


def test_without_a_key_a_dead_letter_row_keeps_no_original() -> None:
    from hotline.sinks.base import DeadLetter
    from hotline.sinks.redaction import deadletter_row as _deadletter_row

    row = _deadletter_row(DeadLetter("calls", 0, 7, "not JSON", RECORD, b"order-1"), None)
    assert row[7:] == ["", ""]
