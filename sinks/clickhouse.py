"""ClickHouse, embedded chDB by default, a server by DSN (same code path): the driver's store.

:class:`ClickHouseStore` answers :class:`~hotline.sinks.base.Store` over one client per process:
the inserts of a batch, the ledger and the claims, and the reads, each ``FINAL`` over the
ReplacingMergeTree tables of ``hotline.sinks.tables`` (so a batch written twice changes nothing).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from hotline.schemas import metrics
from hotline.settings import Settings
from hotline.sinks import originals
from hotline.sinks.base import Batch, Generation, OrderRow, Stored, WindowRow
from hotline.sinks.fencing import Fence
from hotline.sinks.migrations import migrate
from hotline.sinks.redaction import deadletter_row
from hotline.sinks.tables import (
    DEADLETTER,
    EVENTS,
    GENERATIONS,
    ORDER_RETURNS,
    ORDER_STATES,
    PARTITION_CLAIMS,
    SINK_OFFSETS,
    TABLES,
    UNIT_WINDOWS,
    Table,
)


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

# A lookup by key (a batch's event ids, the orders it touches, the windows it misses) has a
# condition never seen again. ClickHouse's query condition cache (25.3 on) keeps, per part and
# per condition, which granules matched: for these it only fills, an entry per part per lookup,
# until its size limit (100 MiB), and the more months stored the more parts each lookup visits.
# That was the streaming worker's memory growing with history (bench.state). Lookups skip it;
# a server too old to know the setting has no such cache, and is sent nothing.
_UNCACHED_CONDITION = "use_query_condition_cache"


class ClickHouseStore:
    """Owns the one client of this process; a lock serialises chDB calls across threads."""

    # chDB is one engine per process: serialise every call, whichever instance makes it.
    _lock = threading.RLock()  # re-entered by migration steps

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.settings = settings
        self.db = settings.clickhouse_database
        self.client = client or connect(settings)
        self.schema_version: int | None = None  # known once :meth:`migrate` has run
        self.deadletter_key = originals.key_of(settings.deadletter_key)  # seals dead letters' originals
        known = self.client.server_settings  # every setting this server knows
        uncached = {_UNCACHED_CONDITION: 0} if _UNCACHED_CONDITION in known else {}
        self._lookup_settings = {**_READ_SETTINGS, **uncached}

    def migrate(self) -> None:
        """Bring the database to this build's schema version (``hotline.sinks.migrations``).

        Raises :class:`~hotline.sinks.base.SchemaTooNew`, touching nothing, when a newer build wrote it.
        """
        with self._lock:
            self.schema_version = migrate(self)

    def _command(self, statement: str) -> None:
        self.client.command(statement.replace("{db}", self.db))

    def command(self, statement: str, parameters: dict[str, Any] | None = None) -> None:
        """A statement (``{db}`` replaced), under the process's lock."""
        with self._lock:
            if parameters:
                self.client.command(statement.replace("{db}", self.db), parameters=parameters)
            else:
                self._command(statement)

    def partition_key(self, table: str) -> str:
        rows = self.query_rows(
            "SELECT partition_key FROM system.tables WHERE database = %(db)s AND name = %(table)s",
            {"db": self.db, "table": table},
        )
        return str(rows[0]["partition_key"]) if rows else ""

    def claim(self, fence: Fence) -> None:
        """Nothing to fence here: a worker with its own ClickHouse is its only writer (one process).

        Part of :class:`~hotline.sinks.base.Store` so the pipeline has one path; ``hotline store``
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
                self._insert(DEADLETTER, [deadletter_row(d, self.deadletter_key) for d in batch.deadletters])
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
        rows = self._lookup_rows(
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
        return self._by_month("events", "event_id", "occurred_at")

    def order_count(self) -> int:
        """Stored order states, each version until merged: at least as many as orders."""
        return int(self.query_rows("SELECT count() AS n FROM {db}.order_states")[0]["n"])

    def order_ids(self) -> Iterator[list[str]]:
        """Every order with a stored state, a cohort month at a time (an order may repeat, unmerged)."""
        return self._by_month("order_states", "order_id", "cohort_day")

    def _by_month(self, table: str, column: str, day: str) -> Iterator[list[str]]:
        """One column of a table partitioned by month, a partition per read: no read (and no
        result in memory) grows with history."""
        months = self.query_rows(
            "SELECT DISTINCT partition FROM system.parts WHERE database = %(db)s AND table = %(t)s AND active",
            {"db": self.db, "t": table},
        )
        for month in sorted(str(r["partition"]) for r in months):
            where = f"toYYYYMM({day}) = %(m)s" if month.isdigit() else "1"
            rows = self.query(
                f"SELECT {column} FROM {{db}}.{table} WHERE {where}", {"m": int(month) if month.isdigit() else 0}
            )
            yield [str(r[0]) for r in rows]

    def order_states(self, order_ids: Iterable[str]) -> dict[str, OrderRow]:
        """The stored states of these orders (imported, restated, or written by the stream)."""
        ids = list(set(order_ids))
        if not ids:
            return {}
        rows = self._lookup_rows(
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
        rows = self._lookup_rows(
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
        return self._rows(sql, parameters, _READ_SETTINGS)

    def _lookup_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a lookup by key, whose condition is not cached (see ``_UNCACHED_CONDITION``)."""
        return self._rows(sql, parameters, self._lookup_settings)

    def _rows(self, sql: str, parameters: dict[str, Any] | None, settings: dict[str, Any]) -> list[dict[str, Any]]:
        with self._lock:
            result = self.client.query(sql.replace("{db}", self.db), parameters=parameters, settings=settings)
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
