"""A worker's store through the storage owner (``hotline store``): the store's calls over HTTP.

Why a store process and not every worker opening ClickHouse: an embedded chDB directory opens
in one process only, and the worker's rules need more than a shared database. Each batch's
event ids are checked against *every* event stored, by any worker, before the batch is folded
(``streams/known.py``): a Bloom filter answers "certainly new" for almost all of them, and it
is exact only if it sees every write. One process that all writes go through keeps that one
filter (``hotline.sinks.server``), and is also the one process that migrates the schema and
restates a store that asks for it, before any worker writes. So N workers run against an
embedded chDB, and the same processes against a ClickHouse server (the store's
``HOTLINE_CLICKHOUSE_DSN``).

Why synchronous calls and not a topic of store rows: the worker's ledger moves only after its
batch is durable, and its identity, order-state and window lookups must see every earlier
write. A call that returns once ClickHouse holds the rows keeps those rules as they are; a
topic would make each of them asynchronous (a batch "stored" before the store has it).

Each method of :class:`~hotline.sinks.base.Store` is ``POST /v1/<method>`` with its
arguments as a JSON object (``hotline.sinks.codec``), answered ``{"result": …}``; the bearer
token is ``HOTLINE_STORE_TOKEN``. Every call says its codec version (``X-Hotline-Codec``) and
``hello`` answers the store's: a worker and a store of two wire formats refuse each other. A
refusal by ClickHouse comes back as :class:`StoreRefused` (the worker then asks
:meth:`RemoteStore.healthy` and stores record by record, as with its own store); a store that
does not answer is :class:`StoreUnavailable`, which the worker retries with backoff like any
outage. A write or progress record for partitions another worker has
claimed under a newer group generation is refused with 409, :class:`StoreFenced`
(``hotline.sinks.fencing``): the worker leaves those partitions, it does not retry. Calls are
idempotent (the tables are ReplacingMergeTrees), so a call whose answer was lost is simply made
again.

A worker's calls also name the worker and where its ``/metrics`` answers (:func:`~hotline.sinks.wire.announcement`),
so the store's ``/metrics`` can cover every worker it serves (``hotline.sinks.server``). On every call,
not on ``hello`` only: a store restarted under running workers knows them again from their next
call, and each call refreshes the time the store last heard from the worker, at no extra call.
Only a worker's store announces (``announce=True``, from ``open_store(worker=True)``): the CLI's
calls (an import, a restate) come from a process with no ``/metrics``, which would show as a
worker down.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import urllib3

from hotline.settings import Settings
from hotline.sinks.backup import Exported
from hotline.sinks.base import Batch, Generation, OrderRow, Stored, StoreRaced, WindowRow
from hotline.sinks.codec import CODEC_VERSION, CodecError, decode_as, dumps, loads, tagged_tuples
from hotline.sinks.fencing import Fence, StoreFenced
from hotline.sinks.migrations import SCHEMA_VERSION
from hotline.sinks.wire import (
    API,
    AUTHORIZATION,
    BEARER,
    CODEC_HEADER,
    FENCED,
    JSON,
    RACED,
    UNAVAILABLE,
    Op,
    announcement,
)

__all__ = ["RemoteStore", "StoreFenced", "StoreMismatch", "StoreRaced", "StoreRefused", "StoreUnavailable"]

class StoreUnavailable(ConnectionError):
    """The store did not answer (down, restarting, unreachable): an outage, retried."""


class StoreRefused(RuntimeError):
    """The store answered with an error: ClickHouse refused the call, or the call was malformed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"the store refused ({status}): {reason}")
        self.status = status
        self.reason = reason


class StoreMismatch(RuntimeError):
    """The store runs another schema version than this worker writes: one build must run everywhere."""


