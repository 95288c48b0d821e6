"""The ledger against the real broker: where a worker resumes, and offsets Kafka no longer holds.

The worker's progress lives in ClickHouse (``sink_offsets``), not in the consumer group's
commits, so a group committed past what was processed (what faust's offset-skip bugs leave)
loses nothing; offsets deleted before they were processed are reported, not waited for.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from prometheus_client.parser import text_string_to_metric_families

from hotline.client import worker_get
from hotline.deploy import kafka
from hotline.replay import Record, produce, stored_progress, wait_until_sunk
from hotline.settings import Settings
from hotline.streams.gaps import GapReader
from hotline.streams.ledger import Gap
from tests.factories import event
from tests.integration.conftest import Worker
from tests.integration.seed import stored_event_ids

pytestmark = pytest.mark.integration


def _records(settings: Settings, calls: int, orders: int, call_key: str | None = None) -> list[Record]:
    """Contract events with ids of their own: calls (one key if ``call_key``) and order dispatches."""
    out: list[Record] = []
    for _ in range(calls):
        call_id = call_key or f"C-{uuid.uuid4().hex[:8]}"
        ev = event("call.received", event_id=f"ev-{uuid.uuid4().hex}", call_id=call_id)
        out.append(Record(settings.calls_topic, call_id.encode(), json.dumps(ev).encode()))
    for _ in range(orders):
        order_id = f"O-{uuid.uuid4().hex[:8]}"
        ev = event("order.dispatched", event_id=f"ev-{uuid.uuid4().hex}", order_id=order_id)
        out.append(Record(settings.orders_topic, order_id.encode(), json.dumps(ev).encode()))
    return out


def _event_ids(records: list[Record]) -> set[str]:
    return {json.loads(r.value)["event_id"] for r in records}


def _wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _metric(settings: Settings, name: str, labels: dict[str, str]) -> float | None:
    text = worker_get(settings, "/metrics").decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def _status(settings: Settings) -> dict[str, Any] | None:
    try:
        return worker_get(settings, "/status", timeout=10)  # type: ignore[no-any-return]
    except (OSError, urllib.error.HTTPError):
        return None


async def _commit_group_at_end(settings: Settings) -> dict[TopicPartition, int]:
    """Commit the worker's group at the end of every source partition, as a lost offset skip would."""
    consumer = AIOKafkaConsumer(group_id=settings.app_id, enable_auto_commit=False, **settings.kafka_client_options())
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p)
            for t in (settings.calls_topic, settings.orders_topic)
            for p in range(settings.partitions)
        ]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await consumer.commit(end)
        committed = {tp: await consumer.committed(tp) for tp in tps}
        assert committed == end, f"the group did not take the commit: {committed} != {end}"
        return end
    finally:
        await consumer.stop()


async def _delete_before(settings: Settings, tp: TopicPartition, offset: int) -> None:
    """Delete the partition's records below ``offset``, as retention would."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        low = await admin.delete_records({tp: RecordsToDelete(offset)}, timeout_ms=30_000)
        assert low == {tp: offset}
    finally:
        await admin.close()


def test_the_worker_resumes_at_its_ledger_not_at_the_groups_committed_offsets(
    isolated: Settings, worker: Worker
) -> None:
    before = _records(isolated, calls=4, orders=4)
    wait_until_sunk(asyncio.run(produce(before, isolated)), isolated, timeout=120)
    worker.stop()

    after = _records(isolated, calls=12, orders=12)
    last = asyncio.run(produce(after, isolated))
    end = asyncio.run(_commit_group_at_end(isolated))
    assert sum(end.values()) == len(before) + len(after)

    worker.start()
    wait_until_sunk(last, isolated, timeout=90)
    sent = _event_ids(before) | _event_ids(after)
    status = _status(isolated)
    assert status is not None
    assert status["counts"] == {"events": len(sent), "deadletter": 0}
    assert "resuming at ledger offset" in worker.log.read_text(errors="replace")
    worker.stop()

    stored = stored_event_ids(isolated)
    assert len(stored) == len(set(stored)), "an event id is stored twice"
    missing = sent - set(stored)
    assert not missing, f"{len(missing)} of {len(sent)} events never stored: {sorted(missing)[:10]}"
    assert set(stored) == sent


async def test_the_gap_reader_returns_deleted_offsets_as_one_unreadable_range(broker: Settings) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}.gap"
    kafka.ensure_topics(broker, {topic: 1})
    values = [f"record {i}".encode() for i in range(10)]
    last = await produce([Record(topic, b"k", v) for v in values], broker)
    assert last == {(topic, 0): 9}
    await _delete_before(broker, TopicPartition(topic, 0), 4)

    reader = GapReader(broker.kafka_client_options())
    try:
        records = await reader.read(Gap(topic, 0, 0, 10))
    finally:
        await reader.close()

    unreadable, *rest = records
    assert (unreadable.source.offset, unreadable.unreadable_from, unreadable.value) == (3, 0, None)
    assert [(r.source.offset, r.value, r.key, r.unreadable_from) for r in rest] == [
        (i, values[i], b"k", None) for i in range(4, 10)
    ]
    assert {(r.source.topic, r.source.partition) for r in records} == {(topic, 0)}


def test_offsets_deleted_before_the_worker_read_them_are_reported_and_passed(isolated: Settings) -> None:
    # The worker has never run: its ledger holds nothing (-1) for every partition.
    calls = _records(isolated, calls=10, orders=0, call_key="C-retention")
    orders = _records(isolated, calls=0, orders=6)
    last = asyncio.run(produce(calls + orders, isolated))
    ((calls_tp, calls_last),) = [(tp, o) for tp, o in last.items() if tp[0] == isolated.calls_topic]
    assert calls_last == 9
    deleted = 4
    asyncio.run(_delete_before(isolated, TopicPartition(*calls_tp), deleted))

    worker = Worker(isolated).start()
    try:
        wait_until_sunk(last, isolated, timeout=90)
        assert stored_progress(isolated) == last

        reason = f"offsets 0-{deleted - 1} ({deleted}) cannot be read from Kafka any more"

        def reported() -> bool:
            status = _status(isolated)
            return status is not None and any(reason in d["error"] for d in status.get("recent_deadletters", []))

        _wait_for("the unreadable range in /status", reported)
        status = _status(isolated)
        assert status is not None
        [dead] = [d for d in status["recent_deadletters"] if reason in d["error"]]
        assert (dead["topic"], dead["partition"], dead["offset"]) == (calls_tp[0], calls_tp[1], deleted - 1)
        assert status["counts"] == {"events": len(calls) - deleted + len(orders), "deadletter": 1}
        labels = {"topic": isolated.calls_topic}
        assert _metric(isolated, "hotline_unreadable_offsets_total", labels) == deleted
        assert _metric(isolated, "hotline_offset_gaps_total", labels) == deleted
        assert _metric(isolated, "hotline_deadlettered_records_total", labels) == 1
    finally:
        worker.stop()

    stored = set(stored_event_ids(isolated))
    readable = [json.loads(r.value)["event_id"] for r in calls[deleted:]]
    assert stored == set(readable) | _event_ids(orders)
