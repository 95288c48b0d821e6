"""The eviction sweep against a real chDB store: an evicted order leaves the table, and a late event
for it counts exactly as for an order that stayed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hotline.settings import Settings
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.streams.app import Pipeline
from hotline.streams.processing import Record, Source
from tests.doubles import RecordingTopic
from tests.factories import event, raw

ORDERS = "hotline.orders"


@pytest.fixture
async def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Pipeline]:
    from faust.transport.drivers.aiokafka import Producer
    from faust.types import TP

    monkeypatch.setattr(Producer, "key_partition", lambda self, topic, key: TP(topic, 0))
    settings = Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}", var_dir=tmp_path, app_id="hotline-unit-evict")
    store = ClickHouseStore(settings)
    store.migrate()
    p = Pipeline(settings, store=store)
    p.deadletter_topic = p.batches.deadletter_topic = RecordingTopic()  # type: ignore[assignment]

    async def no_broker() -> None:
        """No producer runs here: the table's writes and tombstones stay in memory."""

    p.batches.flush_changelog = no_broker  # type: ignore[method-assign]
    p.state.prepare_store()
    p.state.ready.set()
    p.sweeps.owns = lambda order_id: order_id == "EVICTED"  # type: ignore[method-assign]
    yield p
    await p.settle()
    store.close()


class Offsets:
    def __init__(self) -> None:
        self.next = 0

    def records(self, *events: dict[str, Any]) -> list[Record]:
        out = []
        for ev in events:
            out.append(Record(Source(ORDERS, 0, self.next), str(ev["order_id"]).encode(), raw(ev)))
            self.next += 1
        return out


def _lifecycle(order_id: str) -> list[dict[str, Any]]:
    return [
        event("order.dispatched", order_id=order_id, occurred_at="2019-11-04T09:00:00+08:00"),
        event("order.completed", order_id=order_id, occurred_at="2019-11-05T09:00:00+08:00"),
        event("order.visited", order_id=order_id, outcome="unsatisfied", occurred_at="2019-11-06T09:00:00+08:00"),
    ]


def _row(store: ClickHouseStore, order_id: str) -> dict[str, Any]:
    [row] = store.query_rows(
        "SELECT * EXCEPT (order_id, version, seen) FROM {db}.order_states FINAL "
        "WHERE order_id = %(o)s AND unit_id != ''",
        {"o": order_id},
    )
    return row


async def test_a_late_event_for_an_evicted_order_counts_as_for_one_that_stayed(pipeline: Pipeline) -> None:
    offsets = Offsets()
    await pipeline.process(offsets.records(*_lifecycle("EVICTED"), *_lifecycle("KEPT")), "orders")
    await pipeline.sweeps.evictions()
    assert "EVICTED" not in pipeline.orders and "KEPT" in pipeline.orders
    assert pipeline.metrics.registry.get_sample_value("hotline_orders_evicted_total") == 1

    # A second unsatisfied visit, arriving after the eviction: it makes each order due for supervision.
    late = [
        event("order.visited", order_id=o, outcome="unsatisfied", occurred_at="2019-11-07T09:00:00+08:00")
        for o in ("EVICTED", "KEPT")
    ]
    await pipeline.process(offsets.records(*late), "orders")
    store: ClickHouseStore = pipeline.store  # type: ignore[assignment]
    assert _row(store, "EVICTED") == _row(store, "KEPT")
    evicted, kept = pipeline.orders["EVICTED"], pipeline.orders["KEPT"]
    assert evicted.get("supervision_due") and {k: v for k, v in evicted.items() if k != "facts"} == {
        k: v for k, v in kept.items() if k != "facts"
    }
    windows = store.query_rows("SELECT sum(visits) AS n FROM {db}.unit_windows FINAL")
    assert windows == [{"n": 4}], "both late visits counted, once each"


async def test_a_redelivered_event_of_an_evicted_order_changes_nothing(pipeline: Pipeline) -> None:
    offsets = Offsets()
    lifecycle = _lifecycle("EVICTED")
    await pipeline.process(offsets.records(*lifecycle), "orders")
    await pipeline.sweeps.evictions()
    store: ClickHouseStore = pipeline.store  # type: ignore[assignment]
    before = _row(store, "EVICTED")
    await pipeline.process(offsets.records(lifecycle[2]), "orders")  # the visit sent again
    assert _row(store, "EVICTED") == before
    assert pipeline.metrics.registry.get_sample_value("hotline_duplicate_events_total", {"topic": ORDERS}) == 1
