"""The agents driven through Faust's ``test_context``: no broker, a store in memory."""

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from hotline.schemas.registry import default_registry
from hotline.settings import Settings
from hotline.sinks.base import Batch, StoreRaced
from hotline.sinks.fencing import Fence, StoreFenced
from hotline.sinks.memory import MemoryStore
from hotline.sinks.wire import METRICS_HEADER, announcement
from hotline.streams.app import Pipeline
from hotline.streams.processing import Record, Source
from tests.doubles import RecordingTopic
from tests.factories import event, raw


def _memory(pipeline: Pipeline) -> MemoryStore:
    """The pipeline's store, the memory store every test here gives it."""
    assert isinstance(pipeline.store, MemoryStore)
    return pipeline.store


def _window_totals(store: MemoryStore) -> dict[str, int]:
    """Each windowed count summed over the latest row of every window stored."""
    totals: dict[str, int] = {}
    for w in store.windows("1"):
        for name, value in w.counts.items():
            totals[name] = totals.get(name, 0) + value
    return {k: v for k, v in totals.items() if v}


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    # No broker here: the changelog partitioner answers as Kafka's would for one partition.
    from faust.transport.drivers.aiokafka import Producer
    from faust.types import TP

    monkeypatch.setattr(Producer, "key_partition", lambda self, topic, key: TP(topic, 0))
    p = Pipeline(Settings(batch_within_s=0.05, app_id="hotline-unit"), store=MemoryStore())
    p.deadletter_topic = p.batches.deadletter_topic = RecordingTopic()  # type: ignore[assignment]

    async def no_broker() -> None:
        """No producer runs under test_context: the table's writes stay in memory."""

    p.batches.flush_changelog = no_broker  # type: ignore[method-assign]
    p.state.ready.set()  # the start-up task (opening the store) does not run under test_context
    p.app.finalize()
    p.app.flow_control.resume()
    return p


async def _put_all(pipeline: Pipeline, agent_name: str, records: list[tuple[bytes, bytes]]) -> None:
    agent = pipeline.app.agents[agent_name]
    async with agent.test_context() as ctx:
        for key, value in records:
            await ctx.put(value, key=key)
        await asyncio.sleep(0.3)


async def test_orders_agent_stores_events_counters_and_state(pipeline: Pipeline) -> None:
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
    store = _memory(pipeline)
    events = [row["event_id"] for b in store.batches for row in b.events]
    assert events == [dispatched["event_id"], events[1]] and len(events) == 2
    assert _window_totals(store) == {"dispatched": 1, "completed_on_time": 1}
    assert [o.version for b in store.batches for o in b.orders][-1] == 2
    assert pipeline.orders["O1"]["completed_on_time"] is True
    assert store.recorded == {("hotline.orders", 0): 2}


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
    store = _memory(pipeline)
    assert [row["event_id"] for b in store.batches for row in b.events] == [good["event_id"]]


async def test_calls_agent_stores_calls_without_personal_data(pipeline: Pipeline) -> None:
    received = event("call.received", caller={"phone": "13800000000", "name": "张三"})
    await _put_all(pipeline, "calls", [(b"C1", raw(received)), (b"C1", raw(event("call.handled")))])
    store = _memory(pipeline)
    rows = [row for b in store.batches for row in b.events]
    assert [r["type"] for r in rows] == ["call.received", "call.handled"]
    assert "13800000000" not in repr(rows)


# -- identity, dead letters and store outages through the agents ---------------------------


def _sample(pipeline: Pipeline, name: str, labels: dict[str, str] | None = None) -> float:
    value = pipeline.metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


async def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def _put_until_processed(
    pipeline: Pipeline, agent_name: str, records: list[tuple[bytes, bytes]], topic: str
) -> None:
    """Put the records and return once the ledger is past the last of them (so it is all observed)."""
    agent = pipeline.app.agents[agent_name]
    async with agent.test_context() as ctx:
        for key, value in records:
            await ctx.put(value, key=key)
        await _wait_for(lambda: pipeline.ledger.next_offset.get((topic, 0), 0) >= len(records), f"{topic} processed")


def _stored_ids(store: MemoryStore) -> list[str]:
    return [row["event_id"] for b in store.batches for row in b.events]


