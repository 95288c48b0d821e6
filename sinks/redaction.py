"""What of a record may be kept in storage: personal data stripped or masked, the size bounded.

A dead letter's copy in ClickHouse and an event's audit payload must not hold the caller's phone
or name (the original bytes stay only in the dead-letter topic, bounded by its retention); the
masking itself (phones in any form, the caller's own values) is ``hotline.schemas.personal``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hotline.schemas.events import MAX_RECORD_BYTES, within_years
from hotline.schemas.personal import mask_personal, personal_values
from hotline.sinks import originals
from hotline.sinks.base import DeadLetter

REDACTED_CHARS = 4096  # of a dead letter kept in ClickHouse; the topic keeps the whole record


def redact(raw: bytes) -> tuple[str, datetime | None]:
    """The dead letter's copy for ClickHouse, and its event time when the record has one.

    A record that parses loses its ``caller``; one that does not gets its caller members
    masked. Either way phones, and the caller's values wherever else the record holds them
    (its name as the type tag, say), are masked, and at most :data:`REDACTED_CHARS`
    characters are kept.
    """
    text = raw[: REDACTED_CHARS * 4].decode("utf-8", errors="replace")
    personal = personal_values(text)
    occurred_at: datetime | None = None
    try:
        data = json.loads(raw) if len(raw) <= REDACTED_CHARS * 4 else None
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        occurred_at = _timestamp(data.get("occurred_at"))
        text = strip_personal(data)
    return mask_personal(text, personal)[:REDACTED_CHARS], occurred_at


def _timestamp(value: Any) -> datetime | None:
    """An aware timestamp within the years storage holds, or None."""
    try:
        ts = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if ts.tzinfo is None:
        return None
    try:
        return within_years(ts)
    except ValueError:
        return None


def strip_personal(payload: dict[str, Any]) -> str:
    """The audit copy of an event: everything but the caller's phone and name."""
    clean = {k: v for k, v in payload.items() if k != "caller"}
    return json.dumps(clean, ensure_ascii=False, separators=(",", ":"), default=str)


def deadletter_row(dead: DeadLetter, seal_with: bytes | None = None) -> list[Any]:
    """The dead letter as every store keeps it (the ``deadletter`` table's columns): its copy, key
    and error masked, each also of the caller values its record holds (a name quoted by the error
    or used as the key); the original sealed when a key is configured (``sinks/originals.py``)."""
    redacted, occurred_at = redact(dead.raw)
    personal = personal_values(dead.raw[: REDACTED_CHARS * 4].decode("utf-8", errors="replace"))
    key = mask_personal(dead.key[:REDACTED_CHARS].decode("utf-8", errors="replace"), personal) if dead.key else ""
    copy = redacted if dead.store_copy else ""
    error = mask_personal(dead.error, personal)
    sealed = _sealed_original(dead, seal_with)
    row = [dead.source_topic, dead.source_partition, dead.source_offset, error, copy, key, occurred_at]
    return [*row, sealed.ciphertext, sealed.key_id]


def _sealed_original(dead: DeadLetter, key: bytes | None) -> originals.Sealed:
    """The original sealed for redrive; nothing without a key, or for a record no producer could send again."""
    if key is None or not dead.store_copy or len(dead.raw) > MAX_RECORD_BYTES:
        return originals.Sealed("", "")
    where = originals.coordinates(dead.source_topic, dead.source_partition, dead.source_offset)
    return originals.seal(originals.Original(dead.key, dead.raw), key, where)
