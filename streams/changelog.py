"""The order table's changelog, written a batch at a time.

Faust sends one changelog record per table write through its per-message producer path
(``Table.__setitem__`` → ``send_changelog`` → ``Topic.send_soon`` → its producer buffer),
which cost about a quarter of the worker's event-loop time (py-spy, bench.peers). Here a
batch's changed orders go into the table's store directly and their changelog records
into one producer batch per partition (aiokafka ``create_batch`` / ``send_batch``): the same
topic, the same key and value bytes (the table's own serializers), so Faust's recovery reads
them back exactly as if it had written them.

The partition is the order's partition of the orders topic (murmur2 of the order id's bytes, as
its producers key it), not the hash of the table's serialized key (JSON: ``"XT…"`` with quotes,
which lands elsewhere). Faust copartitions a table's changelog with its source topic: a worker
recovers, and is the active writer of, the changelog partitions of the source partitions it
reads, and replays the others as a standby. With the JSON hash, an order's state sat in a
partition another worker owned: after a rebalance the new owner did not recover it, and a
worker's standby replayed its own older writes over its newer states (seen with two workers:
completions lost, orders counted overdue). :meth:`Changelog.flush` returns once
Kafka has acknowledged every record (``acks=all``), before the ledger moves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer

from hotline.streams.alerts import key_partition


def topic_configs(segment_s: float) -> dict[str, str]:
    """The changelog topic's compaction, so a restart replays the open and recent orders, not history.

    An evicted order leaves a tombstone (``streams/eviction.py``). Kafka's cleaner compacts closed
    segments only (``segment.ms`` rolls them), and without ``max.compaction.lag.ms`` a log is
    cleaned only once half of it is dirty; a tombstone itself is dropped on a pass more than
    ``delete.retention.ms`` after the pass that first kept it. All three at one period bound how
    long an evicted order's records stay: about three periods. A short ``delete.retention.ms`` is
    safe here: a restart that misses a tombstone (dropped while it read) keeps the order's last
    state, the one ClickHouse holds, and the next eviction sweep removes it again."""
    period_ms = str(int(segment_s * 1000))
    return {"segment.ms": period_ms, "max.compaction.lag.ms": period_ms, "delete.retention.ms": period_ms}


class Changelog:
    """Table writes for one batch: stored at once, their changelog records sent in bulk."""

    def __init__(self, table: Any, partitions: int, producer_options: Mapping[str, Any]) -> None:
        self.table = table
        self.partitions = partitions
        self.options = dict(producer_options)
        self.producer: AIOKafkaProducer | None = None
        self._pending: dict[int, list[tuple[bytes, bytes | None]]] = {}

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(**self.options)
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    def set(self, states: Mapping[str, Any]) -> None:
        """The new values, in the table at once; their changelog records queued for :meth:`flush`."""
        data = self.table.data
        serializers = self.table.app.serializers
        for key, value in states.items():
            data[key] = value
            key_bytes = serializers.dumps_key(self.table.key_type, key, serializer=self.table.key_serializer)
            value_bytes = serializers.dumps_value(self.table.value_type, value, serializer=self.table.value_serializer)
            partition = key_partition(key, self.partitions)  # the orders topic's, not the JSON key's
            self._pending.setdefault(partition, []).append((key_bytes, value_bytes))

    def delete(self, keys: list[str]) -> None:
        """The keys out of the table at once; their tombstones (a null value) queued for :meth:`flush`:
        Faust's recovery deletes a key on one, and the compacted topic forgets the key."""
        data = self.table.data
        serializers = self.table.app.serializers
        for key in keys:
            data.pop(key, None)
            key_bytes = serializers.dumps_key(self.table.key_type, key, serializer=self.table.key_serializer)
            self._pending.setdefault(key_partition(key, self.partitions), []).append((key_bytes, None))

    async def flush(self) -> None:
        """Send what :meth:`set` queued, one producer batch per partition, and wait for the acks."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        assert self.producer is not None, "changelog producer not started"
        try:
            await self._send(self.producer, pending)
        except BaseException:
            # Not acknowledged: send them again with the next flush, ahead of anything set since
            # (per partition, the latest value of a key stays the last one written).
            for partition, records in pending.items():
                self._pending[partition] = records + self._pending.get(partition, [])
            raise

    async def _send(self, producer: AIOKafkaProducer, pending: dict[int, list[tuple[bytes, bytes | None]]]) -> None:
        topic = self.table.changelog_topic.get_topic_name()
        acks = []
        for partition, records in pending.items():
            batch = producer.create_batch()
            for key, value in records:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    acks.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*acks)
