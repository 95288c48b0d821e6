"""Dead letters always fit the producer's request size (streams/deadletters.py)."""

from __future__ import annotations

import hashlib

from hotline.schemas.events import MAX_RECORD_BYTES
from hotline.sinks.base import DeadLetter
from hotline.streams.deadletters import MAX_KEY_BYTES, deadletter_key, deadletter_record

PRODUCER_LIMIT = 1_048_576  # aiokafka's max_request_size, Kafka's message.max.bytes


def test_a_megabyte_key_is_sent_truncated_with_its_size_and_digest() -> None:
    key = b"k" * 1_000_000
    dead = DeadLetter("hotline.orders", 0, 7, "not JSON", b"\xff" * 10, key)
    sent_key, _ = deadletter_key(dead.key)
    value, headers = deadletter_record(dead)
    assert sent_key == key[:MAX_KEY_BYTES]
    assert headers["hotline.key.truncated.size"] == b"1000000"
    assert headers["hotline.key.truncated.sha256"] == hashlib.sha256(key).hexdigest().encode()
    assert len(value) + len(sent_key) + sum(len(k) + len(v) for k, v in headers.items()) < PRODUCER_LIMIT


def test_a_huge_value_and_a_huge_key_together_still_fit() -> None:
    dead = DeadLetter("hotline.orders", 0, 7, "x" * 1000, b"v" * 2_000_000, b"k" * 2_000_000)
    value, headers = deadletter_record(dead)
    sent_key, _ = deadletter_key(dead.key)
    assert len(value) == MAX_RECORD_BYTES
    assert len(value) + len(sent_key or b"") + sum(len(k) + len(v) for k, v in headers.items()) < PRODUCER_LIMIT


def test_an_ordinary_key_is_sent_as_it_is() -> None:
    assert deadletter_key(b"XT2019110079") == (b"XT2019110079", {})
    assert deadletter_key(None) == (None, {})