async def test_a_second_event_under_the_same_id_is_a_dead_letter_naming_the_first(pipeline: Pipeline) -> None:
    first = event("order.dispatched", event_id="ev-same", order_id="O1")
    other = event("order.dispatched", event_id="ev-same", order_id="O2", unit_id="yuetang")
    await _put_until_processed(pipeline, "orders", [(b"O1", raw(first)), (b"O2", raw(other))], "hotline.orders")
    store = _memory(pipeline)
    assert _stored_ids(store) == ["ev-same"]
    assert store.events["ev-same"].source_offset == 0
    assert _window_totals(store) == {"dispatched": 1}
    assert pipeline.orders["O1"]["unit"] == "yuhu"
    assert pipeline.orders.get("O2") is None
    sent = pipeline.deadletter_topic.sent  # type: ignore[attr-defined]
    assert len(sent) == 1
    assert sent[0]["value"] == raw(other)
    assert sent[0]["headers"]["hotline.conflict.source"] == b"hotline.orders[0]@0"
    assert sent[0]["headers"]["hotline.source.offset"] == b"1"
    assert "already names another event" in sent[0]["headers"]["hotline.error"].decode()
    assert _sample(pipeline, "hotline_event_id_conflicts_total", {"topic": "hotline.orders"}) == 1
    assert [d.source_offset for b in store.batches for d in b.deadletters] == [1]


async def test_a_call_sent_twice_is_stored_once_and_counted_as_a_duplicate(pipeline: Pipeline) -> None:
    received = event("call.received", call_id="C7")
    await _put_until_processed(pipeline, "calls", [(b"C7", raw(received)), (b"C7", raw(received))], "hotline.calls")
    store = _memory(pipeline)
    assert _stored_ids(store) == [received["event_id"]]
    assert _sample(pipeline, "hotline_duplicate_events_total", {"topic": "hotline.calls"}) == 1
    assert _sample(pipeline, "hotline_event_id_conflicts_total", {"topic": "hotline.calls"}) == 0
    assert pipeline.deadletter_topic.sent == []  # type: ignore[attr-defined]
    assert store.recorded == {("hotline.calls", 0): 1}


@pytest.mark.parametrize("kind", ["invalid", "conflict"])
async def test_a_dead_letter_keeps_the_original_kafka_key(pipeline: Pipeline, kind: str) -> None:
    first = event("order.dispatched", event_id="ev-k", order_id="O1")
    bad = b"{not json" if kind == "invalid" else raw(event("order.dispatched", event_id="ev-k", order_id="O77"))
    await _put_until_processed(pipeline, "orders", [(b"O1", raw(first)), (b"K-77", bad)], "hotline.orders")
    sent = pipeline.deadletter_topic.sent  # type: ignore[attr-defined]
    assert [(s["key"], s["value"]) for s in sent] == [(b"K-77", bad)]
    store = _memory(pipeline)
    assert [d.key for b in store.batches for d in b.deadletters] == [b"K-77"]


class FlakyStore(MemoryStore):
    """ClickHouse down for the first ``outage`` writes: they fail, and the store says it is unhealthy."""

    def __init__(self, outage: int) -> None:
        super().__init__()
        self.outage = outage
        self.writes = 0

    def write(self, batch: Batch, fence: Fence | None = None) -> None:
        self.writes += 1
        if self.writes <= self.outage:
            raise ConnectionError("Connection refused")
        super().write(batch, fence)

    def healthy(self) -> bool:
        return self.writes > self.outage


