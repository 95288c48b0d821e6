"""The replay file: one ``{"topic", "key", "event"}`` line per record, as ``hotline generate`` writes it.

The event bytes are kept verbatim, so a replayed month is the generated month.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from hotline.schemas.events import route_of


def route(record: bytes) -> tuple[str, str]:
    """Kafka topic (logical name) and key of a record (``schemas.events.route_of``)."""
    topic, key = route_of(json.loads(record))
    return topic, str(key)


def write_jsonl(records: Iterable[bytes], out: Path) -> int:
    """One line per record: ``{"topic", "key", "event"}``, the event bytes kept verbatim."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = 0
    with out.open("wb") as fh:
        for record in records:
            topic, key = route(record)
            head = json.dumps({"topic": topic, "key": key}, ensure_ascii=False)[:-1]
            fh.write(head.encode() + b', "event": ' + record + b"}\n")
            lines += 1
    return lines