class RemoteStore:
    """The store's operations, answered by ``hotline store`` (see the module's docstring)."""

    def __init__(self, settings: Settings, pool: urllib3.PoolManager | None = None, *, announce: bool = False) -> None:
        if not settings.store_url:
            raise ValueError("HOTLINE_STORE_URL is not set")
        if not settings.store_token:
            raise ValueError("HOTLINE_STORE_TOKEN is not set: the store refuses calls without it")
        self.settings = settings
        self.url = settings.store_url.rstrip("/")
        self._headers = {
            AUTHORIZATION: f"{BEARER}{settings.store_token}",
            "Content-Type": JSON,
            CODEC_HEADER: str(CODEC_VERSION),
            **(announcement(settings) if announce else {}),
        }
        self._timeout = urllib3.Timeout(connect=5.0, read=settings.store_timeout_s)
        self._pool = pool or urllib3.PoolManager(num_pools=2, maxsize=4, retries=False)
        self.db = settings.clickhouse_database
        self.schema_version: int | None = None  # the store's, once :meth:`connect` has asked

    def _call(self, op: Op, timeout: urllib3.Timeout | None = None, **args: Any) -> Any:
        body = dumps(tagged_tuples(args))
        try:
            response = self._pool.request(
                "POST", f"{self.url}{API}/{op}", body=body, headers=self._headers, timeout=timeout or self._timeout
            )
        except urllib3.exceptions.HTTPError as exc:  # refused, reset, timed out, protocol errors
            raise StoreUnavailable(f"the store at {self.url} did not answer {op}: {exc}") from exc
        if response.status in UNAVAILABLE:
            raise StoreUnavailable(f"the store at {self.url} is not ready ({response.status})")
        try:
            answer = loads(response.data)
        except CodecError as exc:
            raise StoreRefused(response.status, f"unreadable answer: {exc}") from exc
        if response.status == FENCED and isinstance(answer, dict):
            try:
                fenced = StoreFenced.from_json(answer.get("fenced"))
            except (ValueError, TypeError):
                fenced = None  # not the store's fencing answer: said as a refusal below
            if fenced is not None:
                raise fenced
        if response.status == RACED and isinstance(answer, dict) and isinstance(answer.get("raced"), list):
            raise StoreRaced([str(i) for i in answer["raced"]])
        if response.status != 200 or not isinstance(answer, dict) or "result" not in answer:
            reason = answer.get("error", "no reason given") if isinstance(answer, dict) else str(answer)[:200]
            raise StoreRefused(response.status, str(reason))
        return answer["result"]

    def connect(self) -> None:
        """Ask the store which database, schema version and codec it serves; refuse another build's.

        A store of another codec version would misread this worker's calls, or this worker its
        answers (``hotline.sinks.codec``): refused here, before any write; a store of version 1
        says no codec, and refuses this worker's calls itself only if it is newer."""
        hello = self._call("hello")
        codec = hello.get("codec")
        if codec != CODEC_VERSION:
            raise StoreMismatch(
                f"the store at {self.url} speaks store codec version {codec or 1}, this worker {CODEC_VERSION}: "
                "run the same hotline release for the store and every worker"
            )
        version = int(hello["schema_version"])
        if version != SCHEMA_VERSION:
            raise StoreMismatch(
                f"the store at {self.url} serves schema version {version}, this worker writes {SCHEMA_VERSION}: "
                "run the same hotline release for the store and every worker"
            )
        self.db = str(hello["db"])
        self.schema_version = version

    # -- writes -------------------------------------------------------------------------------
    def claim(self, fence: Fence) -> None:
        """Hold ``fence``'s partitions under its generation (this worker's group); :class:`StoreFenced`
        if a newer generation already claimed one of them."""
        self._call("claim", **self._fenced(fence))

    def write(self, batch: Batch, fence: Fence | None = None) -> None:
        self._call("write", batch=batch, **self._fenced(fence))

    def record_progress(self, offsets: dict[tuple[str, int], int], fence: Fence | None = None) -> None:
        if offsets:
            self._call("record_progress", offsets=[[t, p, o] for (t, p), o in offsets.items()], **self._fenced(fence))

    def _fenced(self, fence: Fence | None) -> dict[str, Any]:
        """The fence's arguments, with the consumer group its generation counts in (none: unfenced)."""
        return {} if fence is None else {"group": self.settings.app_id, "fence": fence.as_json()}

    # -- reads --------------------------------------------------------------------------------
    def progress(self) -> dict[tuple[str, int], int]:
        return {(str(t), int(p)): int(o) for t, p, o in self._call("progress")}

    def stored(self, event_ids: list[str]) -> dict[str, Stored]:
        if not event_ids:
            return {}
        found = self._call("stored", event_ids=list(event_ids))
        return {str(i): decode_as(Stored, s) for i, s in found.items()}

    def event_count(self) -> int:
        return int(self._call("event_count"))

    def event_ids(self) -> Iterator[list[str]]:
        """Every stored event id, a month at a time (as ``ClickHouseStore.event_ids``)."""
        for month in self._call("event_months"):
            yield [str(i) for i in self._call("event_ids", month=str(month))]

    def order_states(self, order_ids: Iterable[str]) -> dict[str, OrderRow]:
        ids = list(set(order_ids))
        if not ids:
            return {}
        return {str(i): decode_as(OrderRow, r) for i, r in self._call("order_states", order_ids=ids).items()}

    def open_orders(self) -> list[OrderRow]:
        return [decode_as(OrderRow, r) for r in self._call("open_orders")]

    def awaiting_supervision(self) -> list[OrderRow]:
        return [decode_as(OrderRow, r) for r in self._call("awaiting_supervision")]

    def windows(self, where: str, parameters: dict[str, Any] | None = None) -> list[WindowRow]:
        return [decode_as(WindowRow, w) for w in self._call("windows", where=where, parameters=parameters or {})]

    def generation(self) -> Generation:
        return decode_as(Generation, self._call("generation"))

    def begin_history(self) -> None:
        """Before an import or a restate through the store: :class:`StoreRefused` (423) while any
        worker the store knows still answers. Workers read the state generation, their windows and
        open orders only when assigned, so one running through an import or a restate would go on
        counting from what it read before, and overwrite the windows rewritten under it."""
        self._call("begin_history")

    def record_generation(self, kind: str, description: str) -> int:
        """A new generation for an import through the store (the only kind a client may start)."""
        return int(self._call("record_generation", kind=kind, description=description))

    def restate(self, first: int | None, last: int | None) -> list[int]:
        """``hotline restate`` run by the store, which owns ClickHouse: the months rewritten. It takes
        as long as the months take; the store serves no other call meanwhile (its one thread)."""
        months = self._call("restate", timeout=urllib3.Timeout(connect=5.0, read=None), first=first, last=last)
        return [int(m) for m in months]

    def healthy(self) -> bool:
        """The store answers and its tables do: a failed write is then the rows', not the store's."""
        try:
            return bool(self._call("healthy"))
        except (StoreUnavailable, StoreRefused):
            return False

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._call("query", sql=sql, parameters=parameters or {})]

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self._call("query_rows", sql=sql, parameters=parameters or {}))

    def counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._call("counts").items()}

    def deadletters(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self._call("deadletters", limit=limit))

    # -- backup (hotline.sinks.backup) ---------------------------------------------------------
    def backup_partitions(self, table: str) -> list[list[str]]:
        return [[str(name), str(fingerprint)] for name, fingerprint in self._call("backup_partitions", table=table)]

    def backup_export(self, table: str, partition: str) -> Exported:
        """A table's rows as the store copies them (Native, base64 in the JSON answer); no read limit."""
        timeout = urllib3.Timeout(connect=5.0, read=None)
        return Exported.from_json(self._call("backup_export", timeout=timeout, table=table, partition=partition))

    def close(self) -> None:
        self._pool.clear()
