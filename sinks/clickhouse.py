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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from hotline.schemas import metrics
from hotline.schemas.events import within_years
from hotline.schemas.personal import mask_personal, personal_values
from hotline.settings import Settings
from hotline.sinks.fencing import Fence

log = logging.getLogger(__name__)

TS = "DateTime64(3, 'Asia/Shanghai')"
POINTS = "Decimal(9, 2)"  # points the province deducts, to hundredths
CHECK_COLUMNS = ("reached", "points", "indicator", "deduction_items", "deduction_points")  # events, version 5


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
        # The provincial checks (schema version 5): a spot check's ``reached``; points deducted
        # (a test call's total, an upload's), an upload's indicator, a test call's items.
        ("reached", "Nullable(Bool)"),
        ("points", f"Nullable({POINTS})"),
        ("indicator", "LowCardinality(String)"),
        ("deduction_items", "Array(String)"),
        ("deduction_points", f"Array({POINTS})"),
    ),
    # Partitioned by month: the audit record and the source of restatement, read a month at a time.
    "ReplacingMergeTree PARTITION BY toYYYYMM(occurred_at) ORDER BY event_id",
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
# The day windows: per unit (calls: ``metrics.CITY``), local day and source partition, every
# windowed catalogue count as an absolute value. A source partition's windows are owned by
# the one worker that reads it, so each row is that partition's whole contribution, and
# ``version`` (the last source offset applied) makes a batch written twice change nothing.
UNIT_WINDOWS = Table(
    "unit_windows",
    (
        ("unit_id", "LowCardinality(String)"),
        ("day", "Date"),
        ("source_topic", "LowCardinality(String)"),
        ("source_partition", "Int32"),
        ("version", "Int64"),
        *((m.name, "Int64") for m in metrics.WINDOWED),
    ),
    "ReplacingMergeTree(version) PARTITION BY toYYYYMM(day) ORDER BY (unit_id, day, source_topic, source_partition)",
)
# Each dispatched order's current state, in the partition of its cohort month (of its first
# dispatch in event time: a late earlier dispatch moves it, leaving a RETRACTED row in the
# old month); ``version`` is the number of its events folded in, so the latest state wins and
# a replay of the same events writes the same row.
ORDER_STATES = Table(
    "order_states",
    (
        ("order_id", "String"),
        ("cohort_day", "Date"),
        ("unit_id", "LowCardinality(String)"),
        ("order_type", "LowCardinality(String)"),
        ("due", TS),
        ("completed_at", f"Nullable({TS})"),
        ("returns", "UInt16"),
        ("seen", "Array(String)"),
        ("version", "UInt32"),
        # Supervision (schema version 5): unsatisfied visits so far, when the second one made the
        # order due for supervision, and whether it has been supervised since.
        ("unsatisfied_visits", "UInt16"),
        ("supervision_due", f"Nullable({TS})"),
        ("supervised", "Bool"),
    ),
    "ReplacingMergeTree(version) PARTITION BY toYYYYMM(cohort_day) ORDER BY order_id",
)
# The unit of an order's row in a cohort month it has left (an earlier dispatch arrived late):
# the newest row there, so the old one is gone, and skipped by every read of the order states.
RETRACTED = ""
# Per month, each returned order's number of returns to date (the headline's 退单次数分布).
ORDER_RETURNS = Table(
    "order_returns",
    (("month", "UInt32"), ("order_id", "String"), ("times", "UInt16")),
    "ReplacingMergeTree(times) PARTITION BY month ORDER BY order_id",
)
# Who wrote state besides the stream (imports, restatements), and whether the windows are
# still to be built from the events table (a directory of the release before windows).
GENERATIONS = Table(
    "generations",
    (("gen", "UInt32"), ("kind", "LowCardinality(String)"), ("description", "String")),
    "ReplacingMergeTree ORDER BY gen",
    (f"at {TS} DEFAULT now64(3)",),
)
# Fencing (hotline.sinks.fencing): per consumer group and source partition, the highest group
# generation that claimed it at the store; a call of a lower generation for it is refused.
PARTITION_CLAIMS = Table(
    "partition_claims",
    (
        ("group_id", "String"),
        ("source_topic", "LowCardinality(String)"),
        ("source_partition", "Int32"),
        ("generation", "Int64"),
    ),
    # The latest claim wins, not the highest generation: a lapsed claim may be taken by a lower one
    # (a re-created consumer group: hotline.sinks.fencing.Claims).
    "ReplacingMergeTree(claimed_at) ORDER BY (group_id, source_topic, source_partition)",
    (f"claimed_at {TS} DEFAULT now64(3)",),
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
# Alert delivery (hotline.streams.delivery): per destination and alert id, the latest row of its
# delivery (pending, delivered, expired), which is also what `hotline notify` resumes from. The
# destination is named unit/channel/index: no address, secret or phone number is ever stored.
ALERT_DELIVERIES = Table(
    "alert_deliveries",
    (
        ("destination", "String"),
        ("alert_id", "String"),
        ("unit_id", "LowCardinality(String)"),
        ("channel", "LowCardinality(String)"),
        ("status", "LowCardinality(String)"),
        ("attempts", "UInt32"),
        ("first_try", f"Nullable({TS})"),
        ("last_try", f"Nullable({TS})"),
        ("delivered_at", f"Nullable({TS})"),
        ("last_error", "String"),
        ("alert", "String"),
        ("version", "UInt64"),
    ),
    "ReplacingMergeTree(version) ORDER BY (destination, alert_id)",
)
ALL_TABLES = (
    EVENTS,
    DEADLETTER,
    SINK_OFFSETS,
    UNIT_COUNTERS,
    UNIT_WINDOWS,
    ORDER_STATES,
    ORDER_RETURNS,
    GENERATIONS,
    BULLETIN_ISSUES,
    PARTITION_CLAIMS,
    ALERT_DELIVERIES,
)
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
    # Steps SQL alone cannot make idempotent (copying a table), each checking where it stands.
    steps: tuple[Callable[[ClickHouseStore], None], ...] = ()


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


def _partition_events(sink: ClickHouseStore) -> None:
    """Copy an unpartitioned events table into one partitioned by month, then swap them.

    Safe to run again after a crash at any point: the copy deduplicates by event id, and
    the swap happens only while ``events`` still has no partition key.
    """
    copy = f"{sink.db}.events_by_month"
    if sink.partition_key("events") == "":
        sink.command(EVENTS.ddl().replace("{db}.events", copy))
        # The columns the table had before version 5 added the provincial checks' (those stay empty).
        columns = ", ".join([*(n for n in EVENTS.names if n not in CHECK_COLUMNS), "ingested_at"])
        sink.command(f"INSERT INTO {copy} ({columns}) SELECT {columns} FROM {{db}}.events")
        sink.command(f"EXCHANGE TABLES {{db}}.events AND {copy}")
    sink.command(f"DROP TABLE IF EXISTS {copy}")


RESTATE_PENDING = "pending-restate"


def _windows_pending(sink: ClickHouseStore) -> None:
    """Events stored before the windows existed: the windows are built from them (``hotline restate``)."""
    if sink.query_rows("SELECT count() AS n FROM {db}.generations")[0]["n"]:
        return
    if sink.query_rows("SELECT count() AS n FROM {db}.events")[0]["n"]:
        sink.record_generation(RESTATE_PENDING, "events stored before day windows and order states: restate them")


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
    Migration(
        3,
        "day windows, order states, order returns, generations; events partitioned by month",
        tuple(t.ddl() for t in (UNIT_WINDOWS, ORDER_STATES, ORDER_RETURNS, GENERATIONS)),
        (_partition_events, _windows_pending),
    ),
    Migration(4, "bulletin_issues: issued bulletins, frozen", (BULLETIN_ISSUES.ddl(),)),
    Migration(
        5,
        "provincial checks in events; supervision due in order_states; supervision_unsatisfied window",
        (
            "ALTER TABLE {db}.events ADD COLUMN IF NOT EXISTS reached Nullable(Bool)",
            f"ALTER TABLE {{db}}.events ADD COLUMN IF NOT EXISTS points Nullable({POINTS})",
            "ALTER TABLE {db}.events ADD COLUMN IF NOT EXISTS indicator LowCardinality(String) DEFAULT ''",
            "ALTER TABLE {db}.events ADD COLUMN IF NOT EXISTS deduction_items Array(String)",
            f"ALTER TABLE {{db}}.events ADD COLUMN IF NOT EXISTS deduction_points Array({POINTS})",
            "ALTER TABLE {db}.order_states ADD COLUMN IF NOT EXISTS unsatisfied_visits UInt16 DEFAULT 0",
            f"ALTER TABLE {{db}}.order_states ADD COLUMN IF NOT EXISTS supervision_due Nullable({TS})",
            "ALTER TABLE {db}.order_states ADD COLUMN IF NOT EXISTS supervised Bool DEFAULT false",
            "ALTER TABLE {db}.unit_windows ADD COLUMN IF NOT EXISTS supervision_unsatisfied Int64 DEFAULT 0",
        ),
    ),
    Migration(
        6, "partition_claims: the group generation that claimed each source partition", (PARTITION_CLAIMS.ddl(),)
    ),
    Migration(7, "alert_deliveries: what hotline notify delivered, to whom, when", (ALERT_DELIVERIES.ddl(),)),
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


@dataclass(frozen=True)
class WindowRow:
    """One source partition's whole contribution to a unit's day: every windowed count."""

    unit_id: str
    day: date
    source_topic: str
    source_partition: int
    version: int  # the last source offset applied
    counts: dict[str, int]

    def values(self) -> list[Any]:
        head = [self.unit_id, self.day, self.source_topic, self.source_partition, self.version]
        return head + [self.counts.get(m.name, 0) for m in metrics.WINDOWED]


@dataclass(frozen=True)
class OrderRow:
    """A dispatched order's current state, as ClickHouse keeps it."""

    order_id: str
    cohort_day: date
    unit_id: str
    order_type: str  # of its first dispatch
    due: datetime
    completed_at: datetime | None
    returns: int
    seen: tuple[str, ...]
    version: int  # events folded in
    unsatisfied_visits: int = 0
    supervision_due: datetime | None = None  # when a second unsatisfied visit made it due for 督办
    supervised: bool = False

    def values(self) -> list[Any]:
        return [
            self.order_id,
            self.cohort_day,
            self.unit_id,
            self.order_type,
            self.due,
            self.completed_at,
            self.returns,
            list(self.seen),
            self.version,
            self.unsatisfied_visits,
            self.supervision_due,
            self.supervised,
        ]


@dataclass(frozen=True)
class ReturnRow:
    """An order returned in ``month`` (YYYYMM), ``times`` times up to then."""

    month: int
    order_id: str
    times: int


@dataclass(frozen=True)
class Generation:
    """The latest writer of state besides the stream: 0 when there was none."""

    gen: int = 0
    kind: str = ""

    @property
    def restate_pending(self) -> bool:
        return self.kind == RESTATE_PENDING


@dataclass
class Batch:
    """The rows one stream batch hands to the sink; written together, in one call."""

    events: list[dict[str, Any]] = field(default_factory=list)
    deadletters: list[DeadLetter] = field(default_factory=list)
    windows: list[WindowRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    returns: list[ReturnRow] = field(default_factory=list)


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


# Every read: a batch's identity and state lookups list its ids (tens of thousands in an
# import's chunk); and FINAL deduplicates within each partition only, which is exact here
# (every table keeps all versions of a key in one partition: an order's cohort month never
# moves, a window's or an event's month is in its key) and lets a month's read prune the
# other partitions: without it a FINAL filtered on a non-key column (order_states by cohort
# month) reads the whole history (bench.history: 2.7 times the one-month time at 12 months).
# Each read's settings travel with it (never SET on the session, so nothing leaks into later
# statements); a read may take at most a minute (a bulletin at 12 months takes well under one).
_READ_SETTINGS = {
    "max_query_size": 64 << 20,
    "do_not_merge_across_partitions_select_final": 1,
    "max_execution_time": 60,
}


class ClickHouseStore:
    """Owns the one client of this process; a lock serialises chDB calls across threads."""

    # chDB is one engine per process: serialise every call, whichever instance makes it.
    _lock = threading.RLock()  # re-entered by migration steps

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
                    for step in migration.steps:
                        step(self)
                    self._record(migration.version, migration.description)
                    log.info("ClickHouse schema: version %d (%s)", migration.version, migration.description)
            self.schema_version = max(current, SCHEMA_VERSION)

    def _command(self, statement: str) -> None:
        self.client.command(statement.replace("{db}", self.db))

    def command(self, statement: str) -> None:
        """A statement (``{db}`` replaced), under the process's lock."""
        with self._lock:
            self._command(statement)

    def partition_key(self, table: str) -> str:
        rows = self.query_rows(
            "SELECT partition_key FROM system.tables WHERE database = %(db)s AND name = %(table)s",
            {"db": self.db, "table": table},
        )
        return str(rows[0]["partition_key"]) if rows else ""

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

    def claim(self, fence: Fence) -> None:
        """Nothing to fence here: a worker with its own ClickHouse is its only writer (one process).

        Part of :class:`~hotline.sinks.store.Store` so the pipeline has one path; ``hotline store``
        keeps the claims of several workers (:meth:`record_claims`, ``hotline.sinks.fencing``)."""

    def write(self, batch: Batch, fence: Fence | None = None) -> None:
        """Idempotent: the same batch written again leaves every table unchanged.

        Progress is not written here: the caller records it with :meth:`record_progress`
        once everything the batch produced (the order table's changelog too) is durable.
        ``fence`` is checked by ``hotline store`` before it calls this, ignored here.
        """
        with self._lock:
            if batch.events:
                self._insert_columns(EVENTS, [[row.get(c) for row in batch.events] for c in EVENTS.names])
            if batch.deadletters:
                self._insert(DEADLETTER, [_deadletter_row(d) for d in batch.deadletters])
            if batch.orders:
                self._insert_columns(ORDER_STATES, _columns(o.values() for o in batch.orders))
            if batch.returns:
                self._insert(ORDER_RETURNS, [[r.month, r.order_id, r.times] for r in batch.returns])
            if batch.windows:
                self._insert_columns(UNIT_WINDOWS, _columns(w.values() for w in batch.windows))

    def record_progress(self, offsets: dict[tuple[str, int], int], fence: Fence | None = None) -> None:
        """Advance the ledger: every offset up to these, per partition, is processed and stored.

        ``fence`` is checked by ``hotline store`` before it calls this, ignored here."""
        if not offsets:
            return
        with self._lock:
            self._insert(SINK_OFFSETS, [[t, p, o] for (t, p), o in offsets.items()])

    def record_claims(self, group: str, generation: int, partitions: list[tuple[str, int]]) -> None:
        """The store's claims made durable: a restarted store still fences a stale worker off."""
        if partitions:
            with self._lock:
                self._insert(PARTITION_CLAIMS, [[group, t, p, generation] for t, p in partitions])

    def claims(self) -> dict[tuple[str, str, int], int]:
        """Every claim recorded: per group and source partition, the generation of the latest."""
        rows = self.query_rows(
            "SELECT group_id, source_topic, source_partition, argMax(generation, claimed_at) AS generation "
            "FROM {db}.partition_claims GROUP BY group_id, source_topic, source_partition"
        )
        return {
            (str(r["group_id"]), str(r["source_topic"]), int(r["source_partition"])): int(r["generation"]) for r in rows
        }

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
        """What the events table already holds under these ids: one primary-key lookup per batch
        (the caller asks only for the ids a ``streams.known.KnownIds`` filter may hold)."""
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

    def event_count(self) -> int:
        return int(self.query_rows("SELECT count() AS n FROM {db}.events")[0]["n"])

    def event_ids(self) -> Iterator[list[str]]:
        """Every stored event id, a month at a time (a year of history is millions)."""
        months = self.query_rows(
            "SELECT DISTINCT partition FROM system.parts WHERE database = %(db)s AND table = 'events' AND active",
            {"db": self.db},
        )
        for month in sorted(str(r["partition"]) for r in months):
            where = "toYYYYMM(occurred_at) = %(m)s" if month.isdigit() else "1"
            rows = self.query(
                f"SELECT event_id FROM {{db}}.events WHERE {where}", {"m": int(month) if month.isdigit() else 0}
            )
            yield [str(r[0]) for r in rows]

    def order_states(self, order_ids: Iterable[str]) -> dict[str, OrderRow]:
        """The stored states of these orders (imported, restated, or written by the stream)."""
        ids = list(set(order_ids))
        if not ids:
            return {}
        rows = self.query_rows(
            f"SELECT {', '.join(ORDER_STATES.names)} FROM {{db}}.order_states FINAL "
            "WHERE order_id IN %(ids)s AND unit_id != ''",
            {"ids": ids},
        )
        return {str(r["order_id"]): _order_row(r) for r in rows}

    def open_orders(self) -> list[OrderRow]:
        """Every order still open, whatever its cohort: the live gauges and the alerts start from them."""
        rows = self.query_rows(
            f"SELECT {', '.join(ORDER_STATES.names)} FROM {{db}}.order_states FINAL "
            "WHERE completed_at IS NULL AND unit_id != ''"
        )
        return [_order_row(r) for r in rows]

    def awaiting_supervision(self) -> list[OrderRow]:
        """Every order due for supervision and not supervised yet, whatever its cohort: the screen's
        待督办 and the alerts owed start from them."""
        rows = self.query_rows(
            f"SELECT {', '.join(ORDER_STATES.names)} FROM {{db}}.order_states FINAL "
            "WHERE supervision_due IS NOT NULL AND NOT supervised AND unit_id != ''"
        )
        return [_order_row(r) for r in rows]

    def windows(self, where: str, parameters: dict[str, Any] | None = None) -> list[WindowRow]:
        """Day windows, latest version of each, selected by a condition over the table's columns."""
        rows = self.query_rows(
            f"SELECT {', '.join(UNIT_WINDOWS.names)} FROM {{db}}.unit_windows FINAL WHERE {where}", parameters
        )
        return [_window_row(r) for r in rows]

    def generation(self) -> Generation:
        rows = self.query_rows("SELECT gen, kind FROM {db}.generations FINAL ORDER BY gen DESC LIMIT 1")
        return Generation(int(rows[0]["gen"]), str(rows[0]["kind"])) if rows else Generation()

    def record_generation(self, kind: str, description: str) -> int:
        """A new generation of state written besides the stream; returns its number."""
        with self._lock:
            gen = self.generation().gen + 1
            self._insert(GENERATIONS, [[gen, kind, description]])
            return gen

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
                tuple(r)
                for r in self.client.query(
                    sql.replace("{db}", self.db), parameters=parameters, settings=_READ_SETTINGS
                ).result_rows
            ]

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows as dicts, read by column name."""
        with self._lock:
            result = self.client.query(sql.replace("{db}", self.db), parameters=parameters, settings=_READ_SETTINGS)
            return [dict(zip(result.column_names, r, strict=True)) for r in result.result_rows]

    def progress(self) -> dict[tuple[str, int], int]:
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

    def __enter__(self) -> ClickHouseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        """Closed after a ``with`` block, also on an error (chDB holds one directory per process)."""
        self.close()


def _columns(rows: Iterable[list[Any]]) -> list[list[Any]]:
    """Rows as columns, for a column-oriented insert."""
    return [list(column) for column in zip(*rows, strict=True)]


def _order_row(r: dict[str, Any]) -> OrderRow:
    return OrderRow(
        str(r["order_id"]),
        r["cohort_day"],
        str(r["unit_id"]),
        str(r["order_type"]),
        r["due"],
        r["completed_at"],
        int(r["returns"]),
        tuple(r["seen"]),
        int(r["version"]),
        int(r["unsatisfied_visits"]),
        r["supervision_due"],
        bool(r["supervised"]),
    )


def _window_row(r: dict[str, Any]) -> WindowRow:
    counts = {m.name: int(r[m.name]) for m in metrics.WINDOWED if r[m.name]}
    return WindowRow(
        str(r["unit_id"]), r["day"], str(r["source_topic"]), int(r["source_partition"]), int(r["version"]), counts
    )


def _deadletter_row(dead: DeadLetter) -> list[Any]:
    """The dead letter's ClickHouse row: its copy, key and error masked, each also of the
    caller values its record holds (a name quoted by the error or used as the key)."""
    redacted, occurred_at = redact(dead.raw)
    personal = personal_values(dead.raw[: REDACTED_CHARS * 4].decode("utf-8", errors="replace"))
    key = mask_personal(dead.key[:REDACTED_CHARS].decode("utf-8", errors="replace"), personal) if dead.key else ""
    copy = redacted if dead.store_copy else ""
    error = mask_personal(dead.error, personal)
    return [dead.source_topic, dead.source_partition, dead.source_offset, error, copy, key, occurred_at]


REDACTED_CHARS = 4096  # of a dead letter kept in ClickHouse; the topic keeps the whole record


def redact(raw: bytes) -> tuple[str, datetime | None]:
    """The dead letter's copy for ClickHouse, and its event time when the record has one.

    A record that parses loses its ``caller``; one that does not gets its caller members
    masked. Either way phones, and the caller's values wherever else the record holds them
    (its name as the type tag, say), are masked, and at most :data:`REDACTED_CHARS`
    characters are kept.
    """
    text = raw[: REDACTED_CHARS * 4].decode("utf-8", errors="replace")
    personal = personal_values(text)
    occurred_at: datetime | None = None
    try:
        data = json.loads(raw) if len(raw) <= REDACTED_CHARS * 4 else None
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        occurred_at = _timestamp(data.get("occurred_at"))
        text = strip_personal(data)
    return mask_personal(text, personal)[:REDACTED_CHARS], occurred_at


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
