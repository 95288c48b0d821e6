"""A real three-node KRaft cluster from the same launcher: replication 3, min.insync 2, a broker lost.

It runs on its own ports and var directory (29092/29192/29292, controllers 29093/29193/29293:
``HOTLINE_TEST_CLUSTER_BOOTSTRAP`` and ``HOTLINE_TEST_CLUSTER_CONTROLLER_PORT`` move them), so it
never touches the single broker the other tests share. The tests run in file order, on one cluster.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from hotline.deploy import kafka
from hotline.settings import Settings

pytestmark = pytest.mark.integration

BOOTSTRAP = os.environ.get("HOTLINE_TEST_CLUSTER_BOOTSTRAP", "127.0.0.1:29092,127.0.0.1:29192,127.0.0.1:29292")
CONTROLLER_PORT = int(os.environ.get("HOTLINE_TEST_CLUSTER_CONTROLLER_PORT", "29093"))


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tag = uuid.uuid4().hex[:8]
    return Settings(
        var_dir=tmp_path_factory.mktemp("cluster") / "var",
        kafka_bootstrap=BOOTSTRAP,
        kafka_controller_port=CONTROLLER_PORT,
        kafka_brokers=3,
        calls_topic=f"c{tag}.calls",
        orders_topic=f"c{tag}.orders",
        alerts_topic=f"c{tag}.alerts",
        deadletter_topic=f"c{tag}.deadletter",
    )


@pytest.fixture(scope="module")
def started(settings: Settings) -> Iterator[str]:
    first = kafka.start(settings)
    yield first
    kafka.stop(settings)  # whatever a failed test left running


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g}s"
        time.sleep(0.2)


def test_start_runs_three_nodes(started: str) -> None:
    assert started.startswith("started nodes 1, 2, 3 "), started


def test_status_names_every_node_running(settings: Settings, started: str) -> None:
    state = kafka.status(settings)
    assert state.startswith(f"running: 3 of 3 nodes at {BOOTSTRAP}: node 1 pid "), state


def test_start_again_changes_nothing(settings: Settings, started: str) -> None:
    again = kafka.start(settings)
    assert again.startswith("already running: 3 nodes"), again


def test_the_pipeline_topics_have_three_replicas_and_two_in_sync(settings: Settings, started: str) -> None:
    topics = kafka.pipeline_topics(settings)
    assert sorted(kafka.ensure_topics(settings, topics)) == sorted(topics)
    _wait(lambda: _in_sync(settings, *topics) == {3}, 30, "every broker knows every partition, all in sync")
    described, configs = asyncio.run(_describe(settings, list(topics)))
    for topic in described:
        assert {len(p["replicas"]) for p in topic["partitions"]} == {3}, topic
    assert configs == dict.fromkeys(topics, "2")


def test_producing_and_consuming_survive_a_killed_broker(settings: Settings, started: str) -> None:
    topic = settings.calls_topic
    victim = _leader_node(settings, topic)
    os.kill(_pid(victim), signal.SIGKILL)
    _wait(lambda: kafka.status(settings).startswith("degraded: 2 of 3 nodes"), 15, "status says one node is down")
    values = [f"call {i}".encode() for i in range(300)]
    asyncio.run(_produce(settings, topic, values))
    assert sorted(asyncio.run(_consume(settings, topic, len(values)))) == sorted(values)

    restarted = kafka.start(settings)
    assert restarted.startswith(f"started node {victim.spec.node_id} "), restarted
    _wait(lambda: _in_sync(settings, topic) == {3}, 60, "the restarted node back in every ISR")
    assert kafka.status(settings).startswith("running: 3 of 3 nodes")


def test_stop_stops_every_node(settings: Settings, started: str) -> None:
    assert kafka.stop(settings).startswith("stopped 3 nodes"), "stop"
    assert kafka.status(settings) == "stopped"
    assert kafka.stop(settings) == "not running"


# --------------------------------------------------------------------------- helpers


def _pid(node: kafka.Node) -> int:
    return int(Path(node.paths.pid).read_text())


def _leader_node(settings: Settings, topic: str) -> kafka.Node:
    """The node leading the topic's partition 0: killing it forces a leader election, not just a smaller ISR."""
    (described,) = asyncio.run(_describe(settings, [topic]))[0]
    leader = next(p["leader"] for p in described["partitions"] if p["partition"] == 0)
    return next(node for node in kafka.nodes(settings) if node.spec.node_id == leader)


def _in_sync(settings: Settings, *topics: str) -> set[int]:
    """The sizes of the topics' in-sync replica sets ({0} while a topic is not known everywhere yet)."""
    described = asyncio.run(_describe(settings, list(topics)))[0]
    if any(topic["error_code"] or not topic["partitions"] for topic in described):
        return {0}
    return {len(p["isr"]) for topic in described for p in topic["partitions"]}


async def _describe(settings: Settings, topics: list[str]) -> tuple[list[dict], dict[str, str]]:  # type: ignore[type-arg]
    admin = AIOKafkaAdminClient(**kafka.client_options(settings))
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    finally:
        await admin.close()
    min_insync = {
        resource["resource_name"]: entry["config_value"]
        for response in responses
        for resource in response.to_object()["resources"]
        for entry in resource["config_entries"]
        if entry["config_names"] == "min.insync.replicas"
    }
    return described, min_insync


async def _produce(settings: Settings, topic: str, values: list[bytes]) -> None:
    """acks=all and idempotent: each send returns once two replicas at least have it."""
    producer = AIOKafkaProducer(
        request_timeout_ms=30_000, **settings.producer_options(), **kafka.client_options(settings)
    )
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=str(i).encode()) for i, value in enumerate(values)]
        await asyncio.wait_for(asyncio.gather(*sent), 60)
    finally:
        await producer.stop()


async def _consume(settings: Settings, topic: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, auto_offset_reset="earliest", **kafka.client_options(settings)
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        got: list[bytes] = []
        async with asyncio.timeout(60):
            while len(got) < count:
                batches = await consumer.getmany(timeout_ms=1000)
                got += [record.value for records in batches.values() for record in records if record.value]
        return got
    finally:
        await consumer.stop()
