import asyncio
from typing import Any

import pytest

from hotline.streams.changelog import Changelog


class Serializers:
    def dumps_key(self, key_type: Any, key: str, serializer: Any = None) -> bytes:
        return key.encode()

    def dumps_value(self, value_type: Any, value: str, serializer: Any = None) -> bytes:
        return value.encode()


class Topic:
    def get_topic_name(self) -> str:
        return "hotline-orders-changelog"


class Table:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.app = type("App", (), {"serializers": Serializers()})()
        self.changelog_topic = Topic()
        self.key_type = self.value_type = self.key_serializer = self.value_serializer = None


class Batch:
    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes]] = []

    def append(self, key: bytes, value: bytes, timestamp: None) -> object:
        self.records.append((key, value))
        return object()


class Producer:
    """Acknowledges what it is sent, unless told to fail the next flush."""

    def __init__(self) -> None:
        self.acked: list[tuple[bytes, bytes]] = []
        self.fail_next = False

    def create_batch(self) -> Batch:
        return Batch()

    async def send_batch(self, batch: Batch, topic: str, partition: int) -> asyncio.Future[None]:
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail_next:
            ack.set_exception(ConnectionError("broker gone"))
        else:
            self.acked.extend(batch.records)
            ack.set_result(None)
        return ack


async def test_records_not_acknowledged_are_sent_again_before_newer_ones() -> None:
    changelog = Changelog(Table(), partitions=1, producer_options={})
    producer = Producer()
    changelog.producer = producer  # type: ignore[assignment]
    changelog.set({"O1": "first"})
    producer.fail_next = True
    with pytest.raises(ConnectionError):
        await changelog.flush()
    producer.fail_next = False
    changelog.set({"O1": "second"})
    await changelog.flush()
    assert producer.acked == [(b"O1", b"first"), (b"O1", b"second")]  # the latest value written last
