"""Alerts delivered to people: one queue per destination, retried with backoff for as long as the
alert matters, never past a destination's rate limit, and every step written to a delivery log.

Why this shape:

* **One queue and one task per destination** (a unit's robot, its SMS gateway): a receiver that is
  down delays its own alerts only.
* **Rate limit as the robots count it**: at most ``per_minute`` messages in any 60 s (a sliding
  window, not a token bucket, which would allow twice that across a minute boundary). When the
  queue holds more alerts than the window still allows messages, the next message is a *digest*
  listing several alerts (up to the channel's :func:`~hotline.streams.channels.per_message`), so a
  burst is delivered in fewer messages instead of being refused or dropped.
* **Retried for as long as the alert matters**: a refused or failed message is tried again after
  a backoff (doubling up to ``max_retry_s``) until it is taken, or until the alert is older than
  ``ttl_s``; only then is it written off, as ``expired`` with the last error, and counted.
* **The delivery log is the durable record** (:class:`DeliveryLog`, the ``alert_deliveries``
  table): a row per destination and alert id, ``pending`` when the alert is queued (the notifier
  commits its Kafka offsets only after those rows are written), then ``delivered`` or ``expired``.
  At start the engine resumes every pending row and skips every alert id a destination already
  has a row for. Hence at least once per destination; a repeat happens only when the process died
  between a receiver taking a message and its ``delivered`` row being written, is of the same
  alert id, and is counted: every alert delivered from a pending row resumed at start may be one
  (``hotline_notify_possible_repeats``, an upper bound: whether the receiver had it before the
  crash is what the lost row would have said).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hotline.streams.channels import Destination, Link, Request, accepted, build, per_message

log = logging.getLogger(__name__)

PENDING, DELIVERED, EXPIRED = "pending", "delivered", "expired"
WINDOW_S = 60.0  # the robots' rate limits are per minute
FORGET_EVERY = 10_000  # alerts offered between two prunings of the ids known past the TTL


@dataclass(frozen=True)
class LogRow:
    """One destination's record of one alert: the delivery log's row (latest ``version`` wins)."""

    destination: str
    alert_id: str
    unit_id: str
    channel: str
    status: str
    attempts: int
    first_try: float | None
    last_try: float | None
    delivered_at: float | None
    last_error: str
    alert: str  # the alert's JSON (alerts carry no personal data): what a resumed entry is sent from
    version: int


class DeliveryLog(Protocol):
    """Where delivery rows are kept: ClickHouse in the notifier, a list in tests."""

    def record(self, rows: list[LogRow]) -> None: ...

    def load(self, since_version: int) -> list[LogRow]:
        """The latest row of each destination and alert, of those written at ``since_version`` or later."""
        ...


@dataclass
class MemoryLog:
    """A delivery log held in memory (tests; what :class:`ClickHouseLog` keeps in a table)."""

    rows: list[LogRow] = field(default_factory=list)

    def record(self, rows: list[LogRow]) -> None:
        self.rows.extend(rows)

    def load(self, since_version: int) -> list[LogRow]:
        latest: dict[tuple[str, str], LogRow] = {}
        for row in self.rows:
            key = (row.destination, row.alert_id)
            if key not in latest or latest[key].version <= row.version:
                latest[key] = row
        return [row for row in latest.values() if row.version >= since_version]


_last_version = [0]


def next_version() -> int:
    """Strictly increasing within the process and, being time based (µs), across restarts: the
    latest row wins (a UInt64 for years to come)."""
    _last_version[0] = max(_last_version[0] + 1, time.time_ns() // 1000)
    return _last_version[0]


class DeliveryMetrics:
    """The notifier's Prometheus metrics (its own registry, served at its ``/metrics``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "hotline_notify_messages",
            "Messages sent to destinations, by channel and result (taken, or refused: an answer that was no, or none).",
            ["channel", "result"],
            registry=self.registry,
        )
        self.delivered = Counter(
            "hotline_notify_alerts_delivered", "Alerts delivered, by channel.", ["channel"], registry=self.registry
        )
        self.digests = Counter(
            "hotline_notify_digests",
            "Messages that listed more than one alert (the rate limit would have been passed), by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.skipped = Counter(
            "hotline_notify_already_known",
            "Alerts read again from the topic for a destination that already has them: not sent again, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.possible_repeats = Counter(
            "hotline_notify_possible_repeats",
            "Alerts delivered from a pending row resumed at start: the receiver may have taken them before the "
            "restart (a repeat of the same alert id); an upper bound on repeats, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.expired = Counter(
            "hotline_notify_expired",
            "Alerts written off undelivered once older than HOTLINE_NOTIFY_TTL_S, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.pending = Gauge(
            "hotline_notify_pending",
            "Alerts queued and not yet delivered, by destination.",
            ["destination"],
            registry=self.registry,
        )
        self.log_up = Gauge(
            "hotline_notify_log_up",
            "1 while the delivery log takes writes; 0 while it is unavailable and writes are retried (offsets are "
            "not committed meanwhile: the notifier holds back, it loses nothing).",
            registry=self.registry,
        )
        self.log_up.set(1)
        self.latency = Histogram(
            "hotline_notify_delivery_seconds",
            "From an alert's emitted_at to the receiver taking it.",
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
        )


