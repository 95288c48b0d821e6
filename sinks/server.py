"""``hotline store``: the storage owner, the one process that opens ClickHouse for every worker.

Workers in one consumer group process the stream; this process owns storage. It opens the
configured ClickHouse (embedded chDB under ``var/clickhouse``, or a server DSN: the same
code), migrates it, restates it when a migration asks for it (what a lone worker does on
start), loads the one filter of stored event ids, and then serves the store's
operations over HTTP to the workers' :class:`~hotline.sinks.remote.RemoteStore` (why this shape,
and not a topic of store rows: see that module).

* ``POST /v1/<operation>``: a store operation, JSON in and out (``hotline.sinks.codec``), with
  ``Authorization: Bearer <HOTLINE_STORE_TOKEN>`` (compared in constant time) and the codec
  version of the body in ``X-Hotline-Codec``: a call of another version (a worker of another
  release) is refused, 400, saying so. The store does
  not start without a token. The token is a credential of the store: whoever holds it can write
  rows and run read queries, as a ClickHouse user could, so give it to workers only and keep
  ``HOTLINE_STORE_HOST`` on a private interface. The query operations take one ``SELECT`` (or
  ``WITH``) statement: no second statement, no ``INTO OUTFILE``.
* Fencing (``hotline.sinks.fencing``): ``claim`` records, per consumer group and source
  partition, the highest group generation that claimed it (in ClickHouse before it answers,
  so a restarted store keeps them); a ``write`` or ``record_progress`` carrying an older
  generation for any of its partitions, or an older claim, is answered 409 before ClickHouse
  is touched: a worker whose partitions were taken over cannot write over their new owner.
* ``GET /metrics``: Prometheus, open like the worker's: calls and their latency by operation,
  refusals, ids in the filter; and every worker's own ``/metrics``, fetched on the request, each
  sample labelled ``worker="<host:port>"``, with ``hotline_worker_up`` and
  ``hotline_worker_last_call_seconds`` per worker: one scrape target for the whole group
  (:class:`Workers`). A worker is known from its calls (each names its ``/metrics``,
  ``hotline.sinks.wire.announcement``), so only addresses announced with the token are fetched.

Calls run one at a time on one thread (chDB is one engine per process, and the store serialises
its calls anyway). The identity rule across workers: ``stored`` filters the ids through the
store's filter, which every ``write`` updates, so a worker sees the events any worker stored
before its lookup; and since calls run one at a time, ``write`` checks the batch's events
against what is stored first: one stored from another source since the writer's lookup (two
workers folding the same new event from two partitions at once) refuses the write (412,
``StoreRaced``), and the writer folds the batch again, finding it a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from hotline.connections import IDLE_TIMEOUT_S, CappedRunner, ConnectionCap
from hotline.settings import Settings
from hotline.sinks import backup
from hotline.sinks.base import Batch, Generation, StoreRaced
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.codec import CODEC_VERSION, CodecError, decode_as, dumps, loads
from hotline.sinks.fencing import Claims, Fence, ImplausibleClaim, StoreFenced
from hotline.sinks.tables import TABLES
from hotline.sinks.wire import (
    API,
    AUTHORIZATION,
    BEARER,
    CODEC_HEADER,
    FENCED,
    JSON,
    RACED,
    WORKER_HEADER,
    WORKERS_RUNNING,
    announced,
)
from hotline.streams import history
from hotline.streams.access import token_scope
from hotline.streams.deadlines import limits_of
from hotline.streams.known import KnownIds
from hotline.streams.processing import row_source, source_of

log = logging.getLogger(__name__)

MAX_BODY = 512 << 20  # a batch of 5,000 events is a few MB of JSON; an import's chunk more
MAX_SCRAPE = 8 << 20  # a worker's /metrics is a few kB: more is not a worker's page
_READ = re.compile(r"^\s*(SELECT|WITH)\b", re.IGNORECASE)
_OUTFILE = re.compile(r"\bINTO\s+OUTFILE\b", re.IGNORECASE)
_SETTINGS = re.compile(r"\bSETTINGS\b", re.IGNORECASE)
# What follows FROM or JOIN: a name, and "(" if it is a table function (a subquery's "(" comes first).
_SOURCE = re.compile(r"\b(?:(ARRAY)\s+)?(?:FROM|JOIN)\s+([`\"\w.{}]+)\s*(\()?", re.IGNORECASE)
_CTE = re.compile(r"\b(\w+)\s+AS\s*\(", re.IGNORECASE)
_SERVED = {"system.parts"}  # which months a table holds (partitions), read by the reports
_TABLES = {*TABLES, "schema_version"}


class BadCall(ValueError):
    """The call is malformed (arguments, a statement that is not a read): 400, not the store's failure."""


