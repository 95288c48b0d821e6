"""Two workers in one consumer group, one storage owner (``hotline store``) over one embedded chDB.

The seed month is replayed while both workers process it; one is SIGKILLed mid-month, and the
other takes its partitions over, resuming from the ledger the store keeps. Then what the store
holds is compared with what was sent event by event, and the bulletin with the seed cell by
cell and headline. And alerts: orders on every partition fall due after one worker is killed;
each alert goes out once, from the worker that owns the order's partition by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hotline.client import worker_get
from hotline.deploy.worker import StoreProcess
from hotline.replay import produce, read_records, wait_until_sunk
from hotline.settings import Settings
from hotline.sinks.remote import RemoteStore
from hotline.streams.alerts import key_partition
from hotline.streams.deadlines import TZ
from tests.doubles import free_port
from tests.integration.conftest import Worker
from tests.integration.seed import (
    assert_headline_matches_seed,
    assert_stored_as_sent,
    assert_table_matches_seed,
    stored_event_ids,
)
from tests.integration.test_alerts import _send, alerts, dispatch, kinds, wait_for_alerts

pytestmark = pytest.mark.integration

TOKEN = "integration-store-token"


@pytest.fixture
def shared(isolated: Settings) -> Settings:
    """The test's topics and group, and the store every process of it reaches."""
    port = free_port()
    return isolated.model_copy(
        update={"store_token": TOKEN, "store_port": port, "store_url": f"http://127.0.0.1:{port}"}
    )


@pytest.fixture
def store(shared: Settings) -> Iterator[StoreProcess]:
    process = StoreProcess(shared.model_copy(update={"var_dir": shared.var_path / "store"}))
    yield process.start()
    process.stop()


def _worker_settings(shared: Settings, name: str) -> Settings:
    """One worker: the shared topics, group and store; its own var directory (Faust's) and port."""
    return shared.model_copy(update={"var_dir": shared.var_path / name, "web_port": free_port()})


def _processed(settings: Settings) -> float:
    """Records this worker has processed, from its /metrics; 0 while it does not answer."""
    try:
        text = worker_get(settings, "/metrics", timeout=5).decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("hotline_events_processed_total")
    )


def _processed_by_worker(shared: Settings) -> dict[str, float]:
    """Records processed, by the ``worker`` label of the store's /metrics (one target for every process)."""
    try:
        text = worker_get(shared.model_copy(update={"web_port": shared.store_port}), "/metrics", timeout=10).decode()
    except OSError:
        return {}
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hotline_events_processed_total" and "worker" in sample.labels:
                totals[sample.labels["worker"]] = totals.get(sample.labels["worker"], 0.0) + sample.value
    return totals


def _name(worker: Worker) -> str:
    """A worker's ``worker`` label at the store: the host:port of its web."""
    return f"{worker.settings.web_host}:{worker.settings.web_port}"


def _stored(settings: Settings) -> int:
    try:
        return sum(o + 1 for _, _, o in worker_get(settings, "/offsets", timeout=5)["offsets"])
    except OSError:
        return 0


def _both_assigned(second: Worker) -> None:
    """Once the second worker has partitions, the group's generation has both workers (the first
    is alive and heartbeating), each with a share of the partitions."""
    marker = "Setting newly assigned partitions"
    _wait_for("the second worker assigned", lambda: marker in second.log.read_text("utf-8", "replace"))


