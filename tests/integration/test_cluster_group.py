"""The production shape on one machine: three Kafka brokers, two workers in one group, one store.

The seed month is replayed in three parts. After the first, one worker is SIGKILLed (the other
takes its partitions over from the store's ledger); after the second, the broker leading an
orders partition is SIGKILLed (every topic keeps two of three replicas in sync, so producers with
``acks=all`` and the surviving worker go on). The third is sent with that broker down, and the
broker is restarted only once the survivor has stored five sixths of the month without it. Then
what the store holds is compared with what was sent event by event, and the bulletin with the
seed cell by cell and headline.

The cluster runs on the same ports as ``test_kafka_cluster.py`` (one module after the other, each
stops its cluster), in this test's own var directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.client import worker_get
from hotline.deploy import kafka
from hotline.deploy.worker import StoreProcess
from hotline.replay import produce, read_records, wait_until_sunk
from hotline.settings import Settings
from tests.doubles import free_port
from tests.integration.conftest import Worker
from tests.integration.seed import (
    assert_headline_matches_seed,
    assert_stored_as_sent,
    assert_table_matches_seed,
    stored_event_ids,
)
from tests.integration.test_kafka_cluster import BOOTSTRAP, CONTROLLER_PORT, _in_sync, _leader_node, _pid, _wait
from tests.integration.test_store import _both_assigned, _processed, _stored, _wait_for, _worker_settings

pytestmark = pytest.mark.integration

TOKEN = "integration-cluster-token"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Settings]:
    """Three nodes, this test's topics (three replicas, two in sync) and group, and its store's address."""
    tag = uuid.uuid4().hex[:8]
    port = free_port()
    settings = Settings(
        var_dir=tmp_path / "var",
        kafka_bootstrap=BOOTSTRAP,
        kafka_controller_port=CONTROLLER_PORT,
        kafka_brokers=3,
        app_id=f"hotline-cluster-{tag}",
        calls_topic=f"g{tag}.calls",
        orders_topic=f"g{tag}.orders",
        alerts_topic=f"g{tag}.alerts",
        deadletter_topic=f"g{tag}.deadletter",
        web_port=free_port(),
        store_token=TOKEN,
        store_port=port,
        store_url=f"http://127.0.0.1:{port}",
    )
    kafka.start(settings)
    try:
        topics = kafka.pipeline_topics(settings)
        kafka.ensure_topics(settings, topics)
        _wait(lambda: _in_sync(settings, *topics) == {3}, 120, "every partition on three brokers, all in sync")
        yield settings
    finally:
        kafka.stop(settings)


@pytest.fixture
def store(cluster: Settings) -> Iterator[StoreProcess]:
    process = StoreProcess(cluster.model_copy(update={"var_dir": cluster.var_path / "store"}))
    yield process.start()
    process.stop()


def test_a_worker_and_a_broker_killed_mid_month_lose_nothing(
    cluster: Settings, store: StoreProcess, month_file: Path
) -> None:
    first, second = Worker(_worker_settings(cluster, "w1")), Worker(_worker_settings(cluster, "w2"))
    try:
        first.start()
        second.start()
        _both_assigned(second)
        month = list(read_records(month_file, cluster))
        total, third = len(month), len(month) // 3
        last = asyncio.run(produce(month[:third], cluster))
        _wait_for("both workers processing", lambda: _processed(first.settings) > 0 and _processed(second.settings) > 0)
        _wait_for("a sixth of the month stored", lambda: _stored(second.settings) >= total // 6)
        first.kill()  # its partitions go to the second worker once the group notices (session timeout)

        last |= asyncio.run(produce(month[third : 2 * third], cluster))
        broker = _leader_node(cluster, cluster.orders_topic)
        os.kill(_pid(broker), signal.SIGKILL)  # a leader: its partitions elect another, mid-replay
        _wait(lambda: kafka.status(cluster).startswith("degraded: 2 of 3 nodes"), 30, "one node down")
        for tp, offset in asyncio.run(produce(month[2 * third :], cluster)).items():
            last[tp] = max(last.get(tp, -1), offset)
        # The survivor takes the killed worker's partitions over and works through most of the
        # month with that broker down; only then is it restarted, to catch up as a follower.
        _wait_for("five sixths of the month stored, a broker down", lambda: _stored(second.settings) >= total * 5 // 6)
        assert kafka.status(cluster).startswith("degraded: 2 of 3 nodes")
        restarted = kafka.start(cluster)
        assert restarted.startswith(f"started node {broker.spec.node_id} "), restarted
        wait_until_sunk(last, second.settings, timeout=600)

        bulletin = worker_get(second.settings, "/bulletin/2019-11?format=json", timeout=120)
        assert_table_matches_seed(worker_get(second.settings, "/bulletin/2019-11?format=csv", timeout=120).decode())
        assert_headline_matches_seed(bulletin["headline"])

        sent = {json.loads(r.value)["event_id"] for r in month}
        stored = stored_event_ids(cluster)
        assert_stored_as_sent(sent, stored)
        _wait(lambda: _in_sync(cluster, cluster.orders_topic) == {3}, 120, "the restarted node back in every ISR")
    finally:
        first.stop()
        second.stop()
