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
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from hotline.schemas.events import within_years
from hotline.schemas.personal import mask_personal
from hotline.settings import Settings

log = logging.getLogger(__name__)

TS = "DateTime64(3, 'Asia/Shanghai')"


@dataclass(frozen=True)
class Table:
    """A table's columns, defined once: its DDL and every insert's column names and types derive
    from them (with the types given, clickhouse-connect skips the DESCRIBE it runs per insert)."""

    name: str
    columns: tuple[tuple[str, str], ...]  # what the sink inserts: (name, ClickHouse type)
    engine: str
    defaults: tuple[str, ...] = ()  # columns ClickHouse fills itself

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def types(self) -> list[str]:
        return [kind for _, kind in self.columns]

    def ddl(self) -> str:
        body = ",\n        ".join([*(f"{n} {t}" for n, t in self.columns), *self.defaults])
        return f"CREATE TABLE IF NOT EXISTS {{db}}.{self.name} (\n        {body}\n    ) ENGINE = {self.engine}"


EVENTS = Table(
    "events",
    (
        ("event_id", "String"),
        ("type", "LowCardinality(String)"),
        ("occurred_at", TS),
        ("call_id", "String"),
        ("order_id", "String"),
        ("unit_id", "LowCardinality(String)"),
        ("answered", "Nullable(Bool)"),
        ("valid", "Nullable(Bool)"),
        ("call_type", "LowCardinality(String)"),
        ("category", "LowCardinality(String)"),
        ("resolved_online", "Nullable(Bool)"),
        ("order_type", "LowCardinality(String)"),
        ("due_at", f"Nullable({TS})"),
        ("due_computed", "Bool"),
        ("reason", "String"),
        ("outcome", "LowCardinality(String)"),
        ("citizen_replied", "Nullable(Bool)"),
        ("method", "LowCardinality(String)"),
        ("satisfied", "Nullable(Bool)"),
        ("payload", "String"),
        ("source_topic", "LowCardinality(String)"),
        ("source_partition", "Int32"),
        ("source_offset", "Int64"),
    ),
    "ReplacingMergeTree ORDER BY event_id",
    (f"ingested_at {TS} DEFAULT now64(3)",),
)
# ``raw`` holds a redacted copy (see :func:`redact`); the original bytes stay only in the
# dead-letter topic, bounded by its retention.
DEADLETTER = Table(
    "deadletter",
    (
        ("source_topic", "LowCardinality(String)"),
        ("source_partition", "Int32"),
        ("source_offset", "Int64"),
        ("error", "String"),
        ("raw", "String"),
        ("key", "String"),
        ("occurred_at", f"Nullable({TS})"),
    ),
    "ReplacingMergeTree ORDER BY (source_topic, source_partition, source_offset)",
    (f"received_at {TS} DEFAULT now64(3)",),
)
# The progress ledger: per source partition, the last offset processed with every offset
# before it. The truth on restart and rebalance (not the consumer group's commits).
SINK_OFFSETS = Table(
    "sink_offsets",
    (("source_topic", "LowCardinality(String)"), ("source_partition", "Int32"), ("source_offset", "Int64")),
    "ReplacingMergeTree(source_offset) ORDER BY (source_topic, source_partition)",
)
UNIT_COUNTERS = Table(
    "unit_counters",
    (
        ("unit_id", "LowCardinality(String)"),
        ("day", "Date"),
        ("metric", "LowCardinality(String)"),
        ("event_id", "String"),
        ("value", "Int8"),
    ),
    "ReplacingMergeTree ORDER BY (unit_id, day, metric, event_id, value)",
)
# Issued bulletins (hotline.reports.issued): each issue of a month frozen as it went out, the
# bulletin's JSON and every format's bytes (base64 in ``documents``), one row per revision.
BULLETIN_ISSUES = Table(
    "bulletin_issues",
    (
        ("month", "String"),
        ("revision", "UInt32"),
        ("number", "UInt32"),
        ("total_number", "UInt32"),
        ("issue_date", "Date"),
        ("bulletin", "String"),
        ("documents", "String"),
    ),
    "ReplacingMergeTree ORDER BY (month, revision)",
    (f"issued_at {TS} DEFAULT now64(3)",),
)
ALL_TABLES = (EVENTS, DEADLETTER, SINK_OFFSETS, UNIT_COUNTERS, BULLETIN_ISSUES)
TABLES = tuple(t.name for t in ALL_TABLES)


