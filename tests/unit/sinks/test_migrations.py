"""Upgrades in place: a directory written by an earlier build is migrated on open, never misread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.settings import Settings
from hotline.sinks.base import SchemaTooNew
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.migrations import MIGRATIONS, SCHEMA_VERSION
from hotline.sinks.tables import ALL_TABLES, SERIAL_PART_REMOVAL, TS

# The previous release's schema, verbatim (sinks/clickhouse.py at 2cabc23^): no schema_version
# table. Its MIGRATIONS also ran the two deadletter ALTERs; a directory from before those
# existed lacks the columns, hence both shapes below.
PREVIOUS_EVENTS_DDL = """CREATE TABLE IF NOT EXISTS {db}.events (
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
    ) ENGINE = ReplacingMergeTree ORDER BY event_id"""

PREVIOUS_MIGRATIONS: list[str] = [
    "CREATE DATABASE IF NOT EXISTS {db}",
    PREVIOUS_EVENTS_DDL,
    # ``raw`` holds a redacted copy (see :func:`redact`); the original bytes stay only in the
    # dead-letter topic, bounded by its retention.
    """CREATE TABLE IF NOT EXISTS {db}.deadletter (
        source_topic LowCardinality(String),
        source_partition Int32,
        source_offset Int64,
        error String,
        raw String,
        received_at DateTime64(3, 'Asia/Shanghai') DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree ORDER BY (source_topic, source_partition, source_offset)""",
    "ALTER TABLE {db}.deadletter ADD COLUMN IF NOT EXISTS key String DEFAULT ''",
    "ALTER TABLE {db}.deadletter ADD COLUMN IF NOT EXISTS occurred_at Nullable(DateTime64(3, 'Asia/Shanghai'))",
    # The progress ledger: per source partition, the last offset processed with every offset
    # before it. The truth on restart and rebalance (not the consumer group's commits).
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
BEFORE_DEADLETTER_COLUMNS = [s for s in PREVIOUS_MIGRATIONS if "ADD COLUMN" not in s]

PREVIOUS_ROWS = [
    "INSERT INTO {db}.events (event_id, type, occurred_at, call_id, order_id, unit_id, due_computed, "
    "reason, payload, source_topic, source_partition, source_offset) VALUES "
    "('e1', 'call.received', '2019-11-04 09:00:00', 'C1', '', 'U01', false, '', '{\"event_id\":\"e1\"}', "
    "'calls', 0, 0)",
    "INSERT INTO {db}.deadletter (source_topic, source_partition, source_offset, error, raw) "
    "VALUES ('calls', 0, 1, 'not JSON', '{')",
    "INSERT INTO {db}.sink_offsets VALUES ('calls', 0, 1)",
    "INSERT INTO {db}.unit_counters VALUES ('U01', '2019-11-04', 'calls', 'e1', 1)",
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    s = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}"))
    yield s
    s.close()  # chDB holds one path per process


def _run(store: ClickHouseStore, statements: list[str]) -> None:
    for statement in statements:
        store.client.command(statement.replace("{db}", store.db))


def _versions(store: ClickHouseStore) -> list[tuple[int, str]]:
    rows = store.query("SELECT version, description FROM {db}.schema_version FINAL ORDER BY version")
    return [(int(v), str(d)) for v, d in rows]


def _columns(store: ClickHouseStore) -> dict[str, dict[str, str]]:
    rows = store.query("SELECT table, name, type FROM system.columns WHERE database = %(db)s", {"db": store.db})
    found: dict[str, dict[str, str]] = {}
    for table, name, kind in rows:
        found.setdefault(table, {})[name] = kind
    return found


def _expected_columns() -> dict[str, dict[str, str]]:
    """Every table as the store defines it today: the columns it inserts and those with a default."""
    return {
        t.name: dict(t.columns) | {d.split()[0]: d.split(" ", 1)[1].rsplit(" DEFAULT ", 1)[0] for d in t.defaults}
        for t in ALL_TABLES
    }


def _assert_current_shape(store: ClickHouseStore) -> None:
    found = _columns(store)
    assert found.pop("schema_version") == {"version": "UInt32", "applied_at": TS, "description": "String"}
    assert found == _expected_columns()


@pytest.mark.parametrize("previous", [PREVIOUS_MIGRATIONS, BEFORE_DEADLETTER_COLUMNS], ids=["previous", "older"])
def test_a_previous_release_directory_is_migrated_on_open_rows_intact(
    store: ClickHouseStore, previous: list[str]
) -> None:
    _run(store, previous)
    _run(store, PREVIOUS_ROWS)

    store.migrate()

    _assert_current_shape(store)
    assert store.schema_version == SCHEMA_VERSION
    versions = _versions(store)
    assert [v for v, _ in versions] == [m.version for m in MIGRATIONS]
    assert "before schema_version" in versions[0][1]  # recognised, not created
    # The rows, through the store's normal reads.
    assert store.counts() == {"events": 1, "deadletter": 1}
    assert store.progress() == {("calls", 0): 1}
    assert [d["error"] for d in store.deadletters()] == ["not JSON"]
    assert store.stored(["e1"])["e1"].payload == '{"event_id":"e1"}'
    assert store.query_rows("SELECT key, occurred_at FROM {db}.deadletter FINAL") == [{"key": "", "occurred_at": None}]
    assert store.query("SELECT unit_id, metric, value FROM {db}.unit_counters FINAL") == [("U01", "calls", 1)]
    assert store.healthy()


def test_migrating_twice_changes_nothing(store: ClickHouseStore) -> None:
    _run(store, BEFORE_DEADLETTER_COLUMNS)
    _run(store, PREVIOUS_ROWS)
    store.migrate()
    columns, versions, applied = (
        _columns(store),
        _versions(store),
        store.query("SELECT * FROM {db}.schema_version ORDER BY version"),
    )
    store.migrate()
    assert (_columns(store), _versions(store)) == (columns, versions)
    applied_now = store.query("SELECT * FROM {db}.schema_version ORDER BY version")
    assert applied_now == applied  # not even a second row to merge
    assert store.counts() == {"events": 1, "deadletter": 1}


def test_a_fresh_directory_gets_the_latest_version_directly(store: ClickHouseStore) -> None:
    store.migrate()
    _assert_current_shape(store)
    assert _versions(store) == [(m.version, m.description) for m in MIGRATIONS]
    assert store.schema_version == SCHEMA_VERSION


@pytest.mark.parametrize("previous", [[], PREVIOUS_MIGRATIONS], ids=["fresh", "previous"])
def test_every_table_removes_merged_away_parts_on_one_thread(store: ClickHouseStore, previous: list[str]) -> None:
    """Not on a pool of 128 threads that stays once a hundred parts wait (bench.state: ~40 MiB)."""
    _run(store, previous)
    store.migrate()
    rows = store.query_rows(
        "SELECT name, engine_full FROM system.tables WHERE database = %(db)s AND endsWith(engine, 'MergeTree')",
        {"db": store.db},
    )
    assert {r["name"] for r in rows} >= {t.name for t in ALL_TABLES}
    setting = SERIAL_PART_REMOVAL.replace(" ", "")
    assert [r["name"] for r in rows if setting not in r["engine_full"].replace(" ", "")] == []


def test_a_newer_version_refuses_to_open_and_says_what_to_do(store: ClickHouseStore, tmp_path: Path) -> None:
    store.migrate()
    store.query(
        "INSERT INTO {db}.schema_version (version, description) VALUES (%(v)s, 'from the future')",
        {"v": SCHEMA_VERSION + 1},
    )
    before = _columns(store)
    with pytest.raises(SchemaTooNew) as refused:
        store.migrate()
    message = str(refused.value)
    assert f"schema version {SCHEMA_VERSION + 1}, newer than this build's {SCHEMA_VERSION}" in message
    assert f"move {tmp_path / 'ch'} aside" in message
    assert "release that knows version" in message
    assert _columns(store) == before  # nothing touched


def test_the_worker_fails_on_a_newer_version_in_one_clear_line(
    store: ClickHouseStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from hotline import cli
    from hotline.commands import common

    store.migrate()
    store.query("INSERT INTO {db}.schema_version (version, description) VALUES (%(v)s, '')", {"v": SCHEMA_VERSION + 1})
    monkeypatch.setattr(common, "get_settings", lambda: store.settings)
    monkeypatch.setattr(ClickHouseStore, "__init__", _same_client(store))  # chDB: one client per path and process
    result = CliRunner().invoke(cli.app, ["worker"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    dsn = f"chdb://{tmp_path / 'ch'}"
    assert lines[0].startswith(f"error: cannot open ClickHouse at {dsn}: ClickHouse database hotline is at")
    assert f"newer than this build's {SCHEMA_VERSION}" in lines[0]


def _same_client(store: ClickHouseStore) -> object:
    init = ClickHouseStore.__init__

    def opened(self: ClickHouseStore, settings: Settings, client: object = None) -> None:
        init(self, settings, store.client)

    return opened
