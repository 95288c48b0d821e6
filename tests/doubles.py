"""Small stand-ins every kind of test uses: a free port, a topic that records what is sent to it,
and a producer whose broker is down for its first sends."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from aiokafka.errors import KafkaTimeoutError


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RecordingTopic:
    """A pipeline's output topic (the dead letters) with no broker: each ``send`` kept, in order."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, **kwargs: Any) -> None:
        self.sent.append(kwargs)


class FlakyProducer:
    """The alerts' producer (``AIOKafkaProducer.send``) with a broker down for its first ``refusals``
    sends: each refused as aiokafka refuses one, by a delivery that fails with a timeout (or, with
    ``at_once``, by ``send`` itself raising it, as when the topic's metadata does not come); every
    later send is acknowledged and kept in ``taken``."""

    def __init__(self, refusals: int = 0, at_once: bool = False) -> None:
        self.refusals = refusals
        self.at_once = at_once
        self.refused = 0
        self.taken: list[tuple[bytes, bytes]] = []  # (key, value) of each send Kafka acknowledged

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.refused < self.refusals:
            self.refused += 1
            if self.at_once:
                raise KafkaTimeoutError()
            delivery.set_exception(KafkaTimeoutError())
        else:
            self.taken.append((key, value))
            delivery.set_result(None)
        return delivery

    async def send_alert(self, unit_id: str, value: bytes) -> asyncio.Future[None]:
        """The scheduler's ``send``: one alert keyed by its unit, as ``Alerting.send`` queues it."""
        return await self.send("alerts", value, unit_id.encode())


async def settle() -> None:
    """One turn of the loop: the delivery callbacks already scheduled (a settled send's) run."""
    await asyncio.sleep(0)