@dataclass(frozen=True)
class Migration:
    """One schema version: the statements that bring the previous version to this one.

    Statements must be idempotent (``IF NOT EXISTS``): a crash between them and the version's
    row in ``schema_version`` runs them again at the next start. A shipped migration is never
    edited; a change is a new one appended to :data:`MIGRATIONS` (a new table may use its
    :meth:`Table.ddl`, a new column an ``ALTER TABLE … ADD COLUMN IF NOT EXISTS``).
    """

    version: int
    description: str
    statements: tuple[str, ...]


# Version 1 is the previous release's DDL, frozen here: those directories have no
# ``schema_version`` table and are recognised by their events table.
_V1 = (
    f"""CREATE TABLE IF NOT EXISTS {{db}}.events (
        event_id String,
        type LowCardinality(String),
        occurred_at {TS},
        call_id String,
        order_id String,
        unit_id LowCardinality(String),
        answered Nullable(Bool),
        valid Nullable(Bool),
        call_type LowCardinality(String),
        category LowCardinality(String),
        resolved_online Nullable(Bool),
        order_type LowCardinality(String),
        due_at Nullable({TS}),
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
        ingested_at {TS} DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree ORDER BY event_id""",
    f"""CREATE TABLE IF NOT EXISTS {{db}}.deadletter (
        source_topic LowCardinality(String),
        source_partition Int32,
        source_offset Int64,
        error String,
        raw String,
        received_at {TS} DEFAULT now64(3)
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
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, deadletter, sink_offsets, unit_counters", _V1),
    Migration(
        2,
        "deadletter: key and occurred_at",
        (
            "ALTER TABLE {db}.deadletter ADD COLUMN IF NOT EXISTS key String DEFAULT ''",
            f"ALTER TABLE {{db}}.deadletter ADD COLUMN IF NOT EXISTS occurred_at Nullable({TS})",
        ),
    ),
    Migration(4, "bulletin_issues: issued bulletins, frozen", (BULLETIN_ISSUES.ddl(),)),
)
SCHEMA_VERSION = MIGRATIONS[-1].version  # what this build writes and reads
SCHEMA_VERSION_DDL = f"""CREATE TABLE IF NOT EXISTS {{db}}.schema_version (
        version UInt32,
        applied_at {TS} DEFAULT now64(3),
        description String
    ) ENGINE = ReplacingMergeTree ORDER BY version"""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer build: reading it with this one could misread it."""

    def __init__(self, where: str, found: int, known: int, remedy: str) -> None:
        super().__init__(
            f"{where} is at schema version {found}, newer than this build's {known}: "
            f"run a hotline release that knows version {found}, or {remedy}"
        )
        self.found = found
        self.known = known


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
    """A record that did not become counted events, with why; ``raw`` is the original bytes."""

    source_topic: str
    source_partition: int
    source_offset: int
    error: str
    raw: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()  # extra context, e.g. the coordinates of a conflict
    store_copy: bool = True  # False when even the redacted copy could not be stored: reason only


@dataclass
class Batch:
    """The rows one stream batch hands to the sink; written together, in one call."""

    events: list[dict[str, Any]] = field(default_factory=list)
    counters: list[CounterDelta] = field(default_factory=list)
    deadletters: list[DeadLetter] = field(default_factory=list)


@dataclass(frozen=True)
class Stored:
    """What the events table holds under an event id: its content and where it came from."""

    payload: str
    source_topic: str
    source_partition: int
    source_offset: int


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
        self.schema_version: int | None = None  # known once :meth:`migrate` has run

    def migrate(self) -> None:
        """Bring the database to :data:`SCHEMA_VERSION`, each missing version in order, each recorded once.

        Raises :class:`SchemaTooNew`, touching nothing, when a newer build wrote it.
        """
        with self._lock:
            self._command("CREATE DATABASE IF NOT EXISTS {db}")
            current = self._found_version()
            if current > SCHEMA_VERSION:
                raise SchemaTooNew(f"ClickHouse database {self.db}", current, SCHEMA_VERSION, self._remedy())
            self._command(SCHEMA_VERSION_DDL)
            if current and not self._recorded():
                # The previous release's tables, from before versions were recorded.
                self._record(current, "found: tables of a release before schema_version")
            for migration in MIGRATIONS:
                if migration.version > current:
                    for statement in migration.statements:
                        self._command(statement)
                    self._record(migration.version, migration.description)
                    log.info("ClickHouse schema: version %d (%s)", migration.version, migration.description)
            self.schema_version = max(current, SCHEMA_VERSION)

    def _command(self, statement: str) -> None:
        self.client.command(statement.replace("{db}", self.db))

    def _tables(self) -> set[str]:
        rows = self.client.query("SELECT name FROM system.tables WHERE database = %(db)s", {"db": self.db})
        return {str(r[0]) for r in rows.result_rows}

    def _recorded(self) -> int:
        """The highest version recorded in ``schema_version``; 0 without a row."""
        rows = self.client.query(f"SELECT max(version), count() FROM {self.db}.schema_version FINAL").result_rows
        return int(rows[0][0]) if rows and int(rows[0][1]) else 0

    def _found_version(self) -> int:
        """The database's version: recorded, or 1 for the tables of the release before versions, or 0 (empty)."""
        tables = self._tables()
        recorded = self._recorded() if "schema_version" in tables else 0
        return max(recorded, 1 if "events" in tables else 0)

    def _record(self, version: int, description: str) -> None:
        self.client.insert(
            f"{self.db}.schema_version",
            [[version, description]],
            column_names=["version", "description"],
            column_type_names=["UInt32", "String"],
        )

    def _remedy(self) -> str:
        """How to start over with this build: a new, empty store that the worker refills from Kafka."""
        dsn = self.settings.resolved_clickhouse_dsn
        new = (
            f"move {dsn.removeprefix('chdb://')} aside"
            if dsn.startswith("chdb:")
            else "set HOTLINE_CLICKHOUSE_DATABASE to a new database name"
        )
        return (
            f"to rebuild it with this one, {new} with the worker stopped and start it again: it refills "
            "the store from the Kafka topics, as far back as their retention reaches"
        )

    def write(self, batch: Batch) -> None:
        """Idempotent: the same batch written again leaves every table unchanged.

        Progress is not written here: the caller records it with :meth:`record_progress`
        once everything the batch produced (the order table's changelog too) is durable.
        """
        with self._lock:
            if batch.events:
                self._insert_columns(EVENTS, [[row.get(c) for row in batch.events] for c in EVENTS.names])
            if batch.counters:
                self._insert(UNIT_COUNTERS, [[d.unit_id, d.day, d.metric, d.event_id, d.value] for d in batch.counters])
            if batch.deadletters:
                self._insert(DEADLETTER, [_deadletter_row(d) for d in batch.deadletters])

    def record_progress(self, offsets: dict[tuple[str, int], int]) -> None:
        """Advance the ledger: every offset up to these, per partition, is processed and stored."""
        if not offsets:
            return
        with self._lock:
            self._insert(SINK_OFFSETS, [[t, p, o] for (t, p), o in offsets.items()])

    def insert(self, table: Table, rows: list[list[Any]]) -> None:
        """Rows of a table the stream does not write (an issued bulletin), under the one lock."""
        with self._lock:
            self._insert(table, rows)

    def _insert(self, table: Table, rows: list[list[Any]]) -> None:
        self.client.insert(f"{self.db}.{table.name}", rows, column_names=table.names, column_type_names=table.types)

    def _insert_columns(self, table: Table, columns: list[list[Any]]) -> None:
        """A wide table's batch column by column: clickhouse-connect then skips transposing rows."""
        self.client.insert(
            f"{self.db}.{table.name}",
            columns,
            column_names=table.names,
            column_type_names=table.types,
            column_oriented=True,
        )

    def stored(self, event_ids: list[str]) -> dict[str, Stored]:
        """What the events table already holds under these ids: one primary-key lookup per batch."""
        if not event_ids:
            return {}
        rows = self.query_rows(
            "SELECT event_id, payload, source_topic, source_partition, source_offset "
            "FROM {db}.events WHERE event_id IN %(ids)s",
            {"ids": list(set(event_ids))},
        )
        found: dict[str, Stored] = {}
        for r in rows:  # copies not merged yet are the same event: the first is enough
            found.setdefault(
                r["event_id"],
                Stored(r["payload"], r["source_topic"], int(r["source_partition"]), int(r["source_offset"])),
            )
        return found

    def healthy(self) -> bool:
        """Every table answers a trivial query: a failed write is then the rows', not the store's."""
        try:
            with self._lock:
                for table in TABLES:
                    self.client.query(f"SELECT 1 FROM {self.db}.{table} LIMIT 0")
        except Exception:
            return False
        return True

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            return [
                tuple(r) for r in self.client.query(sql.replace("{db}", self.db), parameters=parameters).result_rows
            ]

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts, read by column name."""
        with self._lock:
            result = self.client.query(sql.replace("{db}", self.db), parameters=parameters)
            return [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]

    def sunk_offsets(self) -> dict[tuple[str, int], int]:
        """The ledger: per partition, the last offset processed with every one before it."""
        rows = self.query_rows(
            "SELECT source_topic, source_partition, max(source_offset) AS last_offset FROM {db}.sink_offsets "
            "GROUP BY source_topic, source_partition"
        )
        return {(str(r["source_topic"]), int(r["source_partition"])): int(r["last_offset"]) for r in rows}

    def counts(self) -> dict[str, int]:
        """Distinct events and dead letters stored: what ``hotline status`` shows."""
        rows = self.query_rows(
            "SELECT (SELECT count() FROM {db}.events FINAL) AS events, "
            "(SELECT count() FROM {db}.deadletter FINAL) AS deadletter"
        )
        return {name: int(n) for name, n in rows[0].items()}

    def deadletters(self, limit: int = 100) -> list[dict[str, Any]]:
        return self.query_rows(
            "SELECT source_topic AS topic, source_partition AS partition, source_offset AS offset, error "
            "FROM {db}.deadletter FINAL "
            "ORDER BY received_at DESC, source_topic, source_partition, source_offset LIMIT %(limit)s",
            {"limit": limit},
        )

    def close(self) -> None:
        with self._lock:
            self.client.close()


def _deadletter_row(dead: DeadLetter) -> list[Any]:
    redacted, occurred_at = redact(dead.raw)
    key = mask_personal(dead.key.decode("utf-8", errors="replace")) if dead.key else ""
    copy = redacted if dead.store_copy else ""
    error = mask_personal(dead.error)
    return [dead.source_topic, dead.source_partition, dead.source_offset, error, copy, key, occurred_at]


REDACTED_CHARS = 4096  # of a dead letter kept in ClickHouse; the topic keeps the whole record


def redact(raw: bytes) -> tuple[str, datetime | None]:
    """The dead letter's copy for ClickHouse, and its event time when the record has one.

    A record that parses loses its ``caller``; one that does not gets phone-like digit runs
    and caller members masked. Either way at most :data:`REDACTED_CHARS` characters are kept.
    """
    text = raw[: REDACTED_CHARS * 4].decode("utf-8", errors="replace")
    occurred_at: datetime | None = None
    try:
        data = json.loads(raw) if len(raw) <= REDACTED_CHARS * 4 else None
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        occurred_at = _timestamp(data.get("occurred_at"))
        text = strip_personal(data)
    return mask_personal(text)[:REDACTED_CHARS], occurred_at


def _timestamp(value: Any) -> datetime | None:
    """An aware timestamp within the years storage holds, or None."""
    try:
        ts = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if ts.tzinfo is None:
        return None
    try:
        return within_years(ts)
    except ValueError:
        return None


def strip_personal(payload: dict[str, Any]) -> str:
    """The audit copy of an event: everything but the caller's phone and name."""
    clean = {k: v for k, v in payload.items() if k != "caller"}
    return json.dumps(clean, ensure_ascii=False, separators=(",", ":"), default=str)
