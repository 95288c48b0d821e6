"""Small stand-ins every kind of test uses: a free port, and a topic that records what is sent to it."""

from __future__ import annotations

import socket
from typing import Any


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
