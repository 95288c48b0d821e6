"""Replay a JSONL file of events into Kafka, and wait until the worker has sunk them.

A line is either a contract event (topic and key follow from its type) or an
envelope ``{"topic": "calls"|"orders", "key": ..., "event": {...}}``; an
envelope may carry ``"raw"`` (a string sent as is) to exercise the dead-letter path.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from hotline.client import worker_get
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
    kind = str(data.get("type", ""))
    topic = settings.calls_topic if kind.startswith("call.") else settings.orders_topic
    key = data.get("order_id") or data.get("call_id")
    return Record(topic, str(key).encode() if key else None, line.strip().encode())


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
    producer = AIOKafkaProducer(acks="all", linger_ms=5, max_batch_size=256 * 1024, **settings.kafka_client_options())
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


def sunk_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    """The last offset per partition that the worker's ClickHouse holds."""
    return {(t, p): o for t, p, o in worker_get(settings, "/offsets")["offsets"]}


def wait_until_sunk(
    expected: dict[tuple[str, int], int],
    settings: Settings,
    timeout: float = 600,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Poll the worker until ClickHouse holds every offset replayed."""
    deadline = time.monotonic() + timeout
    total = sum(o + 1 for o in expected.values())
    while True:
        try:
            sunk = sunk_offsets(settings)
        except OSError as exc:
            raise RuntimeError(
                f"no worker answers at {settings.web_url} ({exc}); start it with `hotline worker`"
            ) from exc
        if progress:
            progress(sum(min(sunk.get(tp, -1), o) + 1 for tp, o in expected.items()), total)
        missing = behind(expected, sunk)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker has not sunk everything after {timeout:.0f}s: {missing}")
        time.sleep(0.5)
