"""Events in, real Kafka, a real worker, chDB, query, compare."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hotline.client import worker_get
from hotline.settings import Settings
from tests.factories import event
from tests.integration.conftest import Worker, hotline

pytestmark = pytest.mark.integration


def _write(path: Path, lines: list[dict | str]) -> Path:
    path.write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) if isinstance(x, dict) else x for x in lines) + "\n",
        encoding="utf-8",
    )
    return path


def _small_month() -> list[dict | str]:
    """Two orders, one returned and moved, a visit, a supervision, calls; then bad records and more."""
    return [
        event("call.received", call_id="C1", caller={"phone": "13800000000", "name": "张三"}),
        event("call.handled", call_id="C1", order_id="O1"),
        event("order.dispatched", order_id="O1", unit_id="yuhu", due_at="2019-11-08T09:00:00+08:00"),
        event("order.returned", order_id="O1", unit_id="yuhu", occurred_at="2019-11-05T09:00:00+08:00"),
        event(
            "order.dispatched",
            order_id="O1",
            unit_id="police",
            occurred_at="2019-11-05T10:00:00+08:00",
            due_at="2019-11-12T10:00:00+08:00",
        ),
        event("order.completed", order_id="O1", unit_id="police", occurred_at="2019-11-06T10:00:00+08:00"),
        event(
            "order.visited",
            order_id="O1",
            unit_id="police",
            occurred_at="2019-11-07T10:00:00+08:00",
            outcome="unsatisfied",
            citizen_replied=False,
        ),
        {"topic": "orders", "key": "O8", "raw": "{this is not json"},
        {"topic": "orders", "key": "O9", "event": event("order.visited", order_id="O9", outcome="meh")},
        event("order.dispatched", order_id="O2", unit_id="police", occurred_at="2019-11-20T10:00:00+08:00"),
        event("order.completed", order_id="O2", unit_id="police", occurred_at="2019-12-20T10:00:00+08:00"),
        event("order.supervised", order_id="O1", unit_id="police", occurred_at="2019-11-09T10:00:00+08:00"),
    ]


def _bulletin(settings: Settings) -> dict:
    return worker_get(settings, "/bulletin/2019-11?format=json")  # type: ignore[no-any-return]


async def _dead_letters(settings: Settings, expected: int) -> list[tuple[bytes, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(
        settings.deadletter_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[tuple[bytes, dict[str, bytes]]] = []
    try:
        async with asyncio.timeout(60):
            while len(found) < expected:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    found += [(r.value, dict(r.headers)) for r in records]
    finally:
        await consumer.stop()
    return found


def test_events_through_the_pipeline_make_the_table(isolated: Settings, worker: Worker, tmp_path: Path) -> None:
    hotline(isolated, "replay", str(_write(tmp_path / "m.jsonl", _small_month())), "--wait")
    table = {row["unit_id"]: row for row in _bulletin(isolated)["units"]}
    assert set(table) == {"yuhu", "police"}
    police, yuhu = table["police"], table["yuhu"]
    assert (police["dispatched"], police["completed_on_time"], police["overdue"]) == ("2", "1", "1")
    assert (police["visits"], police["satisfaction_rate"], police["not_replied"]) == ("1", "0.00%", "1")
    assert police["phone_supervised"] == "1"
    assert (yuhu["dispatched"], yuhu["returned"], yuhu["visits"]) == ("0", "1", "-")


def test_bad_records_are_dead_lettered_and_the_rest_processed(
    isolated: Settings, worker: Worker, tmp_path: Path
) -> None:
    hotline(isolated, "replay", str(_write(tmp_path / "m.jsonl", _small_month())), "--wait")
    letters = asyncio.run(_dead_letters(isolated, 2))
    by_value = {value: headers for value, headers in letters}
    assert by_value[b"{this is not json"]["hotline.error"].startswith(b"not JSON")
    invalid = next(h for v, h in letters if b'"meh"' in v)
    assert b"outcome" in invalid["hotline.error"]
    assert invalid["hotline.source.topic"] == isolated.orders_topic.encode()
    assert int(invalid["hotline.source.offset"]) >= 0
    status = worker_get(isolated, "/status")
    assert status["counts"] == {"events": 10, "deadletter": 2}
    assert sorted(d["error"][:8] for d in status["recent_deadletters"]) == ["not JSON", "order.vi"]
    metrics = worker_get(isolated, "/metrics").decode()
    assert f'hotline_deadlettered_records_total{{topic="{isolated.orders_topic}"}} 2.0' in metrics
    assert f'hotline_events_processed_total{{topic="{isolated.orders_topic}"}} 10.0' in metrics
    assert "hotline_sink_batch_seconds_count" in metrics and "hotline_consumer_lag" in metrics
    # the order after the bad records was processed
    assert {row["unit_id"] for row in _bulletin(isolated)["units"]} == {"yuhu", "police"}


def test_replaying_the_same_file_twice_changes_no_count(isolated: Settings, worker: Worker, tmp_path: Path) -> None:
    path = _write(tmp_path / "m.jsonl", _small_month())
    hotline(isolated, "replay", str(path), "--wait")
    first = _bulletin(isolated)
    hotline(isolated, "replay", str(path), "--wait")
    second = _bulletin(isolated)
    assert second["units"] == first["units"]
    assert second["headline"] == first["headline"]
    # events are counted once; each bad record sent is its own dead letter (keyed by its offset)
    assert worker_get(isolated, "/status")["counts"] == {"events": 10, "deadletter": 4}


def test_bulletin_works_without_a_worker(isolated: Settings, worker: Worker, tmp_path: Path) -> None:
    hotline(isolated, "replay", str(_write(tmp_path / "m.jsonl", _small_month())), "--wait")
    through_worker = hotline(isolated, "bulletin", "--month", "2019-11", "--format", "csv").stdout
    worker.stop()
    direct = hotline(isolated, "bulletin", "--month", "2019-11", "--format", "csv").stdout
    assert direct == through_worker
    assert direct.decode().splitlines()[0].startswith("unit,dispatched,completed_on_time")


def _topic_configs(settings: Settings, topic: str, timeout_s: float = 60) -> dict[str, str]:
    """The topic's configuration, once the broker knows the topic (the worker creates it as it starts)."""

    async def describe() -> dict[str, str]:
        admin = AIOKafkaAdminClient(**settings.kafka_client_options())
        await admin.start()
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
                ((error, _, _, _, entries),) = response.resources
                if error == 0 or time.monotonic() > deadline:
                    return {entry[0]: entry[1] for entry in entries}
                await asyncio.sleep(0.2)
        finally:
            await admin.close()

    return asyncio.run(describe())


def test_the_order_tables_changelog_is_created_to_drop_evicted_orders_within_its_period(
    isolated: Settings, worker: Worker
) -> None:
    configs = _topic_configs(isolated, f"{isolated.app_id}-order-state-changelog")
    period_ms = str(int(isolated.changelog_segment_s * 1000))
    assert configs["cleanup.policy"] == "compact"
    assert [configs[name] for name in ("segment.ms", "max.compaction.lag.ms", "delete.retention.ms")] == [period_ms] * 3
