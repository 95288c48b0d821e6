"""``hotline store`` with two workers' pipelines storing through it (no broker: batches handed in).

What the store adds over each worker opening ClickHouse: one id filter that every worker's
writes update, so an event another worker stored is a duplicate (or a conflict) here too;
and the migrations and restatement done once, before any worker writes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hotline.schemas.registry import default_registry, parse_registry
from hotline.settings import Settings
from hotline.sinks.base import RESTATE_PENDING
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.fencing import Fence
from hotline.sinks.remote import RemoteStore, StoreFenced, StoreRefused
from hotline.sinks.server import StoreServer
from hotline.sinks.units import import_registry
from hotline.sinks.wire import OPS, WORKERS_RUNNING
from hotline.streams import history
from hotline.streams.app import Pipeline
from hotline.streams.known import EveryId
from hotline.streams.processing import Record, Source
from tests.doubles import RecordingTopic
from tests.factories import event, folded, raw
from tests.stores import StandIn, serving, store_settings
from tests.unit.schemas.test_registry import REORGANISED
from tests.unit.streams.test_history import LIMITS, _figures, _file, _month


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return store_settings(tmp_path, batch_within_s=0.05)


@pytest.fixture
def server(settings: Settings) -> Iterator[StoreServer]:
    yield from serving(settings)


def _pipeline(settings: Settings, name: str, monkeypatch: pytest.MonkeyPatch, group: str = "") -> Pipeline:
    """A worker's pipeline storing through the store (its store chosen from the settings); ``group``:
    its consumer group (``HOTLINE_APP_ID``), by default one of its own."""
    from faust.transport.drivers.aiokafka import Producer
    from faust.types import TP

    monkeypatch.setattr(Producer, "key_partition", lambda self, topic, key: TP(topic, 0))
    p = Pipeline(settings.model_copy(update={"app_id": group or f"hotline-unit-{name}"}))
    p.deadletter_topic = p.batches.deadletter_topic = RecordingTopic()  # type: ignore[assignment]

    async def no_broker() -> None:
        """No producer runs here: the table's writes stay in memory."""

    p.batches.flush_changelog = no_broker  # type: ignore[method-assign]
    p.state.prepare_store()  # what the start-up task does (it needs a broker to run)
    p.state.ready.set()
    p.app.finalize()
    p.app.flow_control.resume()
    return p


async def _settled(pipelines: list[Pipeline]) -> AsyncIterator[list[Pipeline]]:
    """The body of a workers fixture: every batch's progress recorded before the store stops, so
    no call of a finished test reaches a store that is closing (the store fixture tears down after)."""
    yield pipelines
    for p in pipelines:
        await asyncio.wait_for(p.settle(), timeout=30)


