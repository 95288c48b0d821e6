"""The worker's batch reader: source partitions read in batches, past Faust's per-event stream.

Faust still runs the group: it is assigned the source partitions (and their order-state
changelog partitions), recovers the table and serves the pages. But its per-record
stream machinery (events, acks, buffers, sensors) cost more than the whole job
(bench/README.md), so once Faust has positioned a partition the worker pauses it in
Faust's consumer and reads it here, with a plain aiokafka consumer of no group, from the
ledger's offset, ``batch_size`` records at a time. The batch goes through the same
``Pipeline.process`` as the agents' batches, so the ledger, gap and identity rules hold
unchanged; if Faust delivers a record anyway, the ledger drops it as already processed.

One batch is read ahead: while batch N is being stored (ClickHouse works in its own thread,
without the GIL), batch N+1 is fetched and *prepared* (decoded: pure, no state), so the
event loop is not idle during the write. Batches are still handed on one at a time, in
order. Assignment changes are applied between batches, never during one; a batch read
ahead under an assignment that has changed since is dropped (the new positions re-read it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from hotline.streams.processing import Record, Source

log = logging.getLogger(__name__)

Prepare = Callable[[list[Record], str], Any]  # pure work on a batch that may run ahead of the previous one
Handle = Callable[[list[Record], str, Any], Awaitable[Any]]  # records, kind, what prepare made of them


class BatchReader:
    """Reads the partitions it is given, from the offsets it is given, and hands batches on."""

    def __init__(
        self,
        client_options: dict[str, Any],
        kinds: Mapping[str, str],
        prepare: Prepare,
        handle: Handle,
        batch_size: int,
        within_s: float,
    ) -> None:
        self._options = client_options
        self._kinds = dict(kinds)  # topic -> the kind of batch ("calls" / "orders")
        self._prepare = prepare
        self._handle = handle
        self._batch_size = batch_size
        self._within_ms = max(1, int(within_s * 1000))
        self._pending: dict[TopicPartition, int] | None = None
        self._assignments = 0  # assign() calls so far: a batch read under an older one is dropped
        self._changed = asyncio.Event()
        self.assigned: set[TopicPartition] = set()

    def assign(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Read these partitions from these offsets from the next batch on (empty: read nothing)."""
        self._pending = {TopicPartition(t, p): o for (t, p), o in positions.items()}
        self._assignments += 1
        self._changed.set()

    def reading(self) -> set[tuple[str, int]]:
        """The partitions read from the next batch on (an assignment not applied yet counts)."""
        partitions = self.assigned if self._pending is None else set(self._pending)
        return {(tp.topic, tp.partition) for tp in partitions}

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self._options,
        )
        await consumer.start()
        in_flight: asyncio.Future[None] | None = None
        try:
            while True:
                if self._pending is not None:
                    await _finished(in_flight)
                    in_flight = None
                    self._apply(consumer, self._pending)
                if not self.assigned:
                    await _finished(in_flight)
                    in_flight = None
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                read_under = self._assignments
                fetched = await consumer.getmany(timeout_ms=self._within_ms, max_records=self._batch_size)
                batches = self._prepared(fetched)  # while the batch before is being stored
                await _finished(in_flight)
                in_flight = None
                if read_under != self._assignments:
                    continue  # read under an assignment that has changed: the new positions re-read it
                if batches:
                    in_flight = asyncio.ensure_future(self._hand_on(batches))
        finally:
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()
            await consumer.stop()

    def _apply(self, consumer: AIOKafkaConsumer, positions: dict[TopicPartition, int]) -> None:
        self._pending = None
        consumer.assign(list(positions))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        self.assigned = set(positions)
        log.info("batch reader: reading %d partitions", len(positions))

    def _prepared(self, fetched: Mapping[TopicPartition, list[Any]]) -> list[tuple[str, list[Record], Any]]:
        by_kind: dict[str, list[Record]] = {}
        for tp, messages in fetched.items():
            if tp not in self.assigned or not messages:
                continue
            records = by_kind.setdefault(self._kinds[tp.topic], [])
            records.extend(Record(Source(tp.topic, tp.partition, m.offset), m.key, m.value) for m in messages)
        return [(kind, records, self._prepare(records, kind)) for kind, records in by_kind.items()]

    async def _hand_on(self, batches: list[tuple[str, list[Record], Any]]) -> None:
        for kind, records, prepared in batches:
            await self._handle(records, kind, prepared)


async def _finished(in_flight: asyncio.Future[None] | None) -> None:
    """Wait for the batch being handed on (its errors are the reader's); nothing is in flight after."""
    if in_flight is not None:
        await in_flight