class Window:
    """At most ``per_minute`` sends in any 60 s (sliding), as the robots count."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = max(1, per_minute)
        self.sends: deque[float] = deque()

    def available(self, now: float) -> int:
        while self.sends and self.sends[0] <= now - WINDOW_S:
            self.sends.popleft()
        return self.per_minute - len(self.sends)

    def wait_s(self, now: float) -> float:
        """How long until one more send is allowed."""
        if self.available(now) > 0:
            return 0.0
        return self.sends[0] + WINDOW_S - now

    def take(self, now: float) -> None:
        self.sends.append(now)


@dataclass
class Entry:
    """One alert queued for one destination."""

    alert: dict[str, Any]
    emitted: float
    attempts: int = 0
    first_try: float | None = None
    last_try: float | None = None
    last_error: str = ""
    resumed: bool = False  # read back from a pending row at start: perhaps taken before the crash

    @property
    def alert_id(self) -> str:
        return str(self.alert["alert_id"])


def digest_size(queued: int, available: int, per_message: int) -> int:
    """Alerts in the next message: one while the window allows a message per alert, else enough per
    message for the queue to fit in the messages the window still allows (at most ``per_message``)."""
    if queued <= available:
        return 1
    return max(1, min(per_message, math.ceil(queued / max(1, available))))


def emitted_at(alert: Mapping[str, Any]) -> float:
    """When an alert was emitted; for a 签收's row (the log keeps those too), when it was made."""
    return datetime.fromisoformat(str(alert.get("emitted_at") or alert["occurred_at"])).timestamp()


Post = Callable[[Request], Awaitable[tuple[int, bytes]]]
Sleep = Callable[[float], Awaitable[None]]


