"""ClickHouse cluster DDL generated from the pipeline's tables, checked on chDB as far as chDB can.

chDB has no ZooKeeper and no cluster, so the statements are parsed by ClickHouse's own parser
(``formatQuery``), and then, stripped of ``ON CLUSTER`` and of the replication arguments, created
and compared with the tables the embedded store creates from the same definitions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from hotline.deploy.clickhouse_cluster import replicated_engine, script, sharding_key, statements, table_statements
from hotline.settings import Settings
from hotline.sinks.clickhouse import connect
from hotline.sinks.tables import ALL_TABLES, Table

CLUSTER, DB = "hotline_cluster", "hotline"
PARTITIONED = Table(
    "daily",
    (("unit_id", "LowCardinality(String)"), ("day", "Date"), ("metric", "String"), ("version", "UInt64")),
    "ReplacingMergeTree(version) PARTITION BY toYYYYMM(day) ORDER BY (unit_id, day)",
)
TABLES = (*ALL_TABLES, PARTITIONED)


@pytest.fixture(scope="module")
def chdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    client = connect(Settings(clickhouse_dsn=f"chdb://{tmp_path_factory.mktemp('ddl') / 'ch'}"))
    yield client
    client.close()  # chDB holds one path per process


def _local(statement: str) -> str:
    """The statement as one server without a cluster runs it: no ON CLUSTER, no replication arguments."""
    statement = re.sub(r" ON CLUSTER \w+", "", statement)
    statement = re.sub(r"Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, )?", r"\1(", statement)
    statement = statement.replace("MergeTree()", "MergeTree")
    return re.sub(r"ENGINE = Distributed\(.*\)$", "ENGINE = Null", statement)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_each_statement_names_every_column_of_its_table(table: Table) -> None:
    for statement in table_statements(table, CLUSTER, DB):
        for name, kind in table.columns:
            assert f"\n    {name} {kind}," in statement or f"\n    {name} {kind}\n" in statement, (name, statement)
        for default in table.defaults:
            assert default in statement


def test_the_engine_is_replicated_with_its_version_column_kept() -> None:
    (sink_offsets,) = [t for t in ALL_TABLES if t.name == "sink_offsets"]
    assert replicated_engine(sink_offsets, DB) == (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/hotline/sink_offsets_local', '{replica}', "
        "source_offset) ORDER BY (source_topic, source_partition)"
    )


def test_partition_by_and_order_by_are_kept() -> None:
    assert replicated_engine(PARTITIONED, DB).endswith(
        "'{replica}', version) PARTITION BY toYYYYMM(day) ORDER BY (unit_id, day)"
    )


def test_the_distributed_table_shards_by_the_sorting_key() -> None:
    assert sharding_key(PARTITIONED) == "cityHash64(unit_id, day)"
    assert table_statements(PARTITIONED, CLUSTER, DB)[1].endswith(
        "ENGINE = Distributed('hotline_cluster', 'hotline', 'daily_local', cityHash64(unit_id, day))"
    )


def test_every_table_of_the_store_has_a_replicated_and_a_distributed_table() -> None:
    made = re.findall(r"CREATE TABLE IF NOT EXISTS hotline\.(\w+) ON CLUSTER", script(CLUSTER, DB))
    assert made == [name for t in ALL_TABLES for name in (f"{t.name}_local", t.name)]


def test_a_table_that_cannot_be_replicated_is_refused() -> None:
    with pytest.raises(ValueError, match="MergeTree"):
        replicated_engine(Table("scratch", (("a", "String"),), "Memory"), DB)


def test_every_statement_parses_as_clickhouse_sql(chdb: Client) -> None:
    for statement in statements(CLUSTER, DB, TABLES):
        formatted = chdb.query("SELECT formatQuery(%(q)s)", {"q": statement}).result_rows[0][0]
        assert "ON CLUSTER hotline_cluster" in formatted


def test_stripped_of_the_cluster_the_local_tables_are_the_embedded_ones(chdb: Client) -> None:
    chdb.command("CREATE DATABASE IF NOT EXISTS cluster_ddl")
    chdb.command("CREATE DATABASE IF NOT EXISTS embedded")
    for table in TABLES:
        local, distributed = table_statements(table, CLUSTER, "cluster_ddl")
        chdb.command(_local(local))
        chdb.command(_local(distributed))
        chdb.command(table.ddl().replace("{db}", "embedded"))
        assert _shape(chdb, "cluster_ddl", f"{table.name}_local") == _shape(chdb, "embedded", table.name)
        assert _columns(chdb, "cluster_ddl", table.name) == _columns(chdb, "embedded", table.name)


def test_the_sharding_key_is_an_expression_over_the_tables_columns(chdb: Client) -> None:
    chdb.command("CREATE DATABASE IF NOT EXISTS sharding")
    for table in TABLES:
        chdb.command(table.ddl().replace("{db}", "sharding"))
        chdb.query(f"SELECT {sharding_key(table)} FROM sharding.{table.name}")


def _columns(chdb: Client, db: str, table: str) -> list[tuple[object, ...]]:
    query = "SELECT name, type, default_kind, default_expression FROM system.columns WHERE database = %(db)s"
    return chdb.query(f"{query} AND table = %(t)s ORDER BY position", {"db": db, "t": table}).result_rows


def _shape(chdb: Client, db: str, table: str) -> tuple[object, ...]:
    """Columns, engine, sorting and partition keys: what makes two tables the same table."""
    query = "SELECT engine_full, sorting_key, partition_key FROM system.tables WHERE database = %(db)s"
    (row,) = chdb.query(f"{query} AND name = %(t)s", {"db": db, "t": table}).result_rows
    return (*row, tuple(_columns(chdb, db, table)))
