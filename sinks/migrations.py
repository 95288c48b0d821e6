"""The schema's versions, and bringing a database to this build's.

Each :class:`Migration` is one version: statements (and steps) that bring the previous one to
it. :func:`migrate` runs the missing ones in order, each recorded once in ``schema_version``, and
refuses a database a newer build wrote (:class:`~hotline.sinks.base.SchemaTooNew`). The tables'
current shape is declared in ``hotline.sinks.tables``; a migration may create a table from there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hotline.sinks.base import RESTATE_PENDING, SchemaTooNew
from hotline.sinks.tables import (
    ALERT_DELIVERIES,
    BULLETIN_ISSUES,
    CHECK_COLUMNS,
    COVERAGE_DECLARED,
    EVENTS,
    GENERATIONS,
    ORDER_RETURNS,
    ORDER_STATES,
    PARTITION_CLAIMS,
    POINTS,
    SERIAL_PART_REMOVAL,
    TS,
    UNIT_REGISTRY,
    UNIT_WINDOWS,
)

if TYPE_CHECKING:
    from hotline.sinks.clickhouse import ClickHouseStore

log = logging.getLogger(__name__)


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


def _partition_events(store: ClickHouseStore) -> None:
    """Copy an unpartitioned events table into one partitioned by month, then swap them.

    Safe to run again after a crash at any point: the copy deduplicates by event id, and
    the swap happens only while ``events`` still has no partition key.
    """
    copy = f"{store.db}.events_by_month"
    if store.partition_key("events") == "":
        store.command(EVENTS.ddl().replace("{db}.events", copy))
        # The columns the table had before version 5 added the provincial checks' (those stay empty).
        columns = ", ".join([*(n for n in EVENTS.names if n not in CHECK_COLUMNS), "ingested_at"])
        store.command(f"INSERT INTO {copy} ({columns}) SELECT {columns} FROM {{db}}.events")
        store.command(f"EXCHANGE TABLES {{db}}.events AND {copy}")
    store.command(f"DROP TABLE IF EXISTS {copy}")


def _windows_pending(store: ClickHouseStore) -> None:
    """Events stored before the windows existed: the windows are built from them (``hotline restate``)."""
    if store.query_rows("SELECT count() AS n FROM {db}.generations")[0]["n"]:
        return
    if store.query_rows("SELECT count() AS n FROM {db}.events")[0]["n"]:
        store.record_generation(RESTATE_PENDING, "events stored before day windows and order states: restate them")


def _remove_parts_serially(store: ClickHouseStore) -> None:
    """Every table of the database, whichever version made it, removes merged-away parts on one thread
    (``hotline.sinks.tables.SERIAL_PART_REMOVAL``); a later migration creating a table runs this again."""
    tables = store.query_rows(
        "SELECT name FROM system.tables WHERE database = %(db)s AND endsWith(engine, 'MergeTree')", {"db": store.db}
    )
    for table in tables:
        store.command(f"ALTER TABLE {{db}}.{table['name']} MODIFY SETTING {SERIAL_PART_REMOVAL}")


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
    Migration(
        7,
        "deadletter: sealed original and its key id; when and where it was redriven",
        (
            "ALTER TABLE {db}.deadletter ADD COLUMN IF NOT EXISTS original String DEFAULT ''",
            "ALTER TABLE {db}.deadletter ADD COLUMN IF NOT EXISTS original_key_id String DEFAULT ''",
            f"ALTER TABLE {{db}}.deadletter ADD COLUMN IF NOT EXISTS redriven_at Nullable({TS})",
            "ALTER TABLE {db}.deadletter ADD COLUMN IF NOT EXISTS redrive_outcome String DEFAULT ''",
        ),
    ),
    Migration(8, "unit_registry: the unit registry with its history, by imported version", (UNIT_REGISTRY.ddl(),)),
    Migration(9, "coverage_declared: the day an office declares its history complete from", (COVERAGE_DECLARED.ddl(),)),
    Migration(10, "alert_deliveries: what hotline notify delivered, to whom, when", (ALERT_DELIVERIES.ddl(),)),
    Migration(11, "every table removes merged-away parts on one thread", (), (_remove_parts_serially,)),
)
SCHEMA_VERSION = MIGRATIONS[-1].version  # what this build writes and reads
SCHEMA_VERSION_DDL = f"""CREATE TABLE IF NOT EXISTS {{db}}.schema_version (
        version UInt32,
        applied_at {TS} DEFAULT now64(3),
        description String
    ) ENGINE = ReplacingMergeTree ORDER BY version"""


def migrate(store: ClickHouseStore) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`, each missing version in order, each recorded
    once; returns the version it is at now.

    Raises :class:`~hotline.sinks.base.SchemaTooNew`, touching nothing, when a newer build wrote it.
    """
    store.command("CREATE DATABASE IF NOT EXISTS {db}")
    current = _found_version(store)
    if current > SCHEMA_VERSION:
        raise SchemaTooNew(f"ClickHouse database {store.db}", current, SCHEMA_VERSION, _remedy(store))
    store.command(SCHEMA_VERSION_DDL)
    if current and not _recorded(store):
        # The previous release's tables, from before versions were recorded.
        _record(store, current, "found: tables of a release before schema_version")
    for migration in MIGRATIONS:
        if migration.version > current:
            for statement in migration.statements:
                store.command(statement)
            for step in migration.steps:
                step(store)
            _record(store, migration.version, migration.description)
            log.info("ClickHouse schema: version %d (%s)", migration.version, migration.description)
    return max(current, SCHEMA_VERSION)


def _tables(store: ClickHouseStore) -> set[str]:
    rows = store.client.query("SELECT name FROM system.tables WHERE database = %(db)s", {"db": store.db})
    return {str(r[0]) for r in rows.result_rows}


def _recorded(store: ClickHouseStore) -> int:
    """The highest version recorded in ``schema_version``; 0 without a row."""
    rows = store.client.query(f"SELECT max(version), count() FROM {store.db}.schema_version FINAL").result_rows
    return int(rows[0][0]) if rows and int(rows[0][1]) else 0


def _found_version(store: ClickHouseStore) -> int:
    """The database's version: recorded, or 1 for the tables of the release before versions, or 0 (empty)."""
    tables = _tables(store)
    recorded = _recorded(store) if "schema_version" in tables else 0
    return max(recorded, 1 if "events" in tables else 0)


def _record(store: ClickHouseStore, version: int, description: str) -> None:
    store.client.insert(
        f"{store.db}.schema_version",
        [[version, description]],
        column_names=["version", "description"],
        column_type_names=["UInt32", "String"],
    )


def _remedy(store: ClickHouseStore) -> str:
    """How to start over with this build: a new, empty store that the worker refills from Kafka."""
    dsn = store.settings.resolved_clickhouse_dsn
    new = (
        f"move {dsn.removeprefix('chdb://')} aside"
        if dsn.startswith("chdb:")
        else "set HOTLINE_CLICKHOUSE_DATABASE to a new database name"
    )
    return (
        f"to rebuild it with this one, {new} with the worker stopped and start it again: it refills "
        "the store from the Kafka topics, as far back as their retention reaches"
    )