class Outbox:
    """A destination's queue, window and backoff: the one task that talks to it."""

    def __init__(self, dest: Destination, engine: Deliveries) -> None:
        self.dest = dest
        self.engine = engine
        self.queue: dict[str, Entry] = {}
        self.window = Window(dest.per_minute)
        self.retry_at = 0.0
        self.backoff = engine.first_retry_s
        self.wakeup = asyncio.Event()

    def put(self, entry: Entry) -> None:
        self.queue[entry.alert_id] = entry
        self.wakeup.set()

    async def run(self) -> None:
        while True:
            if not self.queue:
                self.wakeup.clear()
                await self.wakeup.wait()
            await self.step()

    async def step(self) -> None:
        """Expire what no longer matters, wait for the window or the backoff, then send one message."""
        engine = self.engine
        now = engine.clock()
        await self._expire(now)
        if not self.queue:
            return
        wait = max(self.retry_at - now, self.window.wait_s(now))
        if wait > 0:
            await engine.sleep(wait)
            return
        most = per_message(self.dest.channel, linked=engine.link is not None)
        size = digest_size(len(self.queue), self.window.available(now), most)
        batch = sorted(self.queue.values(), key=lambda e: (e.emitted, e.alert_id))[:size]
        self.window.take(now)
        ok, reason = await engine.send(self.dest, [e.alert for e in batch])
        await self._settle(batch, ok, reason, now)

    async def _settle(self, batch: list[Entry], ok: bool, reason: str, at: float) -> None:
        engine, channel = self.engine, self.dest.channel
        done = engine.clock()
        for entry in batch:
            entry.attempts += 1
            entry.first_try = entry.first_try if entry.first_try is not None else at
            entry.last_try = at
            entry.last_error = reason or entry.last_error  # a delivered row keeps the last failure
        engine.metrics.messages.labels(channel, "taken" if ok else "refused").inc()
        if not ok:
            self.retry_at = done + self.backoff
            log.warning(
                "%s: %d alert(s) not taken (%s); again in %.0fs", self.dest.name, len(batch), reason, self.backoff
            )
            self.backoff = min(self.backoff * 2, engine.max_retry_s)
            engine.note([engine.row(self.dest, e, PENDING) for e in batch])
            return
        self.backoff, self.retry_at = engine.first_retry_s, 0.0
        if len(batch) > 1:
            engine.metrics.digests.labels(channel).inc()
        for entry in batch:
            self.queue.pop(entry.alert_id, None)
            engine.metrics.delivered.labels(channel).inc()
            engine.metrics.latency.observe(max(0.0, done - entry.emitted))
            if entry.resumed:
                engine.metrics.possible_repeats.labels(channel).inc()
        engine.metrics.pending.labels(self.dest.name).set(len(self.queue))
        engine.note([engine.row(self.dest, e, DELIVERED, delivered_at=done) for e in batch])

    async def _expire(self, now: float) -> None:
        gone = [e for e in self.queue.values() if now - e.emitted > self.engine.ttl_s]
        if not gone:
            return
        for entry in gone:
            self.queue.pop(entry.alert_id)
            self.engine.metrics.expired.labels(self.dest.channel).inc()
            log.error("%s: alert %s written off after %d attempts", self.dest.name, entry.alert_id, entry.attempts)
        self.engine.metrics.pending.labels(self.dest.name).set(len(self.queue))
        self.engine.note([self.engine.row(self.dest, e, EXPIRED) for e in gone])