def read_only(sql: str) -> str:
    """``sql`` if it is a single read statement over the project's tables; :class:`BadCall` otherwise.

    A token holder must not read the host through the store: table functions (``file()``,
    ``url()``, ``remote()`` …) would read files, the environment (``/proc/self/environ`` holds the
    tokens) or block the store's one thread on a dead address, and ``system`` tables other than
    the partition list describe the server. So every ``FROM`` and ``JOIN`` must name a table of
    the project's database (``{db}.<table>``) or ``system.parts``, and ``SETTINGS`` are not taken
    from the caller (the store's own per-query settings apply)."""
    if not _READ.match(sql) or ";" in sql or _OUTFILE.search(sql) or _SETTINGS.search(sql):
        raise BadCall("only a single SELECT (or WITH … SELECT) statement, without SETTINGS, is served")
    defined = {name.lower() for name in _CTE.findall(sql)}  # WITH name AS (…): the statement's own
    for source in _SOURCE.finditer(sql):
        array, name, call = source.group(1), source.group(2).replace("`", "").replace('"', ""), source.group(3)
        if array:
            continue  # ARRAY JOIN unfolds a column of a table already named
        if call:
            raise BadCall(f"table functions are not served ({name}(…))")
        if name.lower() in _SERVED or name.lower() in defined:
            continue
        if not (name.startswith("{db}.") and name[5:] in _TABLES):
            raise BadCall(f"only the project's tables are served, not {name!r}")
    return sql


