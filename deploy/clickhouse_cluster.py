"""ClickHouse server DDL for a cluster, generated from the tables the embedded store creates.

Why generated: the pipeline's tables are defined once (:data:`hotline.sinks.tables.ALL_TABLES`,
each a :class:`~hotline.sinks.tables.Table` with its columns and engine), and a cluster must
hold exactly those columns, sorting keys and versions; a hand-written copy would drift the day a
table changes. So each table becomes two statements, both ``ON CLUSTER``:

- ``<name>_local``: the table's engine made replicated (``ReplacingMergeTree(v) …`` becomes
  ``ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/<db>/<name>_local', '{replica}', v) …``,
  every clause after it kept), one replica set per shard;
- ``<name>``: a ``Distributed`` table over them with the same columns, under the name the
  workers and the bulletin use, sharded by a hash of the sorting key: the rows a
  ReplacingMergeTree replaces share that key, so they land on one shard and ``FINAL`` stays exact.

``{shard}`` and ``{replica}`` are ClickHouse macros each server defines in its configuration.
CLI: ``hotline deploy clickhouse-ddl --cluster NAME``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from hotline.sinks.migrations import SCHEMA_VERSION
from hotline.sinks.tables import ALL_TABLES, Table

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENGINE_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*")
_ORDER_BY = re.compile(r"\bORDER\s+BY\s+", re.IGNORECASE)
LOCAL_SUFFIX = "_local"


@dataclass(frozen=True)
class Engine:
    """A table's ``engine`` string taken apart: name, arguments, and every clause after them as written."""

    name: str
    args: tuple[str, ...]
    clauses: str

    @property
    def order_by(self) -> str:
        """The sorting key expression (``event_id``, ``(a, b)``): what identifies a row to replace."""
        found = _ORDER_BY.search(self.clauses)
        if found is None:
            raise ValueError(f"engine {self.name} has no ORDER BY: {self.clauses!r}")
        return _expression(self.clauses, found.end())


def _closing(text: str, start: int) -> int:
    """Index just past the parenthesis that closes the one at ``start`` (quotes respected)."""
    depth, quote, i = 0, "", start
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced parentheses in {text!r}")


def _split_args(inner: str) -> tuple[str, ...]:
    """Top-level comma-separated arguments (a comma inside a call or tuple stays in its argument)."""
    args: list[str] = []
    depth, quote, begin = 0, "", 0
    for i, char in enumerate(inner):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            args.append(inner[begin:i].strip())
            begin = i + 1
    if inner.strip():
        args.append(inner[begin:].strip())
    return tuple(args)


def _expression(text: str, start: int) -> str:
    """The expression at ``start``: a parenthesised group, or a name with its call's arguments if any."""
    if text.startswith("(", start):
        return text[start : _closing(text, start)]
    name = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*").match(text, start)
    if name is None:
        raise ValueError(f"no expression at {text[start:]!r}")
    end = name.end()
    return text[start : _closing(text, end)] if text.startswith("(", end) else text[start:end]


def parse_engine(engine: str) -> Engine:
    """``ReplacingMergeTree(version) PARTITION BY toYYYYMM(day) ORDER BY (a, b)`` → its parts."""
    found = _ENGINE_NAME.match(engine)
    if found is None:
        raise ValueError(f"not an engine: {engine!r}")
    name, rest = found.group(1), engine[found.end() :]
    args: tuple[str, ...] = ()
    if rest.startswith("("):
        end = _closing(rest, 0)
        args, rest = _split_args(rest[1 : end - 1]), rest[end:]
    return Engine(name, args, rest.strip())


def replicated_engine(table: Table, database: str) -> str:
    """The table's engine, replicated: same family, same arguments after the path and replica, same clauses."""
    engine = parse_engine(table.engine)
    if not engine.name.endswith("MergeTree") or engine.name.startswith("Replicated"):
        raise ValueError(f"{table.name}: only a local *MergeTree engine can be made replicated, not {engine.name}")
    path = f"'/clickhouse/tables/{{shard}}/{database}/{table.name}{LOCAL_SUFFIX}'"
    args = ", ".join((path, "'{replica}'", *engine.args))
    return f"Replicated{engine.name}({args}) {engine.clauses}".rstrip()


def sharding_key(table: Table) -> str:
    """A hash of the sorting key: rows one ReplacingMergeTree replaces by another always share a shard."""
    key = parse_engine(table.engine).order_by
    if key.startswith("(") and _closing(key, 0) == len(key):
        key = key[1:-1].strip()
    return f"cityHash64({key})"


def _columns(table: Table) -> str:
    """Every column the store writes and every one ClickHouse fills itself, as the embedded DDL has them."""
    lines = [*(f"{name} {kind}" for name, kind in table.columns), *table.defaults]
    return ",\n    ".join(lines)


def _checked(name: str, what: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{what} {name!r} is not a plain identifier")
    return name


def table_statements(table: Table, cluster: str, database: str) -> tuple[str, str]:
    """The replicated local table and the Distributed table over it, both ``ON CLUSTER``."""
    cluster, database = _checked(cluster, "cluster"), _checked(database, "database")
    local = f"{table.name}{LOCAL_SUFFIX}"
    columns = _columns(table)
    replicated = (
        f"CREATE TABLE IF NOT EXISTS {database}.{local} ON CLUSTER {cluster} (\n    {columns}\n)"
        f" ENGINE = {replicated_engine(table, database)}"
    )
    distributed = (
        f"CREATE TABLE IF NOT EXISTS {database}.{table.name} ON CLUSTER {cluster} (\n    {columns}\n)"
        f" ENGINE = Distributed('{cluster}', '{database}', '{local}', {sharding_key(table)})"
    )
    return replicated, distributed


def statements(cluster: str, database: str, tables: Iterable[Table] = ALL_TABLES) -> list[str]:
    """The database, then per table its replicated and its Distributed table, in ``ALL_TABLES`` order."""
    out = [f"CREATE DATABASE IF NOT EXISTS {_checked(database, 'database')} ON CLUSTER {_checked(cluster, 'cluster')}"]
    for table in tables:
        out.extend(table_statements(table, cluster, database))
    return out


def script(cluster: str, database: str, tables: Iterable[Table] = ALL_TABLES) -> str:
    """What ``clickhouse-client --multiquery`` runs once per release, before the workers start."""
    header = f"""\
-- hotline: ClickHouse cluster DDL for schema version {SCHEMA_VERSION}, generated from the pipeline's tables
-- (hotline.sinks.tables.ALL_TABLES) by `hotline deploy clickhouse-ddl --cluster {cluster}`: regenerate, don't edit.
-- <name>{LOCAL_SUFFIX}: replicated on every replica of its shard ({{shard}}, {{replica}}: each server's macros).
-- <name>: Distributed over them, sharded by a hash of the sorting key; the workers write and read these.
-- Give the workers' user insert_distributed_sync = 1: the ledger (sink_offsets) moves only once a batch is
-- stored, so an insert must return after the shards have it, not when it is queued for them.
"""
    return header + "".join(f"\n{statement};\n" for statement in statements(cluster, database, tables))