class FastSleep:
    """``asyncio`` for hotline.streams.batches: its ``sleep`` (the back-off) notes what the worker shows, returns."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.delays: list[float] = []
        self.seen: list[tuple[dict[str, Any], float]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float, result: Any = None) -> Any:
        self.delays.append(delay)
        self.seen.append((self.pipeline.health.as_json(), _sample(self.pipeline, "hotline_store_up")))
        await asyncio.sleep(0)
        return result


async def test_a_store_outage_is_retried_until_the_batch_is_stored_once(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hotline.streams.batches

    store = FlakyStore(outage=2)
    pipeline.stores.opened = store
    fast = FastSleep(pipeline)
    monkeypatch.setattr(hotline.streams.batches, "asyncio", fast)
    calls = [event("call.received", call_id=f"C{i}") for i in range(3)]
    later = event("call.handled", call_id="C9")
    agent = pipeline.app.agents["calls"]
    async with agent.test_context() as ctx:
        for ev in calls:
            await ctx.put(raw(ev), key=ev["call_id"].encode())
        await _wait_for(lambda: store.recorded.get(("hotline.calls", 0)) == 2, "the batch stored after the outage")
        assert pipeline.health.as_json() == {"ok": True}
        assert _sample(pipeline, "hotline_store_up") == 1
        # The agent is still there: the next record goes through.
        await ctx.put(raw(later), key=b"C9")
        await _wait_for(lambda: store.recorded.get(("hotline.calls", 0)) == 3, "a record after the outage")

    assert [(h["ok"], h["attempts"], up) for h, up in fast.seen] == [(False, 1, 0.0), (False, 2, 0.0)]
    assert all("ConnectionError: Connection refused" in h["error"] for h, _ in fast.seen)
    assert fast.delays == [0.5, 1.0]
    assert _sample(pipeline, "hotline_store_retries_total") == 2
    ids = _stored_ids(store)
    assert sorted(ids) == sorted(e["event_id"] for e in [*calls, later])
    assert len(ids) == len(set(ids)), f"an event written twice: {ids}"
    assert store.writes == 2 + len(store.batches)
    assert pipeline.deadletter_topic.sent == []  # type: ignore[attr-defined]
    assert _sample(pipeline, "hotline_events_processed_total", {"topic": "hotline.calls"}) == 4


class PickyStore(MemoryStore):
    """A healthy store that refuses any batch holding one event (say, a value it cannot take)."""

    def __init__(self, refused_id: str) -> None:
        super().__init__()
        self.refused_id = refused_id

    def write(self, batch: Batch, fence: Fence | None = None) -> None:
        if any(row["event_id"] == self.refused_id for row in batch.events):
            raise ValueError(f"cannot insert {self.refused_id}")
        super().write(batch, fence)


async def test_a_record_the_store_refuses_is_a_dead_letter_and_the_rest_is_stored(pipeline: Pipeline) -> None:
    calls = [event("call.received", call_id=f"C{i}") for i in range(4)]
    poison = calls[1]
    store = PickyStore(poison["event_id"])
    pipeline.stores.opened = store
    records = [(ev["call_id"].encode(), raw(ev)) for ev in calls]
    await _put_until_processed(pipeline, "calls", records, "hotline.calls")

    assert set(_stored_ids(store)) == {e["event_id"] for e in calls if e is not poison}
    sent = pipeline.deadletter_topic.sent  # type: ignore[attr-defined]
    assert [(s["key"], s["value"]) for s in sent] == [(b"C1", raw(poison))]
    reason = sent[0]["headers"]["hotline.error"].decode()
    assert reason.startswith("could not store"), reason
    assert f"ValueError: cannot insert {poison['event_id']}" in reason
    assert sent[0]["headers"]["hotline.source.offset"] == b"1"
    dead = [d for b in store.batches for d in b.deadletters]
    assert [(d.source_offset, d.error) for d in dead] == [(1, reason)]
    assert pipeline.health.as_json() == {"ok": True}
    assert _sample(pipeline, "hotline_store_retries_total") == 0
    # The progress is recorded after the batch is stored, while the next one is read: wait for it.
    await _wait_for(lambda: store.recorded == {("hotline.calls", 0): 3}, "progress recorded")


class ProgressOutageStore(MemoryStore):
    """The batch's rows are written, then the store goes down before its progress is recorded."""

    def __init__(self, outage: int) -> None:
        super().__init__()
        self.outage = outage
        self.progress_calls = 0

    def record_progress(self, offsets: dict[tuple[str, int], int], fence: Fence | None = None) -> None:
        self.progress_calls += 1
        if self.progress_calls <= self.outage:
            raise ConnectionError("Connection refused")
        super().record_progress(offsets, fence)

    def healthy(self) -> bool:
        return self.progress_calls > self.outage


