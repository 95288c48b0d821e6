"""The store's ``/metrics`` covers every worker that calls it: one scrape target for the group.

Workers are stood in for by real worker registries (:class:`~hotline.streams.metrics.Metrics`)
served at ``/metrics`` on ports of their own, each announced to a store served in this process
by a real :class:`~hotline.sinks.remote.RemoteStore` call, as a worker's store makes it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from hotline.settings import Settings
from hotline.sinks.remote import RemoteStore, StoreRefused
from hotline.sinks.server import StoreServer
from hotline.sinks.store import open_store
from tests.stores import StandIn, serving, store_settings

FORGET_S = 600.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return store_settings(tmp_path, store_scrape_timeout_s=0.5, store_forget_worker_s=FORGET_S)


@pytest.fixture
def clock() -> list[float]:
    return [1000.0]


@pytest.fixture
def server(settings: Settings, clock: list[float]) -> Iterator[StoreServer]:
    for service in serving(settings):
        service.workers.clock = lambda: clock[0]
        yield service


@pytest.fixture
def workers() -> Iterator[list[StandIn]]:
    pages = [StandIn(), StandIn()]
    yield pages
    for page in pages:
        page.close()


def _store(settings: Settings, worker: StandIn) -> RemoteStore:
    """The store of the worker whose web (and so /metrics) is ``worker``'s port."""
    return RemoteStore(settings.model_copy(update={"web_port": worker.port}), announce=True)


@pytest.fixture
def announced_workers(settings: Settings, server: StoreServer, workers: list[StandIn]) -> list[StandIn]:
    """Both stand-ins known to the store, each from its store's first call."""
    for worker in workers:
        store = _store(settings, worker)
        store.connect()
        store.close()
    return workers


def _scrape(settings: Settings) -> str:
    response = urllib3.PoolManager().request("GET", f"{settings.store_url}/metrics", retries=False)
    assert response.status == 200
    return str(response.data.decode())


def _families(settings: Settings) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(_scrape(settings))}


def _by_worker(families: dict[str, Metric], family: str, sample: str | None = None) -> dict[str, float]:
    """The values of one sample name, by the ``worker`` label."""
    name = sample or family
    return {s.labels["worker"]: s.value for s in families[family].samples if s.name == name and "worker" in s.labels}


def test_each_workers_samples_come_labelled_with_its_name(settings: Settings, announced_workers: list[StandIn]) -> None:
    a, b = announced_workers
    a.metrics.events.labels("hotline.calls").inc(3)
    b.metrics.events.labels("hotline.calls").inc(5)
    families = _families(settings)
    assert _by_worker(families, "hotline_events_processed", "hotline_events_processed_total") == {a.name: 3, b.name: 5}
    assert _by_worker(families, "hotline_store_up") == {a.name: 0, b.name: 0}


def test_the_stores_own_samples_stay_unlabelled(settings: Settings, announced_workers: list[StandIn]) -> None:
    calls = _families(settings)["hotline_store_calls"].samples
    assert [(s.labels, s.value) for s in calls if s.name == "hotline_store_calls_total"] == [
        ({"op": "hello", "outcome": "ok"}, 2.0)
    ]


def test_each_family_is_described_once(settings: Settings, announced_workers: list[StandIn]) -> None:
    lines = _scrape(settings).splitlines()
    for kind in ("# HELP ", "# TYPE "):
        names = [line.split(" ")[2] for line in lines if line.startswith(kind)]
        assert len(names) == len(set(names)), kind
        assert "hotline_events_processed_total" in names and "hotline_sink_batch_seconds" in names
        assert "hotline_store_calls_total" in names and "hotline_worker_up" in names


def test_workers_that_answer_are_up(settings: Settings, announced_workers: list[StandIn]) -> None:
    a, b = announced_workers
    assert _by_worker(_families(settings), "hotline_worker_up") == {a.name: 1, b.name: 1}


def test_a_worker_that_stopped_answering_is_down_and_the_others_are_served(
    settings: Settings, announced_workers: list[StandIn]
) -> None:
    a, b = announced_workers
    b.stop_answering()
    families = _families(settings)
    assert _by_worker(families, "hotline_worker_up") == {a.name: 1, b.name: 0}
    assert set(_by_worker(families, "hotline_store_up")) == {a.name}


def test_a_slow_worker_is_down_after_the_scrape_timeout(settings: Settings, announced_workers: list[StandIn]) -> None:
    a, b = announced_workers
    b.hanging = True
    started = time.monotonic()
    families = _families(settings)
    assert time.monotonic() - started < 5 * settings.store_scrape_timeout_s
    assert _by_worker(families, "hotline_worker_up") == {a.name: 1, b.name: 0}


def test_last_call_seconds_counts_from_each_workers_last_call(
    settings: Settings, server: StoreServer, announced_workers: list[StandIn], clock: list[float]
) -> None:
    a, b = announced_workers
    clock[0] += 42
    store = _store(settings, a)
    store.progress()
    clock[0] += 3
    assert _by_worker(_families(settings), "hotline_worker_last_call_seconds") == {a.name: 3, b.name: 45}


def test_a_worker_neither_calling_nor_answering_is_forgotten(
    settings: Settings, server: StoreServer, announced_workers: list[StandIn], clock: list[float]
) -> None:
    a, b = announced_workers
    b.stop_answering()
    clock[0] += FORGET_S * 0.6
    assert set(_by_worker(_families(settings), "hotline_worker_up")) == {a.name, b.name}
    clock[0] += FORGET_S * 0.6
    assert set(_by_worker(_families(settings), "hotline_worker_up")) == {a.name}
    assert set(server.workers.known()) == {a.name}


def test_an_idle_worker_that_answers_stays_known(
    settings: Settings, announced_workers: list[StandIn], clock: list[float]
) -> None:
    a, b = announced_workers
    for _ in range(3):
        clock[0] += FORGET_S * 0.6
        families = _families(settings)
    assert _by_worker(families, "hotline_worker_up") == {a.name: 1, b.name: 1}
    assert _by_worker(families, "hotline_worker_last_call_seconds") == {a.name: FORGET_S * 1.8, b.name: FORGET_S * 1.8}


def test_calls_without_the_token_announce_no_worker(
    settings: Settings, server: StoreServer, workers: list[StandIn]
) -> None:
    store = _store(settings.model_copy(update={"store_token": "wrong"}), workers[0])
    with pytest.raises(StoreRefused):
        store.connect()
    assert server.workers.known() == {}
    assert _by_worker(_families(settings), "hotline_worker_up") == {}


def test_a_workers_store_announces_it_and_a_commands_does_not(
    settings: Settings, server: StoreServer, workers: list[StandIn]
) -> None:
    """The worker's pipeline opens its store with ``worker=True``; ``hotline import`` and ``restate``
    without: a command has no /metrics, and would show as a worker down for as long as it is remembered."""
    command = open_store(settings.model_copy(update={"web_port": workers[1].port}))
    command.close()
    assert server.workers.known() == {}
    worker = open_store(settings.model_copy(update={"web_port": workers[0].port}), worker=True)
    worker.close()
    assert set(server.workers.known()) == {workers[0].name}
