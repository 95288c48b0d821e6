"""What a worker needs of its store, and the one place that chooses which store it gets.

A worker either opens ClickHouse itself (:class:`~hotline.sinks.clickhouse.ClickHouseStore`:
embedded chDB, or a server DSN), or stores through the storage owner, ``hotline store``
(:class:`~hotline.sinks.remote.RemoteStore`), when ``HOTLINE_STORE_URL`` is set. Both answer
:class:`Store`, synchronously: the worker's rules rest on a write being durable when the call
returns (the ledger moves only after it), and on lookups seeing every earlier write.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TypeGuard

from hotline.settings import Settings
from hotline.sinks.clickhouse import Batch, ClickHouseStore, Generation, OrderRow, Stored, WindowRow
from hotline.sinks.fencing import Fence


class StoreRaced(RuntimeError):
    """The store refused a write: events it holds as new were stored by another worker (another
    partition) since this worker asked (``stored``). Not an outage and not the records' fault: the
    worker looks them up again and folds the batch anew, finding them duplicates (or conflicts)."""

    def __init__(self, event_ids: list[str]) -> None:
        super().__init__(f"{len(event_ids)} event id(s) stored from another source since the lookup: {event_ids[:3]}")
        self.event_ids = event_ids


# What a storage fault says, whatever the driver wraps it in (chDB, clickhouse-connect, the
# store's HTTP answer): the disk, the file system, the process's limits or the network, never a
# record's content. Matched on the message, as ClickHouse reports errno text inside its own codes.
_INFRASTRUCTURE = (
    "operation not permitted",
    "permission denied",
    "read-only file system",
    "no space left",
    "disk quota",
    "too many open files",
    "cannot open file",
    "cannot write to file",
    "cannot create directory",
    "cannot allocate memory",
    "memory limit",
    "connection",
    "timed out",
    "timeout",
    "broken pipe",
    "input/output error",
)


def infrastructure_fault(exc: BaseException) -> bool:
    """Whether a refused write is the store's or the machine's fault rather than the rows' (then the
    batch waits and is retried; it is never dead-lettered for it)."""
    if isinstance(exc, OSError | TimeoutError | MemoryError):
        return True
    text = f"{type(exc).__name__}: {exc}".lower()
    return any(fragment in text for fragment in _INFRASTRUCTURE)


class Store(Protocol):
    """The sink's operations the worker, its pages and the reports call."""

    db: str
    schema_version: int | None

    # The writes a worker makes for its source partitions carry its fence (group generation and
    # partitions, ``hotline.sinks.fencing``): ``hotline store`` refuses a stale one with
    # ``StoreFenced``; a worker's own ClickHouse has one writer and ignores it.
    def claim(self, fence: Fence) -> None: ...

    def write(self, batch: Batch, fence: Fence | None = None) -> None: ...

    def record_progress(self, offsets: dict[tuple[str, int], int], fence: Fence | None = None) -> None: ...

    def progress(self) -> dict[tuple[str, int], int]: ...

    def stored(self, event_ids: list[str]) -> dict[str, Stored]: ...

    def event_count(self) -> int: ...

    def event_ids(self) -> Iterator[list[str]]: ...

    def order_states(self, order_ids: Iterable[str]) -> dict[str, OrderRow]: ...

    def open_orders(self) -> list[OrderRow]: ...

    def awaiting_supervision(self) -> list[OrderRow]: ...

    def windows(self, where: str, parameters: dict[str, Any] | None = None) -> list[WindowRow]: ...

    def generation(self) -> Generation: ...

    def record_generation(self, kind: str, description: str) -> int: ...

    def healthy(self) -> bool: ...

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def counts(self) -> dict[str, int]: ...

    def deadletters(self, limit: int = 100) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def open_store(settings: Settings, *, worker: bool = False) -> Store:
    """The worker's store, open and checked: through ``hotline store`` when ``store_url`` is set
    (the store process migrated it), else ClickHouse opened and migrated here. A ``worker``'s calls
    announce its ``/metrics`` to the store, which then covers it in its own."""
    if settings.store_url:
        from hotline.sinks.remote import RemoteStore

        remote = RemoteStore(settings, announce=worker)
        remote.connect()
        return remote
    sink = ClickHouseStore(settings)
    sink.migrate()
    return sink


def owned(store: Store) -> TypeGuard[ClickHouseStore]:
    """Whether this process opened ClickHouse itself (and so keeps its own filter of stored ids and
    may restate it), rather than storing through ``hotline store``."""
    return isinstance(store, ClickHouseStore)


def describe(settings: Settings) -> str:
    """Where the worker stores, for its log and errors (no credentials)."""
    if settings.store_url:
        return f"the store at {settings.store_url}"
    return f"ClickHouse at {settings.resolved_clickhouse_dsn.split('@')[-1]}"