@pytest.fixture
async def workers(
    settings: Settings, server: StoreServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[list[Pipeline]]:
    async for pipelines in _settled([_pipeline(settings, name, monkeypatch) for name in ("a", "b")]):
        yield pipelines


async def test_a_worker_judges_units_by_the_registry_imported_at_the_store(
    settings: Settings, server: StoreServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported = parse_registry(REORGANISED)
    import_registry(server.store, imported)
    async for (worker,) in _settled([_pipeline(settings, "registry", monkeypatch)]):
        assert worker.registry.version == imported.version
        at = "2023-07-{:02d}T09:00:00+08:00".format
        merged = event("order.dispatched", order_id="M1", unit_id="resources", occurred_at=at(3), due_at=at(6))
        early = event("order.dispatched", order_id="M2", unit_id="resources", occurred_at="2023-06-30T09:00:00+08:00")
        records = [Record(Source("hotline.orders", 0, n), None, raw(ev)) for n, ev in enumerate((merged, early))]
        await worker.process(records, "orders")
        await worker.settle()
    assert server.store.counts() == {"events": 1, "deadletter": 1}
    (dead,) = server.store.deadletters()
    assert dead["error"].endswith(f"not in the unit registry (version {imported.version})")


def _sample(pipeline: Pipeline, name: str, labels: dict[str, str]) -> float:
    return pipeline.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_workers_store_through_the_store_and_ask_it_about_every_id(
    workers: list[Pipeline], server: StoreServer
) -> None:
    a, b = workers
    assert isinstance(a.store, RemoteStore) and isinstance(a.state.known, EveryId)
    dispatched = event("order.dispatched", order_id="O1")
    await a.process([Record(Source("hotline.orders", 0, 0), b"O1", raw(dispatched))], "orders")
    await a.settle()
    # The same event re-sent under another key lands on another partition, another worker's.
    await b.process([Record(Source("hotline.orders", 1, 0), b"other", raw(dispatched))], "orders")
    await b.settle()
    assert _sample(b, "hotline_duplicate_events_total", {"topic": "hotline.orders"}) == 1
    assert server.store.counts() == {"events": 1, "deadletter": 0}
    totals = server.store.query_rows("SELECT sum(dispatched) AS n FROM {db}.unit_windows FINAL")
    assert totals == [{"n": 1}], "counted once, whichever worker read the copy"
    assert server.store.progress() == {("hotline.orders", 0): 0, ("hotline.orders", 1): 0}


async def test_another_event_under_an_id_another_worker_stored_is_a_conflict(
    workers: list[Pipeline], server: StoreServer
) -> None:
    a, b = workers
    first = event("order.dispatched", event_id="ev-same", order_id="O1")
    other = event("order.dispatched", event_id="ev-same", order_id="O2", unit_id="yuetang")
    await a.process([Record(Source("hotline.orders", 0, 0), b"O1", raw(first))], "orders")
    await b.process([Record(Source("hotline.orders", 1, 0), b"O2", raw(other))], "orders")
    sent = b.deadletter_topic.sent  # type: ignore[attr-defined]
    assert [s["headers"]["hotline.conflict.source"] for s in sent] == [b"hotline.orders[0]@0"]
    assert server.store.counts() == {"events": 1, "deadletter": 1}


async def test_each_worker_resumes_from_the_one_ledger(workers: list[Pipeline], server: StoreServer) -> None:
    a, b = workers
    records = [
        Record(Source("hotline.orders", 2, n), b"O5", raw(event("order.dispatched", order_id="O5"))) for n in range(3)
    ]
    await a.process(records[:2], "orders")
    await a.settle()
    # Partition 2 moves to b (a rebalance, or a killed a): b starts after a's last stored offset.
    folded_by_b = await b.process(records, "orders")
    assert folded_by_b is not None and [s.source.offset for s in folded_by_b.batch.deadletters] == []
    assert b.ledger.next_offset[("hotline.orders", 2)] == 3
    assert _sample(b, "hotline_events_processed_total", {"topic": "hotline.orders"}) == 1


def test_the_store_restates_a_pending_store_before_serving(settings: Settings) -> None:
    with ClickHouseStore(settings) as store:
        store.migrate()
        store.write(folded([event("order.dispatched", order_id="O1")]))
        store.record_generation(RESTATE_PENDING, "as a directory from before windows would say")
    service = StoreServer(settings)
    try:
        generation = service.open()
        assert not generation.restate_pending
        assert service.store.query_rows("SELECT sum(dispatched) AS n FROM {db}.unit_windows FINAL") == [{"n": 1}]
    finally:
        service.close()


async def test_any_workers_screen_shows_every_unit_whichever_worker_holds_it(workers: list[Pipeline]) -> None:
    from datetime import datetime

    from hotline.monitor import LiveMonitor, trend_answer
    from hotline.streams.deadlines import TZ

    a, b = workers
    now = datetime.now(TZ).replace(microsecond=0)
    due = (now + timedelta(days=3)).isoformat()
    yuhu = event("order.dispatched", order_id="O1", unit_id="yuhu", occurred_at=now.isoformat(), due_at=due)
    police = event("order.dispatched", order_id="O2", unit_id="police", occurred_at=now.isoformat(), due_at=due)
    await a.process([Record(Source("hotline.orders", 0, 0), b"O1", raw(yuhu))], "orders")
    await b.process([Record(Source("hotline.orders", 1, 0), b"O2", raw(police))], "orders")
    await a.settle()
    await b.settle()
    for pipeline in (a, b):
        screen = LiveMonitor(pipeline, min_interval_s=0.0, shared_store=True)
        units = {u["unit_id"]: u for u in (await screen.snapshot(None)).to_json()["units"]}
        assert units["yuhu"]["today"]["dispatched"] == 1 and units["police"]["today"]["dispatched"] == 1
        assert units["yuhu"]["open"] == 1 and units["police"]["open"] == 1
        status, trend = trend_answer(pipeline, "*", {"unit": "police", "days": "1"}, figures=await screen.figures())
        assert status == 200 and trend["days"][-1]["dispatched"] == 1
    # Alone, a worker's agents hold only the partitions it reads.
    alone = LiveMonitor(a, min_interval_s=0.0)
    units = {u["unit_id"]: u for u in (await alone.snapshot(None)).to_json()["units"]}
    assert units["yuhu"]["today"]["dispatched"] == 1 and units["police"]["today"].get("dispatched", 0) == 0


async def test_the_shared_screen_reads_the_store_again_once_its_ledger_moved(workers: list[Pipeline]) -> None:
    from hotline.monitor import StoreWide

    a, b = workers
    reads: list[int] = []
    clock = [0.0]
    wide = StoreWide(a, min_interval_s=0.5, clock=lambda: clock[0])
    original = wide._read
    wide._read = lambda: (reads.append(1), original())[1]  # type: ignore[method-assign]
    first = await wide.current()
    assert await wide.current() is first and len(reads) == 1, "nothing moved: no second read"
    await b.process(
        [Record(Source("hotline.orders", 3, 0), b"O3", raw(event("order.dispatched", order_id="O3")))], "orders"
    )
    await b.settle()
    assert await wide.current() is first, "the ledger is asked at most once per interval"
    clock[0] = 1.0
    assert await wide.current() is not first and len(reads) == 2


# -- history through the store: `hotline import` and `restate` while the store holds ClickHouse --


@pytest.fixture
def remote(settings: Settings, server: StoreServer) -> Iterator[RemoteStore]:
    client = RemoteStore(settings)
    client.connect()
    yield client
    client.close()


def test_an_import_through_the_store_equals_one_into_clickhouse(
    remote: RemoteStore, server: StoreServer, tmp_path: Path
) -> None:
    path = _file(tmp_path / "m.jsonl", [raw(e) for e in _month()])
    tally = history.import_file(remote, path, default_registry(), LIMITS)
    direct = ClickHouseStore(server.settings.model_copy(update={"clickhouse_database": "direct"}), server.store.client)
    direct.migrate()
    history.import_file(direct, path, default_registry(), LIMITS)
    assert (tally.records, tally.events) == (11, 11)
    assert _figures(server.store) == _figures(direct)


async def test_events_imported_through_the_store_are_duplicates_to_its_workers(
    remote: RemoteStore, workers: list[Pipeline], server: StoreServer, tmp_path: Path
) -> None:
    events = _month()
    history.import_file(remote, _file(tmp_path / "m.jsonl", [raw(e) for e in events]), default_registry(), LIMITS)
    a = workers[0]
    await a.process([Record(Source("hotline.orders", 0, 0), b"O1", raw(events[0]))], "orders")
    await a.settle()
    assert _sample(a, "hotline_duplicate_events_total", {"topic": "hotline.orders"}) == 1
    assert server.store.counts()["events"] == len(events)


def test_a_client_starts_no_generation_but_an_imports(remote: RemoteStore) -> None:
    with pytest.raises(StoreRefused, match="only 'import' generations"):
        remote.record_generation(RESTATE_PENDING, "would make every worker refuse to start")
    assert remote.generation().gen == 0


@pytest.fixture
def running_worker(settings: Settings, server: StoreServer) -> Iterator[StandIn]:
    """A worker the store knows (its store announced it) and whose ``/metrics`` answers: running."""
    page = StandIn()
    store = RemoteStore(settings.model_copy(update={"web_port": page.port}), announce=True)
    store.connect()
    store.close()
    yield page
    page.close()


def test_an_import_or_restate_is_refused_while_a_worker_answers(remote: RemoteStore, running_worker: StandIn) -> None:
    with pytest.raises(StoreRefused, match=f"still running \\({running_worker.name}\\): stop them first") as refused:
        remote.begin_history()
    assert refused.value.status == WORKERS_RUNNING


def test_an_import_may_begin_once_the_workers_stopped(remote: RemoteStore, running_worker: StandIn) -> None:
    """A stopped worker stays known to the store (its metrics, for a while), but no longer answers."""
    running_worker.stop_answering()
    remote.begin_history()


def test_hotline_import_through_the_store_stops_before_writing_while_a_worker_runs(
    settings: Settings, server: StoreServer, running_worker: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from hotline import cli, heap
    from hotline.commands import common

    monkeypatch.setattr(common, "get_settings", lambda: settings)
    monkeypatch.setattr(heap, "for_long_runs", lambda: None)  # the GC policy stays the test process's
    path = _file(tmp_path / "m.jsonl", [raw(e) for e in _month()])
    result = CliRunner().invoke(cli.app, ["import", str(path)])
    assert result.exit_code != 0
    assert f"still running ({running_worker.name})" in " ".join(result.output.split())
    assert server.store.generation().gen == 0 and server.store.counts()["events"] == 0


def test_the_store_restates_on_a_clients_request(remote: RemoteStore, server: StoreServer, tmp_path: Path) -> None:
    history.import_file(remote, _file(tmp_path / "m.jsonl", [raw(e) for e in _month()]), default_registry(), LIMITS)
    before = _figures(server.store)
    server.store.command("ALTER TABLE {db}.unit_windows DROP PARTITION 201911")  # what a rule change leaves stale
    assert _figures(server.store) != before
    assert remote.restate(201911, 201911) == [201911]
    assert _figures(server.store) == before
    assert remote.generation().kind == "restate"


# -- fencing: a worker whose partitions were taken over writes nothing more for them ----------

P0 = ("hotline.orders", 0)


def _worker_of(settings: Settings, group: str = "hotline-unit-group") -> RemoteStore:
    """A worker's calls to the store, as its pipeline makes them (the group is its HOTLINE_APP_ID)."""
    store = RemoteStore(settings.model_copy(update={"app_id": group}))
    store.connect()
    return store


def test_the_store_refuses_a_write_of_an_older_generation_before_touching_clickhouse(
    settings: Settings, server: StoreServer
) -> None:
    new_owner, stalled = _worker_of(settings), _worker_of(settings)
    new_owner.claim(Fence.of(2, [P0]))
    with pytest.raises(StoreFenced):
        stalled.write(folded([event("order.dispatched", order_id="O1")]), Fence.of(1, [P0]))
    assert server.store.counts() == {"events": 0, "deadletter": 0}
    assert server.store.query_rows("SELECT count() AS n FROM {db}.unit_windows") == [{"n": 0}]


def test_the_store_refuses_progress_of_an_older_generation(settings: Settings, server: StoreServer) -> None:
    new_owner, stalled = _worker_of(settings), _worker_of(settings)
    new_owner.claim(Fence.of(2, [P0]))
    new_owner.record_progress({P0: 3}, Fence.of(2, [P0]))
    with pytest.raises(StoreFenced):
        stalled.record_progress({P0: 9}, Fence.of(1, [P0]))
    assert server.store.progress() == {P0: 3}, "the stalled worker's batch never reached the ledger"


def test_the_store_refuses_a_claim_older_than_the_one_it_holds(settings: Settings, server: StoreServer) -> None:
    new_owner, stalled = _worker_of(settings), _worker_of(settings)
    new_owner.claim(Fence.of(2, [P0]))
    with pytest.raises(StoreFenced) as refused:
        stalled.claim(Fence.of(1, [P0, ("hotline.orders", 1)]))
    assert refused.value.claims == {P0: 2}
    assert server.claims.holder("hotline-unit-group", ("hotline.orders", 1)) is None, "refused whole"
    new_owner.write(folded([event("order.dispatched", order_id="O1")]), Fence.of(2, [P0]))  # the holder writes
    assert server.store.counts()["events"] == 1


def test_a_restarted_store_still_refuses_an_older_generation(settings: Settings) -> None:
    """Claims are in ClickHouse: a worker stalled across a store restart stays fenced off."""
    with StoreServer(settings) as first:
        first.ops["claim"]({"group": "g", "fence": Fence.of(5, [P0]).as_json()})
    with StoreServer(settings) as again:
        with pytest.raises(StoreFenced):
            again.ops["write"]({"group": "g", "fence": Fence.of(4, [P0]).as_json(), "batch": None})
        assert again.claims.holder("g", P0) == 5


@pytest.fixture
async def group(
    settings: Settings, server: StoreServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[list[Pipeline]]:
    """Two workers of one consumer group, storing through one store."""
    async for pipelines in _settled(
        [_pipeline(settings, name, monkeypatch, group="hotline-unit-group") for name in ("a", "b")]
    ):
        yield pipelines


async def _assigned(worker: Pipeline, generation: int, partitions: list[tuple[str, int]]) -> bool:
    """What a worker does on an assignment (``Assignment.resume_locked``): claim, then read from the ledger."""
    worker.app.consumer_generation_id = generation
    if not await worker.assignment.claim(partitions):
        return False
    assert worker.reader is not None
    worker.reader.assign(dict.fromkeys(partitions, 0))
    return True


def _dispatch(order_id: str, offset: int) -> list[Record]:
    return [Record(Source(*P0, offset), order_id.encode(), raw(event("order.dispatched", order_id=order_id)))]


async def test_a_worker_whose_partition_was_taken_over_does_not_write_its_batch_nor_retry_it(
    group: list[Pipeline], server: StoreServer
) -> None:
    a, b = group
    assert await _assigned(a, 1, [P0])
    await a.process(_dispatch("O1", 0), "orders")
    await a.settle()
    # a stalls past the session timeout; the group gives P0 to b under generation 2.
    assert await _assigned(b, 2, [P0])
    # a wakes up and finishes the batch it had in hand.
    assert await a.process(_dispatch("O2", 1), "orders") is None
    assert server.store.query_rows("SELECT order_id FROM {db}.events FINAL") == [{"order_id": "O1"}]
    assert _sample(a, "hotline_store_fenced_total", {"op": "write"}) == 1
    assert _sample(a, "hotline_store_retries_total", {}) == 0 and a.health.as_json() == {"ok": True}
    assert _sample(a, "hotline_events_processed_total", {"topic": "hotline.orders"}) == 1, "not counted as sunk"


async def test_a_worker_whose_partition_was_taken_over_does_not_move_the_ledger(
    group: list[Pipeline], server: StoreServer
) -> None:
    a, b = group
    assert await _assigned(a, 1, [P0])
    acked = asyncio.Event()

    async def slow_broker() -> None:
        await acked.wait()

    a.batches.flush_changelog = slow_broker  # type: ignore[method-assign]
    await a.process(_dispatch("O1", 0), "orders")  # stored; its progress waits for the changelog
    assert await _assigned(b, 2, [P0])  # meanwhile a stalls and P0 moves to b
    acked.set()
    await a.settle()
    assert server.store.progress() == {}, "b resumes from the ledger as it found it"
    assert a.positions == {} and _sample(a, "hotline_store_fenced_total", {"op": "record_progress"}) == 1


async def test_a_worker_whose_partition_was_taken_over_stops_reading_until_its_next_assignment(
    group: list[Pipeline], server: StoreServer
) -> None:
    a, b = group
    assert await _assigned(a, 1, [P0, ("hotline.orders", 1)])
    assert await _assigned(b, 2, [P0])
    await a.process(_dispatch("O1", 0), "orders")
    assert a.reader is not None and a.reader.reading() == set(), "the batch reader reads none of them"
    # A batch already read ahead is dropped without a call to the store.
    assert await a.process(_dispatch("O2", 1), "orders") is None
    assert _sample(a, "hotline_store_fenced_total", {"op": "write"}) == 1
    # The rebalance that fenced it brings its next assignment: it claims it and reads again.
    assert await _assigned(a, 3, [P0])
    assert a.reader.reading() == {P0}
    await a.process(_dispatch("O3", 0), "orders")
    await a.settle()
    assert server.store.progress() == {P0: 0}


async def test_a_worker_claiming_under_an_older_generation_reads_nothing(
    group: list[Pipeline], server: StoreServer
) -> None:
    a, b = group
    assert await _assigned(b, 2, [P0])
    assert a.reader is not None
    a.reader.assign({P0: 0})  # what it read before it stalled
    assert not await _assigned(a, 1, [P0]), "the claim of a stale assignment is refused"
    assert a.claims.fenced and a.reader.reading() == set()
    assert _sample(a, "hotline_store_fenced_total", {"op": "claim"}) == 1


async def test_an_idle_worker_renewing_a_claim_taken_over_is_fenced(group: list[Pipeline]) -> None:
    a, b = group
    assert await _assigned(a, 1, [P0])
    assert await _assigned(b, 2, [P0])
    await a.assignment.renew_claim()  # its timer, with nothing to store
    assert a.claims.fenced and a.reader is not None and a.reader.reading() == set()


async def test_a_renewal_racing_the_workers_next_claim_does_not_fence_it(group: list[Pipeline]) -> None:
    a, b = group
    assert await _assigned(a, 1, [P0])
    assert await _assigned(b, 2, [P0])
    renewal = asyncio.ensure_future(a.assignment.renew_claim())  # under generation 1, still on its way
    assert await _assigned(a, 3, [P0])
    await renewal
    assert not a.claims.fenced and a.reader is not None and a.reader.reading() == {P0}


def test_a_lapsed_claim_taken_by_a_recreated_group_survives_a_store_restart(settings: Settings) -> None:
    lapsing = settings.model_copy(update={"store_claim_lease_s": 0.05})
    with StoreServer(lapsing) as first:
        first.ops["claim"]({"group": "g", "fence": Fence.of(57, [P0]).as_json()})
        deadline = time.monotonic() + 10
        while first.claims.holder("g", P0) is not None:  # the group gone longer than the lease
            assert time.monotonic() < deadline, "the claim never lapsed"
            time.sleep(0.01)
        first.ops["claim"]({"group": "g", "fence": Fence.of(1, [P0]).as_json()})  # Kafka re-created it
    with StoreServer(settings) as again:
        assert again.claims.holder("g", P0) == 1, "the latest claim, not the highest generation"


# -- the same new event from two partitions at once: counted once ---------------------------------------


async def test_an_event_another_worker_stored_after_the_lookup_is_folded_again_as_a_duplicate(
    workers: list[Pipeline], server: StoreServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = workers
    # The race staged here is between b's lookup of the event's id and its write. With eviction on,
    # b would also look its absent order up (WorkerState.states) and find a's state there first.
    b.state.settings = b.settings.model_copy(update={"evict_after_s": 0})
    dispatched = event("order.dispatched", order_id="O1")
    looked_up = a.store.stored

    def lookup_then_the_other_worker_writes(event_ids: list[str]) -> Any:
        """b's lookup finds nothing; a's copy (partition 0) is stored right after it, before b writes."""
        found = looked_up(event_ids)
        if not found and not server.store.counts()["events"]:
            server.ops["write"]({"batch": folded([dispatched], partition=0)})
        return found

    monkeypatch.setattr(b.store, "stored", lookup_then_the_other_worker_writes)
    await b.process([Record(Source("hotline.orders", 1, 0), b"other", raw(dispatched))], "orders")
    await b.settle()
    assert server.store.query_rows("SELECT sum(dispatched) AS n FROM {db}.unit_windows FINAL") == [{"n": 1}]
    assert _sample(b, "hotline_duplicate_events_total", {"topic": "hotline.orders"}) == 1
    assert _sample(b, "hotline_store_raced_events_total", {}) == 1
    assert server.store.query_rows("SELECT source_partition FROM {db}.events FINAL") == [{"source_partition": 0}]


def test_a_batch_written_again_from_the_same_source_is_not_a_race(server: StoreServer) -> None:
    batch = folded([event("order.dispatched", order_id="O1")])
    server.ops["write"]({"batch": batch})
    server.ops["write"]({"batch": batch})  # a retry after a lost answer
    assert server.store.counts()["events"] == 1


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT * FROM file('/proc/self/environ', 'RawBLOB')",
        "SELECT * FROM url('http://127.0.0.1:9/x', 'CSV', 'a String')",
        "SELECT 1 FROM {db}.events WHERE event_id IN (SELECT * FROM remote('h', 'db', 't'))",
        "SELECT * FROM {db}.events AS e JOIN `file`('/etc/hosts', 'LineAsString') AS f ON 1",
        "SELECT * FROM system.processes",
        "SELECT * FROM default.secrets",
        "SELECT count() FROM {db}.events SETTINGS max_execution_time = 100000",
    ],
)
def test_a_query_that_reads_the_host_or_other_tables_is_refused(sql: str) -> None:
    from hotline.sinks.server import BadCall, read_only

    with pytest.raises(BadCall):
        read_only(sql)


def test_every_query_the_reports_make_is_served() -> None:
    """The project's own statements (every module-level SQL of the readers) pass the store's check."""
    from hotline.reports import charts, live, queries
    from hotline.sinks.server import read_only

    statements = [
        value
        for module in (queries, live, charts)
        for value in vars(module).values()
        if isinstance(value, str) and value.lstrip().upper().startswith(("SELECT", "WITH"))
    ]
    assert len(statements) >= 10
    for sql in statements:
        assert read_only(sql) == sql


def test_the_store_serves_every_operation_the_wire_names_and_no_other(settings: Settings) -> None:
    """The client's calls are typed by the wire's names (``hotline.sinks.wire.Op``): each must be served."""
    server = StoreServer(settings)  # not opened: its operations are declared at construction
    try:
        served = {*server.ops, "begin_history"}  # begin_history asks the workers, not ClickHouse
    finally:
        server.close()
    assert served == set(OPS)
