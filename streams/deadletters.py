"""How a dead letter goes to the dead-letter topic: the original record, and why, in headers.

The value is the record's original bytes, so an operator can fix and re-send it. A record
above :data:`hotline.schemas.events.MAX_RECORD_BYTES` is sent as a truncated copy with its size
and SHA-256, and a key above :data:`MAX_KEY_BYTES` likewise, so that a dead letter always fits
the producer's request size: a record that cannot be dead-lettered would stop its partition.
"""

from __future__ import annotations

import hashlib
from typing import Any

from hotline.schemas.events import MAX_RECORD_BYTES
from hotline.sinks.base import DeadLetter

ERROR_HEADER = "hotline.error"
CONFLICT_HEADER = "hotline.conflict.source"  # topic[partition]@offset of the event that holds the id
MAX_KEY_BYTES = 1024  # the pipeline's keys are ids (an order, a call, a unit): far below this


def deadletter_key(key: bytes | None) -> tuple[bytes | None, dict[str, bytes]]:
    """The key a dead letter is sent under: the record's, or a truncated copy with its size and SHA-256."""
    if key is None or len(key) <= MAX_KEY_BYTES:
        return key, {}
    headers = {
        "hotline.key.truncated.size": str(len(key)).encode(),
        "hotline.key.truncated.sha256": hashlib.sha256(key).hexdigest().encode(),
    }
    return key[:MAX_KEY_BYTES], headers


def deadletter_record(dead: DeadLetter) -> tuple[bytes, dict[str, bytes]]:
    """The dead letter's Kafka value and headers (its key: :func:`deadletter_key`)."""
    headers = {
        ERROR_HEADER: dead.error.encode(),
        "hotline.source.topic": dead.source_topic.encode(),
        "hotline.source.partition": str(dead.source_partition).encode(),
        "hotline.source.offset": str(dead.source_offset).encode(),
        **dict(dead.headers),
        **deadletter_key(dead.key)[1],
    }
    value = dead.raw
    if len(value) > MAX_RECORD_BYTES:
        headers["hotline.truncated.size"] = str(len(value)).encode()
        headers["hotline.truncated.sha256"] = hashlib.sha256(value).hexdigest().encode()
        value = value[:MAX_RECORD_BYTES]
    return value, headers


async def send_deadletters(topic: Any, letters: list[DeadLetter]) -> None:
    """Each to the dead-letter topic (a Faust topic), delivered before the batch is stored: at least once."""
    deliveries = []
    for dead in letters:
        value, headers = deadletter_record(dead)
        key, _ = deadletter_key(dead.key)
        deliveries.append(await topic.send(key=key, value=value, headers=headers))
    for delivery in deliveries:
        if delivery is not None:
            await delivery
