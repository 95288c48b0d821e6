import asyncio
from typing import Any

import pytest

from hotline.streams.alerts import key_partition
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


class JsonSerializers(Serializers):
    """What the order table really uses for its keys: JSON (quoted)."""

    def dumps_key(self, key_type: Any, key: str, serializer: Any = None) -> bytes:
        return f'"{key}"'.encode()


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
        self.partitions: list[int] = []
        self.fail_next = False

    def create_batch(self) -> Batch:
        return Batch()

    async def send_batch(self, batch: Batch, topic: str, partition: int) -> asyncio.Future[None]:
        self.partitions.extend(partition for _ in batch.records)
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


async def test_an_orders_state_goes_to_its_orders_partition_whatever_the_key_serializer() -> None:
    """Copartitioned with the orders topic: the worker reading an order's partition recovers its state."""
    table = Table()
    table.app.serializers = JsonSerializers()
    changelog = Changelog(table, partitions=4, producer_options={})
    producer = Producer()
    changelog.producer = producer  # type: ignore[assignment]
    orders = ["XT2019110644", "XT2019100061", "XT2019100075", "O1", "O2", "O3"]
    changelog.set({o: "state" for o in orders})
    await changelog.flush()
    sent = dict(zip([k.decode().strip('"') for k, _ in producer.acked], producer.partitions, strict=True))
    assert sent == {o: key_partition(o, 4) for o in orders}
    assert sent["XT2019110644"] == 0 and sent["XT2019100061"] == 1  # not 3: the hash of '"XT…"'