def _arg(args: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = args.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadCall(f"argument {name!r} missing or of the wrong type")
    return value


def _params(args: dict[str, Any]) -> dict[str, Any] | None:
    params = args.get("parameters") or None
    if params is not None and not isinstance(params, dict):
        raise BadCall("argument 'parameters' must be an object")
    return params


class StoreMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "hotline_store_calls",
            "Store calls answered, by operation and outcome.",
            ["op", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hotline_store_call_seconds",
            "Time to answer one store call, by operation.",
            ["op"],
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.known = Gauge("hotline_store_known_ids", "Event ids added to the store's filter.", registry=self.registry)
        self.up = Gauge("hotline_store_clickhouse_up", "1 while ClickHouse answers the store.", registry=self.registry)


@dataclass
class _Heard:
    url: str  # the worker's /metrics
    called: float  # the clock at its last call
    seen: float  # at its last call or answered scrape: what forgetting counts from
    up: bool = True  # its last scrape answered (to log the changes only)


class Scrape(NamedTuple):
    """One worker's part of a scrape of the store."""

    name: str
    families: list[Metric] | None  # None: it did not answer in time, or not with Prometheus text
    since_call_s: float


class Workers:
    """The workers the store has heard from, and one concurrent scrape of their ``/metrics``.

    A worker is known from its calls, which reach here only with the store's token. An answered
    scrape keeps it known as a call does: a worker with nothing to store (a quiet night) makes no
    calls but is not gone, and ``hotline_worker_last_call_seconds`` says how idle it is. One that
    neither calls nor answers for ``store_forget_worker_s`` was stopped or moved: forgotten."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.forget_after_s = settings.store_forget_worker_s
        self.timeout_s = settings.store_scrape_timeout_s
        self.clock = clock
        self._known: dict[str, _Heard] = {}
        self._refused: set[str] = set()

    def heard(self, headers: Mapping[str, str]) -> None:
        """An authorized call: remember the worker it announces (a call announcing none is still served)."""
        worker = announced(headers)
        if worker is None:
            self._refuse(headers.get(WORKER_HEADER))
            return
        now = self.clock()
        previous = self._known.get(worker.name)
        if previous is None or previous.url != worker.url:
            log.info("worker %s: its metrics are at %s", worker.name, worker.url)
        self._known[worker.name] = _Heard(worker.url, now, now, previous.up if previous else True)

    def _refuse(self, name: str | None) -> None:
        """Say once per name (escaped, cut short: it is the caller's input) that its address is not taken."""
        if name is None or name in self._refused or len(self._refused) >= 100:
            return
        self._refused.add(name)
        log.warning("a worker announced %r with no plain http(s)://host:port/metrics address: not scraped", name[:80])

    def known(self) -> dict[str, _Heard]:
        """The workers not forgotten, by name (forgetting the others here)."""
        now = self.clock()
        for name in [n for n, h in self._known.items() if now - h.seen > self.forget_after_s]:
            log.info("worker %s forgotten: no call and no answer for %.0f s", name, now - self._known[name].seen)
            del self._known[name]
        return dict(self._known)

    async def scrape(self) -> list[Scrape]:
        """Every known worker's families, fetched concurrently; one that fails is down, never an error."""
        known = self.known()
        if not known:
            return []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as session:
            answers = await asyncio.gather(*(_families_at(session, h.url) for h in known.values()))
        now = self.clock()
        scrapes = []
        for (name, then), (families, failure) in zip(known.items(), answers, strict=True):
            heard = self._known.get(name, then)  # a call during the scrape may have replaced it
            if heard.up != (families is not None):
                log.warning("worker %s: its metrics %s", name, "answer again" if families else f"fail ({failure})")
            heard.up = families is not None
            if families is not None:
                heard.seen = max(heard.seen, now)
            scrapes.append(Scrape(name, families, max(0.0, now - heard.called)))
        return scrapes


async def _families_at(session: aiohttp.ClientSession, url: str) -> tuple[list[Metric] | None, str]:
    """The metric families a worker's ``/metrics`` answers, or None and why not (a type name: no input)."""
    try:
        async with session.get(url, allow_redirects=False) as response:
            if response.status != 200:
                return None, f"HTTP {response.status}"
            body = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > MAX_SCRAPE:
                    return None, "an answer over MAX_SCRAPE"
        return list(text_string_to_metric_families(body.decode("utf-8"))), ""
    except Exception as exc:  # down, slow, or not Prometheus text: the worker is down, the scrape goes on
        return None, type(exc).__name__


def merged(own: Iterable[Metric], scrapes: Iterable[Scrape]) -> list[Metric]:
    """The store's families and every worker's, each worker's samples labelled ``worker``; one
    family per name, so each ``# HELP`` and ``# TYPE`` appears once whatever the number of workers."""
    scrapes = list(scrapes)
    families = {family.name: family for family in own}
    for scrape in scrapes:
        for family in scrape.families or ():
            into = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            if into.type == family.type:  # a name typed otherwise elsewhere (another build): the first kept
                into.samples += [s._replace(labels={**s.labels, "worker": scrape.name}) for s in family.samples]
    up = GaugeMetricFamily("hotline_worker_up", "1 if the worker's /metrics answered this scrape.", labels=["worker"])
    last = GaugeMetricFamily(
        "hotline_worker_last_call_seconds", "Seconds since the worker last called the store.", labels=["worker"]
    )
    for scrape in scrapes:
        up.add_metric([scrape.name], 1.0 if scrape.families is not None else 0.0)
        last.add_metric([scrape.name], scrape.since_call_s)
    return [*families.values(), up, last]


class _Families(Collector):
    """Families already collected, for ``generate_latest``."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


class StoreServer:
    """The store, the id filter and the operations workers call; :meth:`open` before :meth:`app`."""

    def __init__(self, settings: Settings, store: ClickHouseStore | None = None) -> None:
        if not settings.store_token:
            raise ValueError("set HOTLINE_STORE_TOKEN: the store serves writes and queries to whoever presents it")
        self.settings = settings
        self._store = store
        self.known = KnownIds()
        self.claims = Claims(lease_s=settings.store_claim_lease_s)  # loaded from ClickHouse when the store opens
        self.metrics = StoreMetrics()
        self.workers = Workers(settings)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._tokens = {settings.store_token: "store"}
        self.ops: dict[str, Callable[[dict[str, Any]], Any]] = {
            "hello": self._hello,
            "claim": self._claim,
            "write": self._write,
            "record_progress": self._record_progress,
            "progress": lambda a: [[t, p, o] for (t, p), o in sorted(self.store.progress().items())],
            "stored": self._stored,
            "event_count": lambda a: self.store.event_count(),
            "event_months": lambda a: history.event_months(self.store),
            "event_ids": self._event_ids,
            "order_states": lambda a: self.store.order_states(_strings(a, "order_ids")),
            "open_orders": lambda a: self.store.open_orders(),
            "awaiting_supervision": lambda a: self.store.awaiting_supervision(),
            "windows": self._windows,
            "generation": lambda a: self.store.generation(),
            "healthy": lambda a: self.store.healthy(),
            "query": lambda a: [list(r) for r in self.store.query(read_only(_arg(a, "sql", str)), _params(a))],
            "query_rows": lambda a: self.store.query_rows(read_only(_arg(a, "sql", str)), _params(a)),
            "counts": lambda a: self.store.counts(),
            "deadletters": lambda a: self.store.deadletters(int(_arg(a, "limit", int))),
            "record_generation": self._record_generation,
            "restate": self._restate,
            # hotline backup (hotline.sinks.backup): each table copied between two calls
            "backup_partitions": lambda a: backup.partitions(self.store, _arg(a, "table", str)),
            "backup_export": lambda a: backup.export(
                self.store, _arg(a, "table", str), _arg(a, "partition", str)
            ).as_json(),
        }

    @property
    def store(self) -> ClickHouseStore:
        assert self._store is not None, "the store is not open"
        return self._store

    def open(self) -> Generation:
        """Open and migrate ClickHouse, restate it if a migration asks, and load the id filter."""
        if self._store is None:
            self._store = ClickHouseStore(self.settings)
        self.store.migrate()
        generation = history.restate_if_pending(self.store, limits_of(self.settings))
        self.known = KnownIds.load(self.store)
        self.claims = Claims(self.store.claims(), self.settings.store_claim_lease_s)
        self.metrics.known.set(self.store.event_count())
        self.metrics.up.set(1)
        return generation

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> StoreServer:
        """Opened for a ``with`` block and closed after it, also on an error: chDB holds one
        directory per process, so a store left open would refuse every other one."""
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operations (on the store's one thread) ---------------------------------------------------
    def _hello(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"db": self.store.db, "schema_version": self.store.schema_version, "codec": CODEC_VERSION}

    def _claim(self, args: dict[str, Any]) -> None:
        group, fence = _fence(args)
        if fence is None:
            raise BadCall("a claim needs a group and a fence")
        try:
            self.claims.claim(group, fence, lambda tps: self.store.record_claims(group, fence.generation, tps))
        except ImplausibleClaim as exc:
            raise BadCall(str(exc)) from None

    def _check_fence(self, op: str, args: dict[str, Any]) -> None:
        """Refuse a stale worker's call before anything is written (calls without a fence pass)."""
        group, fence = _fence(args)
        if fence is not None:
            self.claims.check(op, group, fence)

    def _write(self, args: dict[str, Any]) -> None:
        self._check_fence("write", args)
        batch = decode_as(Batch, args.get("batch"))
        raced = self._raced(batch)
        if raced:
            raise StoreRaced(raced)
        self.store.write(batch)
        ids = [row["event_id"] for row in batch.events]
        self.known.add(ids)
        self.metrics.known.inc(len(ids))

    def _raced(self, batch: Batch) -> list[str]:
        """The batch's events stored from another source since its writer looked them up.

        A worker folds a batch on what ``stored`` told it; two workers folding the same new id
        from two partitions (a re-send under another key) would both find it new, and count it
        twice. Calls run one at a time here, so this check and the write are one step: the
        second writer is refused (412) and folds again, finding the event a duplicate. A batch
        written again from the same source (a retry, a replay) is not a race."""
        rows = {row["event_id"]: row for row in batch.events}
        found = self.store.stored(self.known.maybe(rows))
        return sorted(event_id for event_id, s in found.items() if source_of(s) != row_source(rows[event_id]))

    def _record_progress(self, args: dict[str, Any]) -> None:
        offsets: dict[tuple[str, int], int] = {}
        for entry in _arg(args, "offsets", list):
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
                raise BadCall("offsets are [topic, partition, offset] triples")
            offsets[(entry[0], int(entry[1]))] = int(entry[2])
        self._check_fence("record_progress", args)
        self.store.record_progress(offsets)

    def _stored(self, args: dict[str, Any]) -> dict[str, Any]:
        """Every worker asks for all of its batch's ids; the store's filter keeps those worth a lookup."""
        return self.store.stored(self.known.maybe(_strings(args, "event_ids")))

    def _event_ids(self, args: dict[str, Any]) -> list[str]:
        month = _arg(args, "month", str)
        where = "toYYYYMM(occurred_at) = %(m)s" if month.isdigit() else "1"
        rows = self.store.query(f"SELECT event_id FROM {{db}}.events WHERE {where}", {"m": int(month or 0)})
        return [str(r[0]) for r in rows]

    def _record_generation(self, args: dict[str, Any]) -> int:
        """An import's generation: the one kind a client starts (a restate is the store's own)."""
        kind = _arg(args, "kind", str)
        if kind != history.IMPORT:
            raise BadCall(f"a client records only {history.IMPORT!r} generations, not {kind!r}")
        return self.store.record_generation(kind, _arg(args, "description", str))

    def _restate(self, args: dict[str, Any]) -> list[int]:
        """``hotline restate`` here, where ClickHouse is open; the id filter stays valid (events are untouched)."""
        first, last = args.get("first"), args.get("last")
        if not all(m is None or isinstance(m, int) for m in (first, last)):
            raise BadCall("first and last are months as YYYYMM numbers, or null")
        return history.restate(self.store, limits_of(self.settings), first, last)

    def _windows(self, args: dict[str, Any]) -> Any:
        where = _arg(args, "where", str)
        if ";" in where:
            raise BadCall("a windows condition is one expression")
        return self.store.windows(where, _params(args))

    # -- HTTP -----------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(f"{API}/{{op}}", self._handle)
        app.router.add_get("/metrics", self._metrics)
        return app

    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get(AUTHORIZATION, "")
        if not auth.startswith(BEARER):
            return False
        return token_scope(self._tokens, auth.removeprefix(BEARER).strip()) is not None

    async def _handle(self, request: web.Request) -> web.Response:
        op = request.match_info["op"]
        if not self._authorized(request):
            return _answer({"error": f"a valid store token is required ({AUTHORIZATION}: {BEARER}…)"}, 401)
        codec = request.headers.get(CODEC_HEADER)
        if codec != str(CODEC_VERSION):  # another build's wire format: refused before its body is read
            self.metrics.calls.labels(op, "bad").inc()
            return _answer({"error": _codec_mismatch(codec)}, 400)
        self.workers.heard(request.headers)
        if op == "begin_history":  # asks the workers, on this loop: not an operation on ClickHouse
            return await self._begin_history()
        call = self.ops.get(op)
        if call is None:
            return _answer({"error": f"no operation {op!r}"}, 404)
        started = time.perf_counter()
        try:
            args = loads(await request.read())
            if not isinstance(args, dict):
                raise BadCall("the arguments are a JSON object")
            result = await asyncio.get_running_loop().run_in_executor(self._executor, call, args)
        except (BadCall, CodecError) as exc:
            self.metrics.calls.labels(op, "bad").inc()
            return _answer({"error": str(exc)}, 400)
        except StoreRaced as raced:  # the writer folds again on what is stored now: nothing written
            self.metrics.calls.labels(op, "raced").inc()
            log.info("write refused: %s", raced)
            return _answer({"error": str(raced), "raced": raced.event_ids}, RACED)
        except StoreFenced as fenced:  # a stale worker: said to it, counted and logged, nothing written
            self.metrics.calls.labels(op, "fenced").inc()
            log.warning("store call refused, fenced off: %s", fenced)
            return _answer({"error": str(fenced), "fenced": fenced.as_json()}, FENCED)
        except Exception as exc:  # ClickHouse refused or failed: the worker decides (its healthy() asks)
            self.metrics.calls.labels(op, "refused").inc()
            log.warning("store call %s refused: %s: %s", op, type(exc).__name__, exc)
            return _answer({"error": f"{type(exc).__name__}: {exc}"}, 500)
        self.metrics.calls.labels(op, "ok").inc()
        self.metrics.latency.labels(op).observe(time.perf_counter() - started)
        if op == "healthy":
            self.metrics.up.set(1 if result else 0)
        return _answer({"result": result}, 200)

    async def _begin_history(self) -> web.Response:
        """Refuse an import or a restate while a worker answers (``RemoteStore.begin_history`` says why).

        Running means its ``/metrics`` answers now: a stopped worker stays known for a while but
        no longer answers, so stopping the workers is all it takes."""
        running = sorted(scrape.name for scrape in await self.workers.scrape() if scrape.families is not None)
        if running:
            self.metrics.calls.labels("begin_history", "refused").inc()
            return _answer({"error": workers_running(running)}, WORKERS_RUNNING)
        self.metrics.calls.labels("begin_history", "ok").inc()
        return _answer({"result": None}, 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        """The store's metrics and every known worker's (see :class:`Workers`)."""
        everything = CollectorRegistry(auto_describe=False)
        everything.register(_Families(merged(self.metrics.registry.collect(), await self.workers.scrape())))
        return web.Response(body=generate_latest(everything), headers={"Content-Type": CONTENT_TYPE_LATEST})


def workers_running(names: list[str]) -> str:
    return (
        f"{len(names)} worker(s) still running ({', '.join(names)}): stop them first, then run this again "
        "(a worker reads the state generation, its windows and open orders only when assigned, and "
        "would overwrite what an import or a restate writes under it)"
    )


def _fence(args: dict[str, Any]) -> tuple[str, Fence | None]:
    """The call's consumer group and fence (``hotline.sinks.fencing``); no fence: an unfenced call."""
    if args.get("fence") is None:
        return "", None
    group = _arg(args, "group", str)
    try:
        return group, Fence.from_json(args["fence"])
    except ValueError as exc:
        raise BadCall(str(exc)) from exc


def _codec_mismatch(said: str | None) -> str:
    """Why a call of another wire format is refused, for the worker's log (its header cut short: input)."""
    return (
        f"this store reads store codec version {CODEC_VERSION}, the call is version {(said or '1')[:16]!r} "
        f"({CODEC_HEADER}): run the same hotline release for the store and every worker"
    )


def _strings(args: dict[str, Any], name: str) -> list[str]:
    values = _arg(args, name, list)
    if not all(isinstance(v, str) for v in values):
        raise BadCall(f"argument {name!r} is a list of strings")
    return values


def _answer(body: dict[str, Any], status: int) -> web.Response:
    try:
        data = dumps(body)
    except TypeError as exc:  # a value the codec does not write: the store's bug, said as such
        status, data = 500, dumps({"error": f"unencodable answer: {exc}"})
    return web.Response(body=data, status=status, content_type=JSON)


async def serve(service: StoreServer, host: str, port: int) -> web.AppRunner:
    """Listen on ``host:port``; the caller cleans the runner up."""
    # An idle keep-alive connection is closed after 15 s (aiohttp's default is 75 s): a thousand
    # idle clients must not hold the store's descriptors.
    cap = ConnectionCap(service.settings.max_connections_per_client)
    runner = CappedRunner(service.app(), cap, access_log=None, keepalive_timeout=IDLE_TIMEOUT_S)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def run(settings: Settings) -> None:
    """``hotline store``: open the store, then answer workers until SIGTERM or SIGINT."""
    service = StoreServer(settings)
    generation = service.open()
    log.info(
        "store open: %s (schema version %s, generation %d); listening on %s",
        settings.resolved_clickhouse_dsn.split("@")[-1],
        service.store.schema_version,
        generation.gen,
        settings.store_listen_url,
    )

    async def main() -> None:
        runner = await serve(service, settings.store_host, settings.store_port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    finally:
        service.close()
        log.info("store closed")
