"""Whether the worker's batches are being stored: said on ``/status``, not hidden in a log.

An infrastructure fault (ClickHouse or Kafka unreachable, a disk refusing writes) holds the
pipeline back: the batch is retried with a backoff that doubles to 30 s, and the page and the
metrics say since when and why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hotline.schemas.events import InvalidEvent


def backoff_s(attempt: int) -> float:
    """The wait before attempt ``attempt + 1``: 0.5 s doubling to 30 s."""
    return min(30.0, 0.5 * 2 ** min(attempt - 1, 6))


@dataclass
class StoreHealth:
    """Whether batches are being stored, for ``/status``: an outage is said, not hidden in a log."""

    ok: bool = True
    since: float = 0.0
    attempts: int = 0
    error: str = ""

    def failing(self, exc: Exception, attempt: int) -> None:
        if self.ok:
            self.since = time.time()
        self.ok, self.attempts = False, attempt
        self.error = InvalidEvent(f"{type(exc).__name__}: {exc}").reason

    def recovered(self) -> None:
        self.ok, self.attempts, self.error = True, 0, ""

    def as_json(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True}
        return {"ok": False, "failing_since": self.since, "attempts": self.attempts, "error": self.error}
