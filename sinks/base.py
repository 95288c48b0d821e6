"""The store's vocabulary: the rows a batch hands to a store, what a store answers, and its errors.

Every module that stores or reads stored state speaks these types, whichever store answers
(:class:`~hotline.sinks.clickhouse.ClickHouseStore`, :class:`~hotline.sinks.remote.RemoteStore`,
:class:`~hotline.sinks.memory.MemoryStore`): the streams and reports import them from here, never
from a driver module, so the choice of store stays in one place (``hotline.sinks.store``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from hotline.schemas import metrics
from hotline.sinks.fencing import Fence

# The unit of an order's row in a cohort month it has left (an earlier dispatch arrived late):
# the newest row there, so the old one is gone, and skipped by every read of the order states.
RETRACTED = ""
# The kind of generation that says the windows and order states are still to be built from
# the events table (a migration records it; ``hotline restate`` clears it).
RESTATE_PENDING = "pending-restate"


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
    """The rows one stream batch hands to the store; written together, in one call."""

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
    """The store's operations the worker, its pages and the reports call."""

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
