"""The agents driven through Faust's ``test_context``: no broker, a recording sink."""

import asyncio
from typing import Any

import pytest

from hotline.settings import Settings
from sinks.clickhouse import Batch, Stored
from streams.app import Pipeline
from tests.factories import event, raw


class RecordingSink:
    """The sink's interface in memory: batches written, events by id, the progress ledger."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.events: dict[str, Stored] = {}
        self.progress: dict[tuple[str, int], int] = {}

    def write(self, batch: Batch) -> None:
        self.batches.append(batch)
        for row in batch.events:
            self.events.setdefault(
                row["event_id"],
                Stored(row["payload"], row["source_topic"], row["source_partition"], row["source_offset"]),
            )

    def stored(self, event_ids: list[str]) -> dict[str, Stored]:
        return {i: self.events[i] for i in event_ids if i in self.events}

    def record_progress(self, offsets: dict[tuple[str, int], int]) -> None:
        for tp, offset in offsets.items():
            self.progress[tp] = max(self.progress.get(tp, -1), offset)

    def sunk_offsets(self) -> dict[tuple[str, int], int]:
        return dict(self.progress)

    def healthy(self) -> bool:
        return True


class RecordingTopic:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    # No broker here: the changelog partitioner answers as Kafka's would for one partition.
    from faust.transport.drivers.aiokafka import Producer
    from faust.types import TP

    monkeypatch.setattr(Producer, "key_partition", lambda self, topic, key: TP(topic, 0))
    p = Pipeline(Settings(batch_within_s=0.05, app_id="hotline-unit"), sink=RecordingSink())  # type: ignore[arg-type]
    p.deadletter_topic = RecordingTopic()  # type: ignore[assignment]

    async def no_broker() -> None:
        """No producer runs under test_context: the table's writes stay in memory."""

    p.flush_changelog = no_broker  # type: ignore[method-assign]
    p.app.finalize()
    p.app.flow_control.resume()
    return p


async def _put_all(pipeline: Pipeline, agent_name: str, records: list[tuple[bytes, bytes]]) -> None:
    agent = pipeline.app.agents[agent_name]
    async with agent.test_context() as ctx:
        for key, value in records:
            await ctx.put(value, key=key)
        await asyncio.sleep(0.3)


async def test_orders_agent_sinks_events_counters_and_state(pipeline: Pipeline) -> None:
    dispatched = event("order.dispatched", order_id="O1")
    await _put_all(
        pipeline,
        "orders",
        [
            (b"O1", raw(dispatched)),
            (b"O1", raw(event("order.completed", order_id="O1", occurred_at="2019-11-05T09:00:00+08:00"))),
            (b"O1", raw(dispatched)),  # sent twice
        ],
    )
    sink: RecordingSink = pipeline.sink  # type: ignore[assignment]
    events = [row["event_id"] for b in sink.batches for row in b.events]
    metrics = [d.metric for b in sink.batches for d in b.counters]
    assert events == [dispatched["event_id"], events[1]] and len(events) == 2
    assert metrics == ["dispatched", "completed_on_time"]
    assert pipeline.orders["O1"]["completed_on_time"] is True
    assert sink.progress == {("hotline.orders", 0): 2}


async def test_bad_records_go_to_the_dead_letter_topic_and_the_rest_is_processed(pipeline: Pipeline) -> None:
    good = event("order.dispatched", order_id="O2")
    await _put_all(
        pipeline,
        "orders",
        [
            (b"O9", b"{not json"),
            (b"O9", raw(event("order.visited", order_id="O9", outcome="meh"))),
            (b"O2", raw(good)),
        ],
    )
    sent = pipeline.deadletter_topic.sent  # type: ignore[attr-defined]
    assert sent[0]["value"] == b"{not json"
    reasons = [s["headers"]["hotline.error"].decode() for s in sent]
    assert reasons[0].startswith("not JSON") and "outcome" in reasons[1]
    assert sent[1]["headers"]["hotline.source.offset"] == b"1"
    sink: RecordingSink = pipeline.sink  # type: ignore[assignment]
    assert [row["event_id"] for b in sink.batches for row in b.events] == [good["event_id"]]


async def test_calls_agent_sinks_calls_without_personal_data(pipeline: Pipeline) -> None:
    received = event("call.received", caller={"phone": "13800000000", "name": "张三"})
    await _put_all(pipeline, "calls", [(b"C1", raw(received)), (b"C1", raw(event("call.handled")))])
    sink: RecordingSink = pipeline.sink  # type: ignore[assignment]
    rows = [row for b in sink.batches for row in b.events]
    assert [r["type"] for r in rows] == ["call.received", "call.handled"]
    assert "13800000000" not in repr(rows)
