"""A backup taken at any points of a stream, restored, and resumed by a worker from its ledger.

The worker's own code (``streams.app.Pipeline`` under Faust's ``test_context``) over embedded
ClickHouse: a drawn month of orders goes through it in chunks, and ``write_backup`` copies each
table after a drawn number of further chunks (writes go on between the copies, as they do while
a worker runs). A second worker, on the restored store, starts with the first one's order table
(its changelog in Kafka outlives the disk) and is sent the whole month again: it takes what comes
after the restored ledger. It then holds the same events, order states and day windows.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.settings import Settings
from hotline.sinks import backup
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.streams.app import Pipeline
from hotline.streams.known import id_filter
from tests.factories import month_of_orders, raw

TOPIC = "hotline.orders"


class Sent:
    async def send(self, **kwargs: Any) -> None:
        """The dead-letter topic: not under test here."""


def _pipeline(sink: ClickHouseStore, app_id: str) -> Pipeline:
    pipeline = Pipeline(Settings(batch_within_s=0.05, batch_size=3, app_id=app_id), store=sink)
    pipeline.deadletter_topic = pipeline.batches.deadletter_topic = Sent()  # type: ignore[assignment]

    async def no_broker() -> None:
        """No producer runs under test_context: the table's writes stay in memory."""

    pipeline.batches.flush_changelog = no_broker  # type: ignore[method-assign]
    pipeline.state.known = id_filter(sink)
    pipeline.state.generation = sink.generation()
    pipeline.state.ready.set()
    pipeline.app.finalize()
    pipeline.app.flow_control.resume()
    return pipeline


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the worker did not get there")


class Interleaved:
    """The store as a backup reads it, letting the worker store more chunks before each table's copy."""

    def __init__(self, sink: ClickHouseStore, feed: Callable[[int], None], before: list[int]) -> None:
        self.opened, self.feed, self.before = backup.Opened(sink), feed, iter(before)

    def version(self) -> int:
        return self.opened.version()

    def partitions(self, table: str) -> list[list[str]]:
        return self.opened.partitions(table)

    def export(self, table: str, partition: str) -> backup.Exported:
        self.feed(next(self.before, 0))
        return self.opened.export(table, partition)


def _state(sink: ClickHouseStore) -> dict[str, Any]:
    """What the bulletin reads: events, order states and per-day window sums, deduplicated as read."""
    windows = sink.query(
        "SELECT unit_id, day, sumMap(map('dispatched', dispatched, 'completed_on_time', completed_on_time, "
        "'visits', visits, 'returned', returned)) FROM {db}.unit_windows FINAL GROUP BY unit_id, day"
    )
    orders = sink.query(
        "SELECT order_id, cohort_day, unit_id, completed_at, returns, arraySort(seen), unsatisfied_visits "
        "FROM {db}.order_states FINAL WHERE unit_id != ''"
    )
    return {
        "events": sorted(r[0] for r in sink.query("SELECT event_id FROM {db}.events FINAL")),
        "orders": sorted(orders, key=repr),
        "windows": sorted(((u, d, {k: v for k, v in m.items() if v}) for u, d, m in windows), key=repr),
        "returns": sorted(sink.query("SELECT month, order_id, times FROM {db}.order_returns FINAL")),
    }


async def _stream(pipeline: Pipeline, records: list[bytes], backed_up: Callable[[Callable[[int], None]], None]) -> None:
    """Send the records in chunks of three while ``backed_up`` runs on a thread, then the rest."""
    loop = asyncio.get_running_loop()
    agent = pipeline.app.agents["orders"]
    sent = 0
    async with agent.test_context() as ctx:

        async def more(chunks: int) -> None:
            nonlocal sent
            for value in records[sent : sent + 3 * chunks]:
                await ctx.put(value, key=b"k")
            sent = min(len(records), sent + 3 * chunks)
            await _until(lambda: pipeline.ledger.next_offset.get((TOPIC, 0), 0) >= sent)
            await pipeline.settle()

        def feed(chunks: int) -> None:
            asyncio.run_coroutine_threadsafe(more(chunks), loop).result(60)

        done = threading.Event()
        thread = threading.Thread(target=lambda: (backed_up(feed), done.set()))
        thread.start()
        await _until(done.is_set)
        await more(len(records))


@given(data=st.data())
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_worker_resuming_on_a_restored_backup_ends_where_the_first_one_did(tmp_path: Path, data: Any) -> None:
    records = [raw(e) for e in month_of_orders(data.draw, orders=5)]
    first = data.draw(st.integers(0, len(records) // 3), label="chunks before the backup")
    before = data.draw(st.lists(st.integers(0, 2), min_size=len(backup.ORDER), max_size=len(backup.ORDER)))
    root = tmp_path / f"r{id(records)}"
    with mock.patch("faust.transport.drivers.aiokafka.Producer.key_partition", lambda self, topic, key: _tp(topic)):
        asyncio.run(_scenario(root, records, first, before))


def _tp(topic: str) -> Any:
    from faust.types import TP

    return TP(topic, 0)


async def _scenario(root: Path, records: list[bytes], first: int, before: list[int]) -> None:
    live = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{root / 'ch'}", clickhouse_database="live"))
    live.migrate()
    restored = ClickHouseStore(live.settings.model_copy(update={"clickhouse_database": "restored"}), live.client)
    try:
        worker = _pipeline(live, "hotline-live")

        def backed_up(feed: Callable[[int], None]) -> None:
            feed(first)
            backup.write_backup(Interleaved(live, feed, before), root / "backup", live.db)

        await _stream(worker, records, backed_up)
        backup.restore(restored, root / "backup")
        resumed = _pipeline(restored, "hotline-restored")
        resumed.orders.data.update(worker.orders.data)  # the changelog in Kafka: newer than the backup
        await _stream(resumed, records, lambda feed: None)
        expected = _state(live)
        assert len(expected["events"]) == len(records)
        assert _state(restored) == expected
    finally:
        live.close()
