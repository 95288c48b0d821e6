"""The Maven-jar Kafka launcher against a real broker: start, status, topics, round trip.

Settings come from ``HOTLINE_*`` env.  The broker is stopped afterwards only if this
module started it, so a broker someone else is using stays up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from hotline.deploy import kafka
from hotline.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="module")
def broker(settings: Settings) -> Iterator[str]:
    first = kafka.start(settings)
    yield first
    if first.startswith("started"):
        kafka.stop(settings)


def test_start_is_idempotent(settings: Settings, broker: str) -> None:
    assert broker.startswith(("started", "already running")), broker
    again = kafka.start(settings)
    assert again.startswith("already running"), again


def test_status_reports_pid(settings: Settings, broker: str) -> None:
    state = kafka.status(settings)
    port = kafka.managed_port(settings)
    if port is None:
        assert state.startswith("external"), state
    else:
        assert state.startswith("running (pid "), state
        assert state.endswith(f"127.0.0.1:{port}"), state


def test_topic_and_round_trip(settings: Settings, broker: str) -> None:
    topic = f"hotline.test.deploy.{uuid.uuid4().hex[:8]}"
    assert kafka.ensure_topics(settings, {topic: 2}) == [topic]
    assert kafka.ensure_topics(settings, {topic: 2}) == []  # idempotent
    try:
        key, value = asyncio.run(_round_trip(settings, topic))
        assert (key, value) == (b"k1", b"hello 12345")
    finally:
        asyncio.run(_delete_topic(settings, topic))


async def _round_trip(settings: Settings, topic: str) -> tuple[bytes, bytes]:
    opts = kafka.client_options(settings)
    producer = AIOKafkaProducer(**settings.producer_options(), **opts)
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, b"hello 12345", key=b"k1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **opts)
    await consumer.start()
    try:
        tp = TopicPartition(topic, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        record = await asyncio.wait_for(consumer.getone(), timeout=15)
    finally:
        await consumer.stop()
    return record.key, record.value


async def _delete_topic(settings: Settings, topic: str) -> None:
    admin = AIOKafkaAdminClient(**kafka.client_options(settings))
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()
