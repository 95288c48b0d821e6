"""RemoteStore against a real ``hotline store`` served in this process over a temporary chDB.

Every operation a worker, its pages and the reports call comes back as the store's own store
answers it; the store's one id filter sees every worker's writes; tokens, read-only queries
and outages are said as such.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import urllib3

from hotline.reports.bulletin import build_bulletin
from hotline.reports.edition import assemble
from hotline.settings import Settings
from hotline.sinks.base import Batch, DeadLetter, Generation, OrderRow, Stored
from hotline.sinks.codec import CODEC_VERSION
from hotline.sinks.fencing import Fence
from hotline.sinks.migrations import SCHEMA_VERSION
from hotline.sinks.remote import (
    RemoteStore,
    StoreFenced,
    StoreMismatch,
    StoreRefused,
    StoreUnavailable,
)
from hotline.sinks.server import StoreServer, read_only
from hotline.sinks.store import open_store
from hotline.sinks.wire import CODEC_HEADER
from hotline.streams import history
from tests.factories import event, folded
from tests.stores import TOKEN, serving, store_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return store_settings(tmp_path)


@pytest.fixture
def server(settings: Settings) -> Iterator[StoreServer]:
    yield from serving(settings)


@pytest.fixture
def remote(settings: Settings, server: StoreServer) -> Iterator[RemoteStore]:
    store = open_store(settings)  # the worker's one composition point: the URL set, a RemoteStore
    assert isinstance(store, RemoteStore)
    yield store
    store.close()


def _month() -> Batch:
    batch: Batch = folded(
        [
            event("order.dispatched", event_id="d1", order_id="O1", due_at="2019-11-08T09:00:00+08:00"),
            event("order.completed", event_id="c1", order_id="O1", occurred_at="2019-11-07T09:00:00+08:00"),
            event("order.dispatched", event_id="d2", order_id="O2", due_at="2019-11-20T09:00:00+08:00"),
            event(
                "order.visited",
                event_id="v1",
                order_id="O2",
                occurred_at="2019-11-06T09:00:00+08:00",
                outcome="unsatisfied",
            ),
            event(
                "order.visited",
                event_id="v2",
                order_id="O2",
                occurred_at="2019-11-07T09:00:00+08:00",
                outcome="unsatisfied",
            ),
            event("order.returned", event_id="r1", order_id="O2", occurred_at="2019-11-08T09:00:00+08:00"),
            event("check.test_call", event_id="t1", deductions=[{"item": "服务规范", "points": 1.5}]),
            event("call.received", event_id="k1", caller={"phone": "13800000000", "name": "张三"}),
        ]
    )
    batch.deadletters.append(
        DeadLetter("hotline.orders", 0, 8, "not JSON", b'{"caller": 13800000000', b"O9", (("h", b"\x00"),))
    )
    return batch


def test_a_batch_written_through_the_store_reads_back_by_every_method(remote: RemoteStore, server: StoreServer) -> None:
    local = server.store
    assert remote.schema_version == SCHEMA_VERSION and remote.db == local.db
    batch = _month()
    remote.write(batch)
    remote.write(batch)  # a retried call: idempotent
    remote.record_progress({("hotline.orders", 0): 8, ("hotline.calls", 1): 0})
    remote.record_progress({})

    assert remote.progress() == local.progress() == {("hotline.orders", 0): 8, ("hotline.calls", 1): 0}
    assert remote.counts() == local.counts() == {"events": 8, "deadletter": 1}
    assert remote.event_count() == local.event_count()
    assert sorted(i for ids in remote.event_ids() for i in ids) == sorted(i for ids in local.event_ids() for i in ids)
    stored = remote.stored(["d1", "k1", "nope"])
    assert stored == local.stored(["d1", "k1"]) and set(stored) == {"d1", "k1"}
    assert all(isinstance(s, Stored) for s in stored.values()) and "13800000000" not in stored["k1"].payload
    assert remote.stored([]) == {}

    states = remote.order_states(["O1", "O2", "O3"])
    assert states == local.order_states(["O1", "O2"]) and set(states) == {"O1", "O2"}
    assert all(isinstance(o, OrderRow) for o in states.values())
    assert states["O1"].due.tzinfo is not None and states["O1"].seen == ("d1", "c1")
    assert remote.order_states([]) == {}
    assert remote.open_orders() == local.open_orders() and [o.order_id for o in remote.open_orders()] == ["O2"]
    assert remote.awaiting_supervision() == local.awaiting_supervision()
    assert [o.order_id for o in remote.awaiting_supervision()] == ["O2"]

    # The worker's window lookup: (topic, partition) tuples and dates as parameters.
    where = "(source_topic, source_partition) IN %(tps)s AND day IN %(days)s"
    params = {"tps": [("hotline.orders", 0)], "days": [date(2019, 11, 4), date(2019, 11, 7)]}
    windows = remote.windows(where, params)
    assert windows and sorted(windows, key=repr) == sorted(local.windows(where, params), key=repr)
    assert remote.windows("day >= %(since)s", {"since": date(2019, 11, 1)}) == local.windows(
        "day >= %(since)s", {"since": date(2019, 11, 1)}
    )

    assert remote.generation() == local.generation() == Generation()
    assert remote.healthy() is True
    sql = "SELECT event_id, occurred_at, points, deduction_points FROM {db}.events WHERE event_id = %(id)s"
    assert remote.query_rows(sql, {"id": "t1"}) == local.query_rows(sql, {"id": "t1"})
    assert remote.query(sql, {"id": "t1"}) == local.query(sql, {"id": "t1"})
    assert remote.deadletters(limit=5) == local.deadletters(limit=5)
    assert history.event_months(remote) == history.event_months(local) == [201911]


def test_the_bulletin_reads_the_same_through_the_store(remote: RemoteStore, server: StoreServer) -> None:
    remote.write(_month())
    assert build_bulletin(remote, "2019-11").rows() == build_bulletin(server.store, "2019-11").rows()
    through, direct = assemble(remote, "2019-11"), assemble(server.store, "2019-11")
    assert through.rows() == direct.rows() and through.daily == direct.daily


def test_the_store_filter_sees_every_workers_writes(settings: Settings, server: StoreServer) -> None:
    first, second = RemoteStore(settings), RemoteStore(settings)
    first.connect()
    second.connect()
    first.write(folded([event("call.received", event_id="shared")], topic="hotline.calls", partition=0))
    # The other worker, whose own process never saw that id, finds it: the store filtered for it.
    assert set(second.stored(["shared", "fresh"])) == {"shared"}


def test_a_store_opened_on_stored_events_knows_them(settings: Settings) -> None:
    with StoreServer(settings) as service:
        service.store.write(folded([event("call.received", event_id="before")], topic="hotline.calls"))
    with StoreServer(settings) as again:
        assert set(again._stored({"event_ids": ["before", "after"]})) == {"before"}


def test_calls_without_the_token_are_refused(settings: Settings, server: StoreServer) -> None:
    for token in ("wrong", ""):
        store = RemoteStore(settings.model_copy(update={"store_token": token or "x"}))
        if not token:
            store._headers.pop("Authorization")
        with pytest.raises(StoreRefused) as refused:
            store.connect()
        assert refused.value.status == 401
        assert store.healthy() is False
    with pytest.raises(ValueError, match="STORE_TOKEN"):
        RemoteStore(settings.model_copy(update={"store_token": None}))
    with pytest.raises(ValueError, match="STORE_TOKEN"):
        StoreServer(settings.model_copy(update={"store_token": None}))


def test_only_single_reads_are_served(remote: RemoteStore) -> None:
    for sql in (
        "DROP TABLE {db}.events",
        "INSERT INTO {db}.sink_offsets VALUES ('t', 0, 99)",
        "SELECT 1; DROP TABLE {db}.events",
        "SELECT 1 INTO OUTFILE '/tmp/x'",
        "ALTER TABLE {db}.events DELETE WHERE 1",
    ):
        with pytest.raises(StoreRefused) as refused:
            remote.query_rows(sql)
        assert refused.value.status == 400, sql
    with pytest.raises(StoreRefused):
        remote.windows("1; DROP TABLE {db}.events")
    assert remote.progress() == {}
    assert read_only("\n  with x AS (SELECT 1) SELECT * FROM x") and read_only("SELECT 1")


def test_what_clickhouse_refuses_is_a_refusal_not_an_outage(remote: RemoteStore) -> None:
    with pytest.raises(StoreRefused) as refused:
        remote.query_rows("SELECT no_such_column FROM {db}.events")
    assert refused.value.status == 500 and "no_such_column" in refused.value.reason
    assert remote.healthy() is True


def test_malformed_calls_are_400(settings: Settings, server: StoreServer) -> None:
    pool = urllib3.PoolManager()
    headers = {"Authorization": f"Bearer {TOKEN}", CODEC_HEADER: str(CODEC_VERSION)}
    url = f"{settings.store_url}/v1"
    for op, body, status in (
        ("write", b"{not json", 400),
        ("write", b'{"batch": {"$t": "pickle", "v": "gASV"}}', 400),
        ("write", b'{"batch": [1]}', 400),
        ("stored", b'{"event_ids": "abc"}', 400),
        ("record_progress", b'{"offsets": [["t", 0]]}', 400),
        ("claim", b"{}", 400),
        ("claim", b'{"group": "g", "fence": {"generation": "1", "partitions": []}}', 400),
        ("write", b'{"batch": null, "fence": {"generation": 1, "partitions": []}}', 400),  # no group
        ("hello", b"[]", 400),
        ("no_such_op", b"{}", 404),
    ):
        response = pool.request("POST", f"{url}/{op}", body=body, headers=headers)
        assert response.status == status, (op, body, response.data)
    assert pool.request("GET", f"{settings.store_url}/metrics").status == 200


def test_a_store_that_does_not_answer_is_an_outage(settings: Settings) -> None:
    store = RemoteStore(settings)  # nothing listens on the port
    with pytest.raises(StoreUnavailable):
        store.write(Batch())
    with pytest.raises(StoreUnavailable):
        store.progress()
    assert store.healthy() is False


def test_a_worker_of_another_schema_version_is_refused(
    settings: Settings, server: StoreServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hotline.sinks.remote.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreMismatch, match="same hotline release"):
        open_store(settings)


def test_a_worker_and_a_store_of_two_codec_versions_refuse_each_other(
    settings: Settings, server: StoreServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = urllib3.PoolManager()
    for said in ({}, {CODEC_HEADER: "1"}):  # a worker of the release before codec 2 sends no header
        answer = pool.request(
            "POST", f"{settings.store_url}/v1/hello", body=b"{}", headers={"Authorization": f"Bearer {TOKEN}", **said}
        )
        assert answer.status == 400 and b"same hotline release" in answer.data, said
    monkeypatch.setattr("hotline.sinks.server.CODEC_VERSION", CODEC_VERSION + 1)  # a store of a newer codec
    with pytest.raises(StoreRefused, match="store codec version") as refused:
        open_store(settings)
    assert refused.value.status == 400
    monkeypatch.setattr("hotline.sinks.server.CODEC_VERSION", CODEC_VERSION)
    monkeypatch.setitem(server.ops, "hello", lambda args: {"db": server.store.db, "schema_version": SCHEMA_VERSION})
    with pytest.raises(StoreMismatch, match="store codec version 1, this worker 2"):  # a store of version 1
        open_store(settings)


def test_the_store_metrics_count_calls(settings: Settings, remote: RemoteStore) -> None:
    remote.write(_month())
    remote.progress()
    text = urllib3.PoolManager().request("GET", f"{settings.store_url}/metrics").data.decode()
    assert 'hotline_store_calls_total{op="write",outcome="ok"} 1.0' in text
    assert 'hotline_store_call_seconds_count{op="progress"} 1.0' in text
    assert "hotline_store_known_ids 8.0" in text


def test_a_call_for_a_partition_a_newer_generation_claimed_raises_store_fenced(
    settings: Settings, remote: RemoteStore, server: StoreServer
) -> None:
    remote.claim(Fence.of(2, [("hotline.orders", 0)]))  # the group's new owner
    with pytest.raises(StoreFenced) as fenced:
        remote.write(_month(), Fence.of(1, [("hotline.orders", 0), ("hotline.calls", 1)]))
    assert fenced.value.op == "write" and fenced.value.generation == 1
    assert fenced.value.claims == {("hotline.orders", 0): 2}
    assert not isinstance(fenced.value, StoreRefused | StoreUnavailable), "neither retried nor dead-lettered"
    assert server.store.counts() == {"events": 0, "deadletter": 0}
    text = urllib3.PoolManager().request("GET", f"{settings.store_url}/metrics").data.decode()
    assert 'hotline_store_calls_total{op="write",outcome="fenced"} 1.0' in text