def _wait_for(what: str, check: object, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_two_workers_one_store_a_worker_killed_mid_month(
    shared: Settings, store: StoreProcess, month_file: Path
) -> None:
    first, second = Worker(_worker_settings(shared, "w1")), Worker(_worker_settings(shared, "w2"))
    try:
        first.start()
        second.start()
        _both_assigned(second)
        month = list(read_records(month_file, shared))
        total, half = len(month), len(month) // 2
        # The month in two halves, in order: the worker is killed after the first, so the second
        # half of its partitions can only be processed by the other worker, from the store's ledger.
        before = asyncio.run(produce(month[:half], shared))
        _wait_for("both workers processing", lambda: _processed(first.settings) > 0 and _processed(second.settings) > 0)
        _wait_for(
            "the store's /metrics with both workers' events",
            lambda: all(_processed_by_worker(shared).get(_name(w), 0) > 0 for w in (first, second)),
        )
        _wait_for("a quarter of the month stored", lambda: _stored(second.settings) >= total // 4)
        first.kill()  # its partitions go to the second worker once the group notices (session timeout)
        last = {**before, **asyncio.run(produce(month[half:], shared))}
        wait_until_sunk(last, second.settings, timeout=600)

        bulletin = worker_get(second.settings, "/bulletin/2019-11?format=json", timeout=120)
        csv_text = worker_get(second.settings, "/bulletin/2019-11?format=csv", timeout=120).decode()
        assert_table_matches_seed(csv_text)
        assert_headline_matches_seed(bulletin["headline"])

        sent = {json.loads(r.value)["event_id"] for r in month}
        assert_stored_as_sent(sent, stored_event_ids(shared))
        store_metrics = worker_get(shared.model_copy(update={"web_port": shared.store_port}), "/metrics").decode()
        assert 'hotline_store_calls_total{op="write",outcome="ok"}' in store_metrics
        assert f'hotline_worker_up{{worker="{_name(first)}"}} 0.0' in store_metrics, "the killed worker is down"
        assert f'hotline_worker_up{{worker="{_name(second)}"}} 1.0' in store_metrics
    finally:
        first.stop()
        second.stop()


def _per_partition(prefix: str, partitions: int, each: int) -> list[str]:
    """Order ids, ``each`` on every partition of the orders topic (Kafka's partitioner)."""
    ids: dict[int, list[str]] = {p: [] for p in range(partitions)}
    n = 0
    while any(len(found) < each for found in ids.values()):
        order_id = f"{prefix}{n}"
        if len(ids[key_partition(order_id, partitions)]) < each:
            ids[key_partition(order_id, partitions)].append(order_id)
        n += 1
    return [order_id for found in ids.values() for order_id in found]


def test_alerts_fail_over_once_between_two_workers(shared: Settings, store: StoreProcess, tmp_path: Path) -> None:
    alerting = shared.model_copy(update={"alert_leads_s": [4.0, 2.0], "session_timeout_s": 6.0})
    first, second = Worker(_worker_settings(alerting, "w1")), Worker(_worker_settings(alerting, "w2"))
    try:
        first.start()
        second.start()
        _both_assigned(second)
        now = datetime.now(TZ)
        orders = _per_partition("F", alerting.partitions, 2)
        units = ("yuhu", "police")
        _send(alerting, tmp_path, [dispatch(o, units[n % 2], now, 16) for n, o in enumerate(orders)])
        _wait_for("the orders stored", lambda: _stored(second.settings) >= len(orders), timeout=30)
        assert _processed(first.settings) and _processed(second.settings), "each worker held some of them"
        first.kill()  # before any of their alerts is due: half of them were the first worker's
        killed_at = time.time()
        deadline = now + timedelta(seconds=16)
        wait_for_alerts(
            alerting, lambda f: all(("alert.overdue", units[n % 2]) in kinds(f, o) for n, o in enumerate(orders))
        )
        time.sleep(2)  # anything sent twice would be on the topic by now
        found = alerts(alerting)
        # Each order's alerts in the order they fall due: at the two leads before the deadline, then at it.
        due_times = [(deadline - timedelta(seconds=lead)).timestamp() for lead in (*alerting.alert_leads_s, 0.0)]
        late_by_at_most = alerting.session_timeout_s + 5
        for n, order_id in enumerate(orders):
            unit = units[n % 2]
            assert kinds(found, order_id) == [
                ("alert.due_soon", unit),
                ("alert.due_soon", unit),
                ("alert.overdue", unit),
            ]
            sent = sorted(a["_sent_ms"] / 1000 for a in found if a["order_id"] == order_id)
            assert all(t > killed_at for t in sent), f"{order_id}: an alert sent before the kill, by the killed worker"
            for at, due in zip(sent, due_times, strict=True):
                assert due - 0.01 <= at <= due + late_by_at_most, f"{order_id}: sent at {at:.2f}, due at {due:.2f}"
        assert len({a["alert_id"] for a in found}) == len(found), "an alert was sent twice"
    finally:
        first.stop()
        second.stop()


class Flow:
    """Orders dispatched in small chunks from a thread until :meth:`finish`: events flow throughout."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings, self.tmp_path = settings, tmp_path
        self.sent: set[str] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        now, n = datetime.now(TZ), 0
        while not self._done.is_set():
            chunk = [dispatch(f"S{n + i}", "yuhu", now, 86400) for i in range(50)]
            _send(self.settings, self.tmp_path, chunk)
            self.sent.update(e["event_id"] for e in chunk)
            n += len(chunk)
            time.sleep(0.2)

    def finish(self) -> set[str]:
        self._done.set()
        self._thread.join(60)
        return self.sent


class LedgerWatch:
    """The store's ledger read every 0.2 s from a thread: each reading, to check it never moved backwards."""

    def __init__(self, settings: Settings) -> None:
        self.store = RemoteStore(settings)
        self.readings: list[dict[tuple[str, int], int]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            with contextlib.suppress(Exception):
                self.readings.append(self.store.progress())
            time.sleep(0.2)

    def backwards(self) -> list[str]:
        self._done.set()
        self._thread.join(10)
        moves = []
        for before, after in itertools.pairwise(self.readings):
            moves += [f"{tp}: {o} -> {after.get(tp)}" for tp, o in before.items() if after.get(tp, -1) < o]
        return moves


def _claims(store: RemoteStore) -> dict[tuple[str, int], int]:
    rows = store.query_rows(
        "SELECT source_topic, source_partition, max(generation) AS g FROM {db}.partition_claims "
        "GROUP BY source_topic, source_partition"
    )
    return {(str(r["source_topic"]), int(r["source_partition"])): int(r["g"]) for r in rows}


def test_a_worker_stopped_past_the_session_timeout_is_fenced_off_when_it_wakes(
    shared: Settings, store: StoreProcess, tmp_path: Path
) -> None:
    """SIGSTOP one worker while events flow; the other takes its partitions over; SIGCONT it: the
    store refuses what it still had in hand, and every event sent is stored once."""
    fencing = shared.model_copy(update={"session_timeout_s": 6.0, "batch_size": 100})
    first, second = Worker(_worker_settings(fencing, "w1")), Worker(_worker_settings(fencing, "w2"))
    remote = RemoteStore(shared)
    remote.connect()
    try:
        first.start()
        second.start()
        _both_assigned(second)
        watch = LedgerWatch(shared)
        flow = Flow(fencing, tmp_path)
        _wait_for("both workers processing", lambda: _processed(first.settings) > 0 and _processed(second.settings) > 0)
        held = _claims(remote)
        os.kill(first.pid, signal.SIGSTOP)  # stalled with its batch in hand, past the session timeout
        _wait_for(
            "the second worker claiming every partition under a newer generation",
            lambda: (now := _claims(remote)).keys() == held.keys() and all(now[tp] > g for tp, g in held.items()),
            timeout=120,
        )
        time.sleep(1)  # the new owner reading, writing over what the stalled worker held
        os.kill(first.pid, signal.SIGCONT)
        time.sleep(6)  # events still flowing while it wakes, rejoins the group and resumes
        sent = flow.finish()
        _wait_for(
            "every event sent stored",
            lambda: len(remote.query_rows("SELECT event_id FROM {db}.events FINAL")) >= len(sent),
            timeout=300,
        )
        stored = [r["event_id"] for r in remote.query_rows("SELECT event_id FROM {db}.events FINAL")]
        assert len(stored) == len(set(stored)), "an event id is stored twice"
        assert set(stored) == sent
        assert not watch.backwards(), "the ledger moved backwards"
        store_metrics = worker_get(shared.model_copy(update={"web_port": shared.store_port}), "/metrics").decode()
        refused = [line for line in store_metrics.splitlines() if 'outcome="fenced"' in line]
        assert refused, "the store refused none of the woken worker's calls"
        assert "fenced off by the store" in first.log.read_text("utf-8", "replace")
    finally:
        with contextlib.suppress(Exception):
            os.kill(first.pid, signal.SIGCONT)
        remote.close()
        first.stop()
        second.stop()