class Deliveries:
    """Every destination's outbox, fed with alerts and resumed from the delivery log."""

    def __init__(
        self,
        destinations: Iterable[Destination],
        delivery_log: DeliveryLog,
        post: Post,
        *,
        ttl_s: float = 86_400.0,
        first_retry_s: float = 1.0,
        max_retry_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        metrics: DeliveryMetrics | None = None,
        link: Link | None = None,
    ) -> None:
        self.outboxes: dict[str, Outbox] = {}
        self.link = link  # each alert's signed 签收 link, when acknowledgements are on
        self.log = delivery_log
        self.post = post
        self.ttl_s = ttl_s
        self.first_retry_s = first_retry_s
        self.max_retry_s = max_retry_s
        self.clock = clock
        self.sleep = sleep
        self.metrics = metrics or DeliveryMetrics()
        # (destination, alert id) with a row in the log -> the alert's emitted_at; forgotten past the TTL
        self.known: dict[tuple[str, str], float] = {}
        self.offered = 0
        self._rows: list[LogRow] = []  # noted by the destinations, for the writer
        self._rows_ready = asyncio.Event()
        self._writing = False
        for dest in destinations:
            self.outboxes[dest.name] = Outbox(dest, self)

    def resume(self) -> int:
        """Read the log: every alert id a destination has is known; pending ones are queued again.

        Only rows written within the TTL (their version is their time in µs): an older alert is no
        longer sent whatever its rows say, so the start-up read stays the size of one TTL."""
        resumed = 0
        for row in self.log.load(int((self.clock() - self.ttl_s) * 1_000_000)):
            alert = json.loads(row.alert)
            self.known[(row.destination, row.alert_id)] = emitted_at(alert)
            outbox = self.outboxes.get(row.destination)
            if row.status != PENDING or outbox is None:
                continue
            outbox.put(Entry(alert, emitted_at(alert), row.attempts, row.first_try, row.last_try, row.last_error, True))
            resumed += 1
        for outbox in self.outboxes.values():
            self.metrics.pending.labels(outbox.dest.name).set(len(outbox.queue))
        return resumed

    def offer(self, alert: Mapping[str, Any]) -> list[LogRow]:
        """Queue an alert for each destination of its unit and kind that does not have it yet; return
        the ``pending`` rows to record before the alert's offset is committed.

        An alert already older than the TTL when read (a new consumer group reading the topic's
        history) is not sent: it is recorded ``expired`` at once, so history never floods a unit."""
        rows: list[LogRow] = []
        now, emitted = self.clock(), emitted_at(alert)
        self._forget(now)
        stale = now - emitted > self.ttl_s
        for outbox in self.outboxes.values():
            dest = outbox.dest
            if not dest.receives(alert):
                continue
            key = (dest.name, str(alert["alert_id"]))
            if key in self.known:
                self.metrics.skipped.labels(dest.channel).inc()
                continue
            entry = Entry(dict(alert), emitted, last_error="older than the TTL when read" if stale else "")
            if stale:
                self.metrics.expired.labels(dest.channel).inc()
                rows.append(self.row(dest, entry, EXPIRED))
                continue
            self.known[key] = emitted
            rows.append(self.row(dest, entry, PENDING))
            outbox.put(entry)
            self.metrics.pending.labels(dest.name).set(len(outbox.queue))
        return rows

    def once(self, row: LogRow) -> list[LogRow]:
        """A row that is not a delivery (a 签收 read from the topic): to record unless its destination
        and alert id already have one, in the log as read at start or since."""
        key = (row.destination, row.alert_id)
        if key in self.known:
            return []
        self.known[key] = emitted_at(json.loads(row.alert))
        return [row]

    def _forget(self, now: float) -> None:
        """Every so many alerts, drop the ids older than the TTL: the set stays one TTL's worth."""
        self.offered += 1
        if self.offered % FORGET_EVERY:
            return
        self.known = {key: at for key, at in self.known.items() if now - at <= self.ttl_s}

    def queued(self) -> int:
        return sum(len(o.queue) for o in self.outboxes.values())

    async def run(self) -> None:
        """One task per destination and the log's writer, until cancelled."""
        await asyncio.gather(self._write_rows(), *(outbox.run() for outbox in self.outboxes.values()))

    def note(self, rows: list[LogRow]) -> None:
        """Rows for the log's next write. Destinations do not wait for it: one insert per message
        made the log the bottleneck of a burst (a chDB insert takes milliseconds, more under load).
        The writer writes whatever accumulated while it wrote. A row lost to a crash before its
        write only means a resend of the same alert id after the restart (counted)."""
        self._rows.extend(rows)
        self._rows_ready.set()

    def written(self) -> bool:
        """Every noted row is in the log."""
        return not self._rows and not self._writing

    async def _write_rows(self) -> None:
        while True:
            await self._rows_ready.wait()
            self._rows_ready.clear()
            rows, self._rows = self._rows, []
            self._writing = True
            try:
                await self.record(rows)
            finally:
                self._writing = False

    async def send(self, dest: Destination, alerts: list[dict[str, Any]]) -> tuple[bool, str]:
        """One message; any failure is a reason (never the address, which may hold a key)."""
        try:
            status, body = await self.post(build(dest, alerts, self.clock(), self.link))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:  # the receiver's, never the alert's
            return False, type(exc).__name__
        return accepted(dest.channel, status, body)

    async def record(self, rows: list[LogRow]) -> None:
        """Write rows to the log, retrying while it is unavailable: an infrastructure fault holds
        this destination back (and says so), it never drops what was delivered."""
        if not rows:
            return
        delay = self.first_retry_s
        while True:
            try:
                await asyncio.to_thread(self.log.record, rows)  # a ClickHouse insert: off the event loop
                self.metrics.log_up.set(1)
                return
            except Exception as exc:
                self.metrics.log_up.set(0)
                log.error("delivery log unavailable (%s); retrying in %.0fs", type(exc).__name__, delay)
                await self.sleep(delay)
                delay = min(delay * 2, self.max_retry_s)

    def row(self, dest: Destination, entry: Entry, status: str, delivered_at: float | None = None) -> LogRow:
        return LogRow(
            destination=dest.name,
            alert_id=entry.alert_id,
            unit_id=dest.unit_id,
            channel=dest.channel,
            status=status,
            attempts=entry.attempts,
            first_try=entry.first_try,
            last_try=entry.last_try,
            delivered_at=delivered_at,
            last_error=entry.last_error,
            alert=json.dumps(entry.alert, ensure_ascii=False, sort_keys=True),
            version=next_version(),
        )


def http_post(session: aiohttp.ClientSession) -> Post:
    """Send a request with ``session``: its answer's status and body."""

    async def post(request: Request) -> tuple[int, bytes]:
        async with session.post(request.url, data=request.body, headers=request.headers) as response:
            return response.status, await response.read()

    return post
