"""ClickHouse storage, embedded chDB by default, a server by DSN: same code path.

Every table is a ReplacingMergeTree keyed by what makes a row unique (event id,
source offset, counter key), and every read uses ``FINAL``: a batch written twice
after a crash or a replay changes nothing. That is what lets the streams run
at-least-once and still count each event once.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from hotline.settings import Settings

log = logging.getLogger(__name__)

EVENT_COLUMNS = [
    "event_id",
    "type",
    "occurred_at",
    "call_id",
    "order_id",
    "unit_id",
    "answered",
    "valid",
    "call_type",
    "category",
    "resolved_online",
    "order_type",
    "due_at",
    "due_computed",
    "reason",
    "outcome",
    "citizen_replied",
    "method",
    "satisfied",
    "payload",
    "source_topic",
    "source_partition",
    "source_offset",
]

MIGRATIONS: list[str] = [
    "CREATE DATABASE IF NOT EXISTS {db}",
    """CREATE TABLE IF NOT EXISTS {db}.events (
        event_id String,
        type LowCardinality(String),
        occurred_at DateTime64(3, 'Asia/Shanghai'),
        call_id String,
        order_id String,
        unit_id LowCardinality(String),
        answered Nullable(Bool),
        valid Nullable(Bool),
        call_type LowCardinality(String),
        category LowCardinality(String),
        resolved_online Nullable(Bool),
        order_type LowCardinality(String),
        due_at Nullable(DateTime64(3, 'Asia/Shanghai')),
        due_computed Bool,
        reason String,
        outcome LowCardinality(String),
        citizen_replied Nullable(Bool),
        method LowCardinality(String),
        satisfied Nullable(Bool),
        payload String,
        source_topic LowCardinality(String),
        source_partition Int32,
        source_offset Int64,
        ingested_at DateTime64(3, 'Asia/Shanghai') DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree ORDER BY event_id""",
    """CREATE TABLE IF NOT EXISTS {db}.deadletter (
        source_topic LowCardinality(String),
        source_partition Int32,
        source_offset Int64,
        error String,
        raw String,
        received_at DateTime64(3, 'Asia/Shanghai') DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree ORDER BY (source_topic, source_partition, source_offset)""",
    """CREATE TABLE IF NOT EXISTS {db}.sink_offsets (
        source_topic LowCardinality(String),
        source_partition Int32,
        source_offset Int64
    ) ENGINE = ReplacingMergeTree(source_offset) ORDER BY (source_topic, source_partition)""",
    """CREATE TABLE IF NOT EXISTS {db}.unit_counters (
        unit_id LowCardinality(String),
        day Date,
        metric LowCardinality(String),
        event_id String,
        value Int8
    ) ENGINE = ReplacingMergeTree ORDER BY (unit_id, day, metric, event_id, value)""",
]


@dataclass(frozen=True)
class CounterDelta:
    """One step of a per-unit counter, keyed by the event that caused it."""

    unit_id: str
    day: date
    metric: str
    event_id: str
    value: int


@dataclass(frozen=True)
class DeadLetter:
    source_topic: str
    source_partition: int
    source_offset: int
    error: str
    raw: bytes


@dataclass
class Batch:
    """What one stream batch hands to the sink; written together, in one call."""

    events: list[dict[str, Any]]
    counters: list[CounterDelta]
    deadletters: list[DeadLetter]
    offsets: dict[tuple[str, int], int]


def connect(settings: Settings) -> Client:
    """Open the configured ClickHouse: ``chdb:///abs/path`` or ``http(s)://host:8123``."""
    dsn = settings.resolved_clickhouse_dsn
    if dsn.startswith("chdb:"):
        settings.var_path.mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(dsn=dsn)


class ClickHouseSink:
    """Owns the one client of this process; a lock serialises chDB calls across threads."""

    # chDB is one engine per process: serialise every call, whichever instance makes it.
    _lock = threading.Lock()

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.settings = settings
        self.db = settings.clickhouse_database
        self.client = client or connect(settings)

    def migrate(self) -> None:
        with self._lock:
            for statement in MIGRATIONS:
                self.client.command(statement.replace("{db}", self.db))

    def write(self, batch: Batch) -> None:
        """Idempotent: the same batch written again leaves every table unchanged."""
        with self._lock:
            if batch.events:
                rows = [[row.get(c) for c in EVENT_COLUMNS] for row in batch.events]
                self.client.insert(f"{self.db}.events", rows, column_names=EVENT_COLUMNS)
            if batch.counters:
                self.client.insert(
                    f"{self.db}.unit_counters",
                    [[d.unit_id, d.day, d.metric, d.event_id, d.value] for d in batch.counters],
                    column_names=["unit_id", "day", "metric", "event_id", "value"],
                )
            if batch.deadletters:
                self.client.insert(
                    f"{self.db}.deadletter",
                    [
                        [
                            d.source_topic,
                            d.source_partition,
                            d.source_offset,
                            d.error,
                            d.raw.decode("utf-8", errors="replace"),
                        ]
                        for d in batch.deadletters
                    ],
                    column_names=["source_topic", "source_partition", "source_offset", "error", "raw"],
                )
            # Offsets last: a reader that sees an offset sees everything before it.
            if batch.offsets:
                self.client.insert(
                    f"{self.db}.sink_offsets",
                    [[t, p, o] for (t, p), o in batch.offsets.items()],
                    column_names=["source_topic", "source_partition", "source_offset"],
                )

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            return [
                tuple(r) for r in self.client.query(sql.replace("{db}", self.db), parameters=parameters).result_rows
            ]

    def sunk_offsets(self) -> dict[tuple[str, int], int]:
        rows = self.query(
            "SELECT source_topic, source_partition, max(source_offset) FROM {db}.sink_offsets "
            "GROUP BY source_topic, source_partition"
        )
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    def counts(self) -> dict[str, int]:
        """Distinct events and dead letters stored: what ``hotline status`` shows."""
        ((events,),) = self.query("SELECT count() FROM {db}.events FINAL")
        ((dead,),) = self.query("SELECT count() FROM {db}.deadletter FINAL")
        return {"events": int(events), "deadletter": int(dead)}

    def deadletters(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT source_topic, source_partition, source_offset, error FROM {db}.deadletter FINAL "
            "ORDER BY source_topic, source_partition, source_offset LIMIT %(limit)s",
            {"limit": limit},
        )
        return [dict(zip(("topic", "partition", "offset", "error"), r, strict=True)) for r in rows]

    def close(self) -> None:
        with self._lock:
            self.client.close()


def strip_personal(payload: dict[str, Any]) -> str:
    """The audit copy of an event: everything but the caller's phone and name."""
    clean = {k: v for k, v in payload.items() if k != "caller"}
    return json.dumps(clean, ensure_ascii=False, separators=(",", ":"), default=str)
