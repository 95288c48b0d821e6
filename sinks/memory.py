"""A store in memory: the whole :class:`~hotline.sinks.base.Store`, answered from what was written.

Why ship it: the worker's rules (a batch durable before the ledger moves, lookups that see every
earlier write, a replayed batch changing nothing) are the store's contract, not ClickHouse's.
Tests of the pipeline run against this store instead of a hand-written double per test file, and
a contract test holds it to :class:`~hotline.sinks.clickhouse.ClickHouseStore`'s answers for the
same writes. It keeps what ClickHouse would keep after its merges: per key the row of the highest
version (the last written among equal ones), the first copy of an event, the highest offset of
the ledger. It runs no SQL: :meth:`MemoryStore.query` and :meth:`MemoryStore.query_rows` refuse
(the reports read ClickHouse, and so the order returns, which only they read, are kept in
:attr:`MemoryStore.batches` alone), and :meth:`MemoryStore.windows` takes the conditions the
worker and the imports use (see :func:`window_filter`).
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from typing import Any, TypeVar

from hotline.schemas import metrics
from hotline.schemas.events import TZ
from hotline.sinks.base import RETRACTED, Batch, Generation, OrderRow, Store, Stored, WindowRow
from hotline.sinks.fencing import Fence
from hotline.sinks.migrations import SCHEMA_VERSION
from hotline.sinks.redaction import deadletter_row

WindowKey = tuple[str, date, str, int]  # unit, day, source topic and partition: a window's table key
OrderKey = tuple[str, int]  # order id and cohort month (YYYYMM): one row per order and partition
K = TypeVar("K")
R = TypeVar("R")


class UnsupportedQuery(NotImplementedError):
    """SQL asked of the memory store: it keeps rows, it runs no statements."""


class MemoryStore:
    """Every write kept in this process; every read answered from it, as ClickHouse would answer."""

    def __init__(self, db: str = "memory") -> None:
        self.db = db
        self.schema_version: int | None = SCHEMA_VERSION
        self.batches: list[Batch] = []  # every batch written, in order (what tests inspect)
        self.events: dict[str, Stored] = {}  # the first copy of each event id
        self.recorded: dict[tuple[str, int], int] = {}  # the ledger
        self.claimed: list[Fence] = []  # every fence claimed, in order
        self.closed = False
        self._rows: dict[str, dict[str, Any]] = {}  # each event's row, by id (the first copy)
        # The stored (redacted) rows, each with the number of the write that stored it last.
        self._deadletters: dict[tuple[str, int, int], tuple[int, list[Any]]] = {}
        self._orders: dict[OrderKey, OrderRow] = {}
        self._windows: dict[WindowKey, WindowRow] = {}
        self._generations: list[Generation] = []
        self._lock = threading.RLock()  # the pipeline calls from its store thread, tests from theirs

    # -- writes -----------------------------------------------------------------------------------
    def claim(self, fence: Fence) -> None:
        """Kept, not checked: like a worker's own ClickHouse, this store has one writer."""
        with self._lock:
            self.claimed.append(fence)

    def write(self, batch: Batch, fence: Fence | None = None) -> None:
        """Idempotent, as the ReplacingMergeTrees are: the same batch again changes no answer."""
        with self._lock:
            self.batches.append(batch)
            for row in batch.events:
                if row["event_id"] not in self.events:
                    self.events[row["event_id"]] = _stored(row)
                    self._rows[row["event_id"]] = row
            for dead in batch.deadletters:
                where = (dead.source_topic, dead.source_partition, dead.source_offset)
                self._deadletters[where] = (len(self.batches), deadletter_row(dead))
            for order in batch.orders:
                _keep_latest(self._orders, (order.order_id, _month(order.cohort_day)), order, lambda o: o.version)
            for w in batch.windows:
                window: WindowKey = (w.unit_id, w.day, w.source_topic, w.source_partition)
                _keep_latest(self._windows, window, _as_stored(w), lambda s: s.version)

    def record_progress(self, offsets: dict[tuple[str, int], int], fence: Fence | None = None) -> None:
        """The ledger only moves forward: an older offset recorded late changes nothing."""
        with self._lock:
            for tp, offset in offsets.items():
                self.recorded[tp] = max(self.recorded.get(tp, offset), offset)

    def record_generation(self, kind: str, description: str) -> int:
        with self._lock:
            gen = self.generation().gen + 1
            self._generations.append(Generation(gen, kind))
            return gen

    # -- reads ------------------------------------------------------------------------------------
    def progress(self) -> dict[tuple[str, int], int]:
        with self._lock:
            return dict(self.recorded)

    def stored(self, event_ids: list[str]) -> dict[str, Stored]:
        with self._lock:
            return {i: self.events[i] for i in event_ids if i in self.events}

    def event_count(self) -> int:
        return len(self.events)

    def event_ids(self) -> Iterator[list[str]]:
        """Every stored event id, a month of event time at a time (as ClickHouse's partitions)."""
        with self._lock:
            months: dict[int, list[str]] = {}
            for event_id, row in self._rows.items():
                months.setdefault(_month(row["occurred_at"].astimezone(TZ)), []).append(event_id)
        for month in sorted(months):
            yield months[month]

    def order_states(self, order_ids: Iterable[str]) -> dict[str, OrderRow]:
        wanted = set(order_ids)
        return {o.order_id: o for o in self._live_orders() if o.order_id in wanted}

    def open_orders(self) -> list[OrderRow]:
        return [o for o in self._live_orders() if o.completed_at is None]

    def awaiting_supervision(self) -> list[OrderRow]:
        return [o for o in self._live_orders() if o.supervision_due is not None and not o.supervised]

    def _live_orders(self) -> list[OrderRow]:
        """Each order's row in its cohort month, skipping the rows retracted from months it left."""
        with self._lock:
            return [o for o in self._orders.values() if o.unit_id != RETRACTED]

    def windows(self, where: str, parameters: dict[str, Any] | None = None) -> list[WindowRow]:
        """The latest row of each window the condition selects (:func:`window_filter`)."""
        keep = window_filter(where, parameters or {})
        with self._lock:
            return [w for w in self._windows.values() if keep(w)]

    def generation(self) -> Generation:
        with self._lock:
            return self._generations[-1] if self._generations else Generation()

    def healthy(self) -> bool:
        return not self.closed

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        raise UnsupportedQuery(f"the memory store runs no SQL ({sql[:60]!r}): read a ClickHouseStore")

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        raise UnsupportedQuery(f"the memory store runs no SQL ({sql[:60]!r}): read a ClickHouseStore")

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"events": len(self.events), "deadletter": len(self._deadletters)}

    def deadletters(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest first (one write's by coordinates), as ``hotline deadletters`` lists them."""
        with self._lock:
            rows = sorted(self._deadletters.values(), key=lambda s: (-s[0], s[1][0], s[1][1], s[1][2]))
        return [{"topic": t, "partition": p, "offset": o, "error": error} for _, (t, p, o, error, *_) in rows[:limit]]

    def close(self) -> None:
        self.closed = True


_: type[Store] = MemoryStore  # mypy holds it to the whole protocol

# The conditions :meth:`MemoryStore.windows` takes: clauses joined by AND, each a column (or a
# tuple of them) compared with one parameter.
_CLAUSE = re.compile(r"^\(?\s*(?P<columns>[\w\s,]+?)\s*\)?\s+(?P<op>=|>=|<=|>|<|IN)\s+%\((?P<param>\w+)\)s$")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "IN": lambda a, b: a in {tuple(v) if isinstance(v, list) else v for v in b},
}
_WINDOW_COLUMNS = {"unit_id", "day", "source_topic", "source_partition", "version"}


def window_filter(where: str, parameters: dict[str, Any]) -> Callable[[WindowRow], bool]:
    """A window condition as a predicate: ``1`` (all), or clauses like ``day >= %(since)s``,
    ``source_topic = %(t)s`` and ``(source_topic, source_partition) IN %(tps)s`` joined by AND;
    :class:`UnsupportedQuery` for anything else (never a silently wrong answer)."""
    if where.strip() == "1":
        return lambda w: True
    tests: list[Callable[[WindowRow], bool]] = []
    for clause in re.split(r"\s+AND\s+", where.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.match(clause.strip())
        columns = [c.strip() for c in match.group("columns").split(",")] if match else []
        if not match or not columns or not set(columns) <= _WINDOW_COLUMNS or match.group("param") not in parameters:
            raise UnsupportedQuery(f"the memory store does not read windows where {clause!r}")
        tests.append(_clause(columns, _COMPARE[match.group("op").upper()], parameters[match.group("param")]))
    return lambda w: all(test(w) for test in tests)


def _clause(columns: list[str], compare: Callable[[Any, Any], bool], value: Any) -> Callable[[WindowRow], bool]:
    def test(w: WindowRow) -> bool:
        found = tuple(getattr(w, c) for c in columns)
        return compare(found[0] if len(found) == 1 else found, value)

    return test


def _stored(row: dict[str, Any]) -> Stored:
    return Stored(row["payload"], row["source_topic"], int(row["source_partition"]), int(row["source_offset"]))


def _as_stored(window: WindowRow) -> WindowRow:
    """The window as its row reads back: the catalogue's windowed counts, zeros left out."""
    counts = {m.name: window.counts[m.name] for m in metrics.WINDOWED if window.counts.get(m.name)}
    return dataclasses.replace(window, counts=counts)


def _month(day: date | datetime) -> int:
    """YYYYMM of a day or an office-time event time (the partition ClickHouse keeps it in)."""
    return day.year * 100 + day.month


def _keep_latest(rows: dict[K, R], key: K, row: R, version: Callable[[R], int]) -> None:
    """What a ReplacingMergeTree keeps of a key: the highest version, the last written among equals."""
    held = rows.get(key)
    if held is None or version(row) >= version(held):
        rows[key] = row
