"""How a dead letter goes to the dead-letter topic: the original record, and why, in headers.

The value is the record's original bytes, so an operator can fix and re-send it. A record
above :data:`hotline.schemas.events.MAX_RECORD_BYTES` is sent as a truncated copy with its size
and SHA-256, so that re-sending it can never exceed the producer's request size.
"""

from __future__ import annotations

import hashlib

from hotline.schemas.events import MAX_RECORD_BYTES
from hotline.sinks.clickhouse import DeadLetter

ERROR_HEADER = "hotline.error"
CONFLICT_HEADER = "hotline.conflict.source"  # topic[partition]@offset of the event that holds the id


def deadletter_record(dead: DeadLetter) -> tuple[bytes, dict[str, bytes]]:
    """The dead letter's Kafka value and headers."""
    headers = {
        ERROR_HEADER: dead.error.encode(),
        "hotline.source.topic": dead.source_topic.encode(),
        "hotline.source.partition": str(dead.source_partition).encode(),
        "hotline.source.offset": str(dead.source_offset).encode(),
        **dict(dead.headers),
    }
    value = dead.raw
    if len(value) > MAX_RECORD_BYTES:
        headers["hotline.truncated.size"] = str(len(value)).encode()
        headers["hotline.truncated.sha256"] = hashlib.sha256(value).hexdigest().encode()
        value = value[:MAX_RECORD_BYTES]
    return value, headers