async def test_an_order_stored_across_an_outage_still_gets_its_alerts_scheduled(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry finds the order's table state already updated: its alerts must be owed all the same."""
    import hotline.streams.batches

    store = ProgressOutageStore(outage=1)
    pipeline.stores.opened = store
    monkeypatch.setattr(hotline.streams.batches, "asyncio", FastSleep(pipeline))
    dispatched = event("order.dispatched", order_id="O5")
    await _put_until_processed(pipeline, "orders", [(b"O5", raw(dispatched))], "hotline.orders")

    assert store.recorded == {("hotline.orders", 0): 0}
    assert _stored_ids(store) == [dispatched["event_id"]]
    assert pipeline.orders["O5"]["unit"] == "yuhu"
    owed = sorted(p.kind for p in pipeline.scheduler.heap if p.order_id == "O5")
    assert owed == ["due_soon:7200", "due_soon:86400", "overdue"], (
        "the order's deadline alerts were never scheduled: the retry saw its event in the table state "
        "(written before the failed progress write) and folded no order"
    )


async def test_an_order_stored_without_an_outage_gets_its_alerts_scheduled(pipeline: Pipeline) -> None:
    dispatched = event("order.dispatched", order_id="O6")
    await _put_until_processed(pipeline, "orders", [(b"O6", raw(dispatched))], "hotline.orders")
    owed = sorted(p.kind for p in pipeline.scheduler.heap if p.order_id == "O6")
    assert owed == ["due_soon:7200", "due_soon:86400", "overdue"]


async def test_a_batch_progress_is_recorded_only_once_its_changelog_is_acknowledged(pipeline: Pipeline) -> None:
    """The next batch may fold while the changelog is in flight; the durable ledger may not move."""
    acked = asyncio.Event()

    async def slow_broker() -> None:
        await acked.wait()

    pipeline.batches.flush_changelog = slow_broker  # type: ignore[method-assign]
    store = _memory(pipeline)
    first, second = event("order.dispatched", order_id="O7"), event("order.dispatched", order_id="O8")
    await pipeline.process([Record(Source("hotline.orders", 0, 0), b"O7", raw(first))], "orders")
    assert _stored_ids(store) == [first["event_id"]] and store.recorded == {}
    assert pipeline.positions == {}  # what /status and the lag report: recorded progress only
    acked.set()
    await pipeline.process([Record(Source("hotline.orders", 0, 1), b"O8", raw(second))], "orders")
    await pipeline.settle()
    assert _stored_ids(store) == [first["event_id"], second["event_id"]]
    assert store.recorded == {("hotline.orders", 0): 1} and pipeline.positions == {("hotline.orders", 0): 1}


def test_the_group_rereads_cluster_metadata_as_often_as_the_settings_say() -> None:
    """A leader that assigned before its topics existed assigns them on its next metadata read:
    that must come within seconds, not aiokafka's five minutes (seen on a broker just started)."""
    p = Pipeline(Settings(metadata_max_age_s=2.5, app_id="hotline-unit"), store=MemoryStore())
    assert p.app.conf.consumer_metadata_max_age_ms == 2500


def test_the_worker_listens_at_its_web_host_unless_told_where_to_bind() -> None:
    p = Pipeline(Settings(web_host="10.0.0.7", app_id="hotline-unit"), store=MemoryStore())
    assert (p.app.conf.web_bind, p.app.conf.web_host) == ("10.0.0.7", "10.0.0.7")


def test_a_worker_bound_to_every_interface_still_announces_where_it_is_reached() -> None:
    """Bound to 0.0.0.0, the worker is still named and scraped at its web_host (0.0.0.0 reaches nothing)."""
    settings = Settings(web_host="worker-2.internal", web_bind="0.0.0.0", web_port=6067, app_id="hotline-unit")
    p = Pipeline(settings, store=MemoryStore())
    assert (p.app.conf.web_bind, p.app.conf.web_host) == ("0.0.0.0", "worker-2.internal")
    assert announcement(settings)[METRICS_HEADER] == "http://worker-2.internal:6067/metrics"


class AssigningConsumer:
    """Faust's consumer as ``_resume_locked`` sees it after an assignment: partitions, seeks, pauses."""

    def __init__(self, assigned: set[Any]) -> None:
        self.assigned = assigned
        self.seeks: dict[Any, int] = {}
        self.paused: set[Any] = set()

    def assignment(self) -> set[Any]:
        return self.assigned

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks[tp] = offset

    def pause_partitions(self, tps: Iterable[Any]) -> None:
        self.paused.update(tps)


def _assigned_under_generation_7(pipeline: Pipeline) -> Any:
    """Partition 0 of the orders topic assigned under group generation 7, the order table recovered,
    no ClickHouse behind the live figures; the partition is returned."""
    from faust.types import TP

    p0 = TP("hotline.orders", 0)
    pipeline.app.consumer = AssigningConsumer({p0})  # type: ignore[assignment]
    pipeline.app.consumer_generation_id = 7
    pipeline.assignment.table_recovered = True

    async def nothing_live(assigned: list[Any]) -> None:
        """No ClickHouse here: the live figures stay empty."""

    pipeline.state.load = nothing_live  # type: ignore[method-assign]
    return p0


async def test_an_assignment_is_claimed_with_the_group_generation_and_every_write_carries_it(
    pipeline: Pipeline,
) -> None:
    """One path with or without ``hotline store``: the local store is claimed and fenced too (and ignores it)."""

    store = _memory(pipeline)
    p0 = _assigned_under_generation_7(pipeline)
    positions = await pipeline.assignment.resume_locked({p0: 0})
    assert store.claimed == [Fence(7, (("hotline.orders", 0),))] and positions == {p0: 0}
    assert pipeline.reader is not None and pipeline.reader.reading() == {("hotline.orders", 0)}
    fences: list[Fence | None] = []
    original = store.write
    store.write = lambda batch, fence=None: (fences.append(fence), original(batch, fence))[1]  # type: ignore[method-assign]
    await pipeline.process([Record(Source("hotline.orders", 0, 0), b"O1", raw(event("order.dispatched")))], "orders")
    assert fences == [Fence(7, (("hotline.orders", 0),))]


class TakenOverStore(MemoryStore):
    """The store of a group that has moved on: a newer generation claimed every partition."""

    def claim(self, fence: Fence) -> None:
        raise StoreFenced("claim", fence.generation, dict.fromkeys(fence.partitions, fence.generation + 1))

    def progress(self) -> dict[tuple[str, int], int]:
        raise AssertionError("a stale assignment's ledger is not read")


async def test_a_stale_assignment_is_neither_resumed_nor_read(pipeline: Pipeline) -> None:
    from faust.types import TP

    pipeline.stores.opened = TakenOverStore()
    p0 = TP("hotline.orders", 0)
    consumer = AssigningConsumer({p0})
    pipeline.app.consumer = consumer  # type: ignore[assignment]
    pipeline.assignment.table_recovered = True
    assert pipeline.reader is not None
    pipeline.reader.assign({("hotline.orders", 0): 0})  # what it read before it stalled
    assert await pipeline.assignment.resume_locked({p0: 5}) == {p0: 5}
    assert pipeline.claims.fenced and consumer.seeks == {} and consumer.paused == {p0}
    assert pipeline.reader.reading() == set()
    assert _sample(pipeline, "hotline_store_fenced_total", {"op": "claim"}) == 1


async def test_a_race_met_while_the_records_are_written_one_by_one_dead_letters_none(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch is refused, so its records are written one by one to find the culprit; one of
    them meets another worker's copy (StoreRaced): that is no fault of the record's, and the
    batch is folded again rather than the record dead-lettered."""
    store = pipeline.store
    real, calls = store.write, []

    def refused_then_raced(batch: Batch, fence: Fence | None = None) -> None:
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("ClickHouse refused the batch")
        if len(calls) == 2:
            raise StoreRaced([batch.events[0]["event_id"]])
        real(batch, fence)

    monkeypatch.setattr(store, "write", refused_then_raced)
    dispatched = event("order.dispatched", order_id="O1")
    await pipeline.process([Record(Source("hotline.orders", 0, 0), b"O1", raw(dispatched))], "orders")
    assert pipeline.deadletter_topic.sent == []  # type: ignore[attr-defined]
    assert list(_memory(pipeline).events) == [dispatched["event_id"]]


def _two_dispatches() -> list[Record]:
    return [
        Record(Source("hotline.orders", 0, n), f"O{n}".encode(), raw(event("order.dispatched", order_id=f"O{n}")))
        for n in range(2)
    ]


async def test_a_storage_fault_is_never_blamed_on_the_records(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table directories made unwritable for a while: every write, whole or one by one, fails
    with the file system's error. The batch waits and is stored once the disk takes writes again;
    no record is dead-lettered and the ledger moves only then."""
    store = _memory(pipeline)
    real, refused = store.write, []

    def unwritable(batch: Batch, fence: Fence | None = None) -> None:
        if len(refused) < 3:
            refused.append(batch)
            raise RuntimeError("Code: 1001. DB::Exception: Cannot open file store/events/tmp: Operation not permitted")
        real(batch, fence)

    monkeypatch.setattr(store, "write", unwritable)
    records = _two_dispatches()
    await pipeline.process(records, "orders")
    await pipeline.settle()
    assert pipeline.deadletter_topic.sent == []  # type: ignore[attr-defined]
    assert sorted(store.events) == sorted(json.loads(r.value or b"")["event_id"] for r in records)
    assert store.recorded == {("hotline.orders", 0): 1}
    assert _sample(pipeline, "hotline_store_retries_total") == 3


async def test_a_batch_none_of_whose_records_stores_while_a_known_good_write_fails_is_held_back(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal the classifier does not recognise, for every record, while the store cannot even
    record the progress it already holds: the store's fault, not the records'."""
    store = _memory(pipeline)
    real_write, real_progress, failing = store.write, store.record_progress, [True]

    def write(batch: Batch, fence: Fence | None = None) -> None:
        if failing[0]:
            raise RuntimeError("DB::Exception: something odd")
        real_write(batch, fence)

    def progress(offsets: dict[tuple[str, int], int], fence: Fence | None = None) -> None:
        if failing[0]:
            failing[0] = False  # the probe fails once, then the store recovers
            raise RuntimeError("DB::Exception: something odd")
        real_progress(offsets, fence)

    monkeypatch.setattr(store, "write", write)
    monkeypatch.setattr(store, "record_progress", progress)
    await pipeline.process(_two_dispatches(), "orders")
    assert pipeline.deadletter_topic.sent == []  # type: ignore[attr-defined]
    assert len(store.events) == 2


async def test_a_record_the_store_refuses_for_its_content_is_still_dead_lettered(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _memory(pipeline)
    real = store.write

    def refuses_o1(batch: Batch, fence: Fence | None = None) -> None:
        if any(row["order_id"] == "O1" for row in batch.events):
            raise RuntimeError("DB::Exception: Cannot parse input: value too long for its column")
        real(batch, fence)

    monkeypatch.setattr(store, "write", refuses_o1)
    await pipeline.process(_two_dispatches(), "orders")
    sent = pipeline.deadletter_topic.sent  # type: ignore[attr-defined]
    assert [s["headers"]["hotline.source.offset"] for s in sent] == [b"1"]
    assert len(store.events) == 1


class ForgedClaimStore(MemoryStore):
    """A store where a claim from outside the group (generation 1,000,000) holds every partition
    until it lapses (``lapsed`` set by the test)."""

    def __init__(self) -> None:
        super().__init__()
        self.lapsed = False

    def claim(self, fence: Fence) -> None:
        if not self.lapsed:
            raise StoreFenced("claim", fence.generation, dict.fromkeys(fence.partitions, 1_000_000))
        super().claim(fence)


async def test_a_worker_fenced_by_a_foreign_claim_says_so_and_reads_again_once_it_lapses(pipeline: Pipeline) -> None:

    store = ForgedClaimStore()
    pipeline.stores.opened = store
    p0 = _assigned_under_generation_7(pipeline)
    await pipeline.assignment.resume_locked({p0: 0})
    assert pipeline.claims.fenced and _sample(pipeline, "hotline_reading") == 0
    assert pipeline.reader is not None and pipeline.reader.reading() == set()

    await pipeline.assignment.renew_claim()  # the foreign claim still holds: still fenced
    assert pipeline.claims.fenced
    store.lapsed = True
    await pipeline.assignment.renew_claim()
    assert not pipeline.claims.fenced and _sample(pipeline, "hotline_reading") == 1
    assert pipeline.reader.reading() == {("hotline.orders", 0)}
    assert store.claimed == [Fence(7, (("hotline.orders", 0),))]


def test_fausts_stream_watchdog_is_off_where_the_batch_reader_owns_the_partitions(pipeline: Pipeline) -> None:
    """Its "Stream has not started processing" would be logged at ERROR every 30 s, falsely."""
    assert pipeline.app.conf.stream_processing_timeout > 365 * 86400
    assert pipeline.app.conf.broker_commit_livelock_soft_timeout > 365 * 86400
    streamed = Pipeline(Settings(ingest="stream", app_id="hotline-unit-stream"), store=MemoryStore())
    assert streamed.app.conf.stream_processing_timeout == 300


def test_the_workers_web_server_closes_idle_connections(pipeline: Pipeline) -> None:
    from hotline.connections import IDLE_TIMEOUT_S
    from hotline.web import register

    register(pipeline)
    runner = pipeline.app.web._runner
    assert runner._kwargs["keepalive_timeout"] == IDLE_TIMEOUT_S
    assert runner.cap.per_client == pipeline.settings.max_connections_per_client


async def _visit_of_an_order_never_dispatched(pipeline: Pipeline, occurred_at: str) -> None:
    pipeline.sweeps.owns = lambda order_id: True  # type: ignore[method-assign]  # no group here: every order is ours
    visited = event("order.visited", order_id="O9", outcome="satisfied", occurred_at=occurred_at)
    await pipeline.process([Record(Source("hotline.orders", 0, 0), b"O9", raw(visited))], "orders")
    await pipeline.settle()
    assert pipeline.orders["O9"]["held"]


async def test_events_of_an_order_never_dispatched_are_dead_lettered_past_the_wait(pipeline: Pipeline) -> None:
    store = _memory(pipeline)
    await _visit_of_an_order_never_dispatched(pipeline, "2019-11-06T09:00:00+08:00")
    await pipeline.sweep_orphans()
    [letter] = pipeline.deadletter_topic.sent  # type: ignore[attr-defined]
    assert letter["headers"]["hotline.source.offset"] == b"0" and letter["key"] == b"O9"
    assert "'O9' was not dispatched within 72 h" in letter["headers"]["hotline.error"].decode()
    assert [d.source_offset for d in store.batches[-1].deadletters] == [0]
    assert "held" not in pipeline.orders["O9"]
    dispatched = event("order.dispatched", order_id="O9")
    await pipeline.process([Record(Source("hotline.orders", 0, 1), b"O9", raw(dispatched))], "orders")
    assert "visits" not in _window_totals(store) and _window_totals(store)["dispatched"] == 1


async def test_an_order_waiting_less_than_the_wait_keeps_its_events(pipeline: Pipeline) -> None:
    from datetime import datetime, timedelta

    from hotline.streams.deadlines import TZ

    recently = (datetime.now(TZ) - timedelta(hours=1)).isoformat()
    await _visit_of_an_order_never_dispatched(pipeline, recently)
    await pipeline.sweep_orphans()
    assert pipeline.deadletter_topic.sent == []  # type: ignore[attr-defined]
    assert pipeline.orders["O9"]["held"]


async def test_after_a_restore_an_order_the_store_lacks_is_folded_again_from_what_kafka_redelivers(
    pipeline: Pipeline,
) -> None:
    """The order table, recovered from its changelog in Kafka, may hold states newer than a store
    restored from a backup: an order of an older generation that the store does not hold starts
    again from the events re-delivered after the restored ledger, instead of taking them as duplicates."""
    from hotline.schemas.events import parse_event
    from hotline.sinks.backup import RESTORED
    from hotline.sinks.base import Generation
    from hotline.streams.processing import apply_order_event

    dispatched = event("order.dispatched", order_id="O9")
    newer = apply_order_event(None, parse_event(raw(dispatched)), Source("hotline.orders", 0, 0)).state
    newer["gen"] = 0
    pipeline.orders.data["O9"] = newer  # the changelog's state: this dispatch already folded in
    pipeline.state.generation = Generation(1, RESTORED)
    await _put_until_processed(pipeline, "orders", [(b"O9", raw(dispatched))], "hotline.orders")
    store = _memory(pipeline)
    assert _stored_ids(store) == [dispatched["event_id"]]
    assert _window_totals(store) == {"dispatched": 1}


async def test_the_store_opens_as_the_app_starts_not_once_the_group_is_joined() -> None:
    """A restarted worker waits for its killed predecessor's session to lapse before it joins:
    the store opens (and its filters load) meanwhile, not after the table's recovery."""
    p = Pipeline(Settings(app_id="hotline-unit-start"), store=MemoryStore(), registry=default_registry())

    async def no_broker() -> None:
        """The changelog's producer: no broker here."""

    p.state.changelog.start = no_broker  # type: ignore[method-assign]
    await p.app.on_start()
    await asyncio.wait_for(p.state.ready.wait(), timeout=10)
    assert p.state.ready.is_set()  # open, though no consumer ever started (none runs in this test)
