"""Read a gap of a source partition straight from Kafka, beside Faust's consumer.

When the stream delivers an offset past the ledger's next one, the offsets in
between are read here, by a plain aiokafka consumer of no group (assigned, not
subscribed, so it never joins a rebalance), and processed before the batch goes on.
Offsets that Kafka cannot return any more (deleted by retention, or transaction
markers) come back as an unreadable range: the caller reports and counts them.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from hotline.streams.ledger import Gap
from hotline.streams.processing import Record, Source

log = logging.getLogger(__name__)

MAX_IDLE_FETCHES = 30


class GapReader:
    """One lazily started consumer, reused for every gap (gaps are rare)."""

    def __init__(self, client_options: dict[str, Any], fetch_timeout_ms: int = 1000) -> None:
        self._options = client_options
        self._fetch_timeout_ms = fetch_timeout_ms
        self._consumer: AIOKafkaConsumer | None = None

    async def _ready(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                group_id=None, enable_auto_commit=False, auto_offset_reset="none", **self._options
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def read(self, gap: Gap) -> list[Record]:
        """The gap's records in offset order; an unreadable range becomes one record without a value."""
        consumer = await self._ready()
        tp = TopicPartition(gap.topic, gap.partition)
        consumer.assign([tp])
        first = (await consumer.beginning_offsets([tp]))[tp]
        end_of_log = (await consumer.end_offsets([tp]))[tp]
        start = max(gap.start, first)
        records: list[Record] = []
        if start < gap.end and start < end_of_log:
            consumer.seek(tp, start)
            position, idle = start, 0
            while position < min(gap.end, end_of_log):
                fetched = await consumer.getmany(tp, timeout_ms=self._fetch_timeout_ms, max_records=gap.end - position)
                for message in fetched.get(tp, []):
                    if gap.start <= message.offset < gap.end:
                        source = Source(gap.topic, gap.partition, message.offset)
                        records.append(Record(source, message.key, message.value))
                moved = await consumer.position(tp)
                idle = 0 if moved > position else idle + 1
                if idle >= MAX_IDLE_FETCHES:
                    # Kafka holds these offsets but does not answer: an outage, not a gap. The
                    # caller retries the batch with backoff instead of calling them unreadable.
                    raise ConnectionError(f"{gap.topic}[{gap.partition}] did not return offset {position}")
                position = moved
        log.warning(
            "re-read %s[%d] offsets %d-%d that the stream skipped: %d records",
            gap.topic,
            gap.partition,
            gap.start,
            gap.end - 1,
            len(records),
        )
        return _with_unreadable(gap, records)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


def _with_unreadable(gap: Gap, records: list[Record]) -> list[Record]:
    """Insert one value-less record per run of offsets Kafka did not return."""
    out: list[Record] = []
    expected = gap.start
    for record in [*records, None]:
        until = gap.end if record is None else record.source.offset
        if until > expected:
            source = Source(gap.topic, gap.partition, until - 1)
            out.append(Record(source, None, None, unreadable_from=expected))
        if record is not None:
            out.append(record)
            expected = record.source.offset + 1
    return out
