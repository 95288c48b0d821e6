"""The worker's batch reader: source partitions read in batches, past Faust's per-event stream.

Faust still runs the group: it is assigned the source partitions (and their order-state
changelog partitions), recovers the table and serves the pages. But its per-record
stream machinery (events, acks, buffers, sensors) cost more than the whole job
(bench/README.md), so once Faust has positioned a partition the worker pauses it in
Faust's consumer and reads it here, with a plain aiokafka consumer of no group, from the
ledger's offset, ``batch_size`` records at a time. The batch goes through the same
``Pipeline.process`` as the agents' batches, so the ledger, gap and identity rules hold
unchanged; if Faust delivers a record anyway, the ledger drops it as already processed.

Assignment changes are applied between batches, never during one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from hotline.streams.processing import Record, Source

log = logging.getLogger(__name__)

Handle = Callable[[list[Record], str], Awaitable[Any]]


class BatchReader:
    """Reads the partitions it is given, from the offsets it is given, and hands batches on."""

    def __init__(
        self,
        client_options: dict[str, Any],
        kinds: Mapping[str, str],
        handle: Handle,
        batch_size: int,
        within_s: float,
    ) -> None:
        self._options = client_options
        self._kinds = dict(kinds)  # topic -> the kind of batch ("calls" / "orders")
        self._handle = handle
        self._batch_size = batch_size
        self._within_ms = max(1, int(within_s * 1000))
        self._pending: dict[TopicPartition, int] | None = None
        self._changed = asyncio.Event()
        self.assigned: set[TopicPartition] = set()

    def assign(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Read these partitions from these offsets from the next batch on (empty: read nothing)."""
        self._pending = {TopicPartition(t, p): o for (t, p), o in positions.items()}
        self._changed.set()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self._options,
        )
        await consumer.start()
        try:
            while True:
                if self._pending is not None:
                    self._apply(consumer, self._pending)
                if not self.assigned:
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                fetched = await consumer.getmany(timeout_ms=self._within_ms, max_records=self._batch_size)
                await self._hand_on(fetched)
        finally:
            await consumer.stop()

    def _apply(self, consumer: AIOKafkaConsumer, positions: dict[TopicPartition, int]) -> None:
        self._pending = None
        consumer.assign(list(positions))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        self.assigned = set(positions)
        log.info("batch reader: reading %d partitions", len(positions))

    async def _hand_on(self, fetched: Mapping[TopicPartition, list[Any]]) -> None:
        by_kind: dict[str, list[Record]] = {}
        for tp, messages in fetched.items():
            if tp not in self.assigned or not messages:
                continue
            records = by_kind.setdefault(self._kinds[tp.topic], [])
            records.extend(Record(Source(tp.topic, tp.partition, m.offset), m.key, m.value) for m in messages)
        for kind, records in by_kind.items():
            await self._handle(records, kind)
