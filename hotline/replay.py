"""Replay a JSONL file of events into Kafka, and wait until the worker has sunk them.

A line is either a contract event (topic and key follow from its type) or an
envelope ``{"topic": "calls"|"orders", "key": ..., "event": {...}}``; an
envelope may carry ``"raw"`` (a string sent as is) to exercise the dead-letter path.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.error
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from hotline.client import worker_get
from hotline.schemas.events import route_of
from hotline.settings import Settings

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes


def _topic(name: str, settings: Settings) -> str:
    return {"calls": settings.calls_topic, "orders": settings.orders_topic}.get(name, name)


def _record(line: str, settings: Settings) -> Record:
    data: Any = json.loads(line)
    if isinstance(data, dict) and ("event" in data or "raw" in data):
        value = (
            data["raw"].encode()
            if "raw" in data
            else json.dumps(data["event"], ensure_ascii=False, separators=(",", ":")).encode()
        )
        key = data.get("key")
        return Record(_topic(data["topic"], settings), key.encode() if key else None, value)
    name, key = route_of(data)
    return Record(_topic(name, settings), key.encode() if key else None, line.strip().encode())


def read_records(path: Path, settings: Settings) -> Iterator[Record]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield _record(line, settings)
            except (json.JSONDecodeError, KeyError, AttributeError) as exc:
                raise ValueError(f"{path}:{number}: not a replay line ({exc})") from exc


async def produce(
    records: list[Record], settings: Settings, progress: Progress | None = None
) -> dict[tuple[str, int], int]:
    """Send every record (key order kept by Kafka's partitioner); return the last offset per partition."""
    producer = AIOKafkaProducer(
        linger_ms=5, max_batch_size=256 * 1024, **settings.producer_options(), **settings.kafka_client_options()
    )
    await producer.start()
    last: dict[tuple[str, int], int] = {}
    try:
        chunk = 2000
        for start in range(0, len(records), chunk):
            futures = [await producer.send(r.topic, r.value, key=r.key) for r in records[start : start + chunk]]
            for meta in await asyncio.gather(*futures):
                tp = (meta.topic, meta.partition)
                last[tp] = max(last.get(tp, -1), meta.offset)
            if progress:
                progress(len(futures))
    finally:
        await producer.stop()
    return last


def behind(expected: dict[tuple[str, int], int], sunk: dict[tuple[str, int], int]) -> dict[str, str]:
    """The partitions ClickHouse has not caught up on, as ``topic[p]: sunk/expected``."""
    return {f"{t}[{p}]": f"{sunk.get((t, p), -1)}/{o}" for (t, p), o in expected.items() if sunk.get((t, p), -1) < o}


def stored_progress(settings: Settings, timeout: float = 30) -> dict[tuple[str, int], int]:
    """The last offset per partition that the worker's ClickHouse holds."""
    return {(t, p): o for t, p, o in worker_get(settings, "/offsets", timeout=timeout)["offsets"]}


def _why(exc: Exception) -> str:
    """A failed poll in a few words: ``connection refused``, ``timed out``, ``503 Service Unavailable``."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"{exc.code} {exc.reason}"
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


def _refused(exc: urllib.error.HTTPError, url: str) -> RuntimeError:
    """A worker that answers but will not tell: waiting cannot help, say what would."""
    body = exc.read().decode(errors="replace")[:300]
    hint = "; set HOTLINE_API_TOKEN to a supervisor token" if exc.code in (401, 403) else ""
    return RuntimeError(f"the worker at {url} refused: {exc.code} {body}{hint}")


def _gave_up(
    expected: dict[tuple[str, int], int], missing: dict[str, str], url: str, timeout: float, unanswered: str | None
) -> TimeoutError:
    """What the wait was for, where it looked, and what to do next."""
    records = sum(o + 1 for o in expected.values())
    if unanswered is None:
        return TimeoutError(f"the worker at {url} has not sunk all {records} records after {timeout:.0f}s: {missing}")
    return TimeoutError(
        f"waited {timeout:.0f}s for a worker to store {records} replayed records, but none answers at {url} "
        f"({unanswered}); still missing: {missing}. The records are in Kafka: start a worker with "
        f"`hotline worker` and it stores them (`hotline status` shows its offsets)."
    )


def wait_until_sunk(
    expected: dict[tuple[str, int], int],
    settings: Settings,
    timeout: float = 600,
    progress: Callable[[int, int], None] | None = None,
    waiting: Callable[[str], None] | None = None,
    poll_s: float = 0.5,
    request_timeout_s: float = 30,
) -> None:
    """Poll the worker until ClickHouse holds every offset replayed, for up to ``timeout`` seconds.

    A worker that does not answer yet is waited for, not an error: ``hotline worker &``
    then ``hotline replay --wait`` is the natural order, and a worker restarting mid-wait
    must not fail a replay whose records are all in Kafka. ``progress`` gets (sunk, total)
    on each answer, ``waiting`` the reason on each poll without one.
    """
    if not expected:
        return  # nothing was replayed: no worker needs to be there
    url = f"{settings.web_url}/offsets"
    deadline = time.monotonic() + timeout
    total = sum(o + 1 for o in expected.values())
    missing = behind(expected, {})
    unanswered: str | None = None
    while True:
        try:
            sunk = stored_progress(settings, timeout=max(0.1, min(request_timeout_s, deadline - time.monotonic())))
        except urllib.error.HTTPError as exc:
            if exc.code < 500:  # a missing token, something else on the port: no wait cures that
                raise _refused(exc, url) from exc
            unanswered = _why(exc)  # a worker answering before its store is ready
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out: (re)starting
            unanswered = _why(exc)
        else:
            unanswered = None
            if progress:
                progress(sum(min(sunk.get(tp, -1), o) + 1 for tp, o in expected.items()), total)
            missing = behind(expected, sunk)
            if not missing:
                return
        if unanswered is not None and waiting:
            waiting(unanswered)
        left = deadline - time.monotonic()
        if left <= 0:
            raise _gave_up(expected, missing, url, timeout, unanswered)
        time.sleep(min(poll_s, left))
