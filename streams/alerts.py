"""Alerts to units and the office: before a deadline and at it, and supervision due; each sent once.

An order whose second return visit was unsatisfied is due for supervision (督办): the fold marks
it (``streams/processing.py``) and the office gets one ``alert.supervision_due``, scheduled and
deduplicated exactly like the deadline alerts (same timer, same alert ids, same feed).

Decisions never mutate the order table from a timer (faust #216): the timer only
*reads* order state. What has been sent is recorded where it is sent, in the
alerts topic itself: every worker follows that topic from the beginning (the
:class:`AlertFeed`), so after a crash or a rebalance the worker that owns an
order knows which of its alerts already went out, and sends only the others.
Alert ids are deterministic, so a consumer can also tell repeats apart.

A send Kafka refuses or times out (a broker down for a minute) does not lose the alert: it is
owed again and fired on a later tick, with back-off (:meth:`AlertScheduler.failed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2

from hotline.schemas.events import (
    AlertAcknowledged,
    AlertDueSoon,
    AlertEscalated,
    AlertOverdue,
    AlertSupervisionDue,
    dump_event,
    parse_event,
)
from hotline.streams.deadlines import TZ
from hotline.streams.tally import AlertTally

log = logging.getLogger(__name__)

OVERDUE = "overdue"
SUPERVISION_DUE = "supervision_due"
ESCALATED = "escalated"
ALERT_TYPES = {  # others: alert.due_soon
    OVERDUE: "alert.overdue",
    SUPERVISION_DUE: "alert.supervision_due",
    ESCALATED: "alert.escalated",
}


def alert_type(kind: str) -> str:
    """The contract type of an alert of this kind (``due_soon:<lead>`` kinds are all alert.due_soon)."""
    return ALERT_TYPES.get(kind, "alert.due_soon")


def alert_id(order_id: str, unit_id: str, due_iso: str, kind: str) -> str:
    """Same order, unit, deadline and kind: same id, so the same alert is recognised anywhere."""
    return hashlib.sha1(f"{order_id}|{unit_id}|{due_iso}|{kind}".encode()).hexdigest()[:32]


def key_partition(key: str, partitions: int) -> int:
    """Kafka's default partitioner (murmur2), as producers keyed by order_id use."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def is_open(state: Mapping[str, Any] | None) -> bool:
    return bool(state and state.get("unit") and state.get("due") and state.get("completed_on_time") is None)


def awaiting_supervision(state: Mapping[str, Any] | None) -> bool:
    """Due for supervision (a second unsatisfied visit) and not supervised yet: the screen's 待督办."""
    return bool(state and state.get("unit") and state.get("supervision_due") and not state.get("supervised"))


@dataclass(order=True)
class Pending:
    fire_at: float
    order_id: str = field(compare=False)
    unit_id: str = field(compare=False)
    due: str = field(compare=False)
    kind: str = field(compare=False)
    due_ts: float = field(compare=False)
    overdue_id: str = field(default="", compare=False)  # an escalation: the overdue alert it escalates
    attempt: int = field(default=0, compare=False)  # sends Kafka refused so far
    owed_since: float | None = field(default=None, compare=False)  # a retry: when it first fell due

    @property
    def owed_from(self) -> float:
        """When the alert first fell due: its lateness counts from there, whatever its retries."""
        return self.fire_at if self.owed_since is None else self.owed_since

    @property
    def alert_id(self) -> str:
        """An escalation's id derives from its overdue alert's (one escalation per alert, whatever
        the deadline's spelling); every other alert's from its order, unit, deadline and kind."""
        if self.kind == ESCALATED:
            return alert_id(self.overdue_id, "", "", ESCALATED)
        return alert_id(self.order_id, self.unit_id, self.due, self.kind)


def pending_alerts(order_id: str, state: Mapping[str, Any], leads_s: Iterable[float]) -> list[Pending]:
    """The alerts an order is owed: while open, one per lead time before the deadline and one at
    it; while awaiting supervision, one when it became due (its second unsatisfied visit)."""
    owed: list[Pending] = []
    if awaiting_supervision(state):
        since = datetime.fromisoformat(state["supervision_due"]).timestamp()
        owed.append(Pending(since, order_id, state["unit"], state["supervision_due"], SUPERVISION_DUE, since))
    if not is_open(state):
        return owed
    due = datetime.fromisoformat(state["due"]).timestamp()
    kinds = [(due - lead, f"due_soon:{lead:g}") for lead in leads_s] + [(due, OVERDUE)]
    return owed + [Pending(at, order_id, state["unit"], state["due"], kind, due) for at, kind in kinds]


Alert = AlertDueSoon | AlertOverdue | AlertSupervisionDue | AlertEscalated


def make_alert(p: Pending, now: float) -> Alert:
    emitted = datetime.fromtimestamp(now, TZ)
    aid = p.alert_id
    fields: dict[str, Any] = {
        "event_id": aid,
        "occurred_at": emitted,
        "alert_id": aid,
        "order_id": p.order_id,
        "unit_id": p.unit_id,
        "due_at": datetime.fromisoformat(p.due),
        "emitted_at": emitted,
    }
    if p.kind == ESCALATED:
        return AlertEscalated(**fields, overdue_alert_id=p.overdue_id)
    classes: dict[str, type[AlertDueSoon | AlertOverdue | AlertSupervisionDue]] = {
        OVERDUE: AlertOverdue,
        SUPERVISION_DUE: AlertSupervisionDue,
    }
    return classes.get(p.kind, AlertDueSoon)(**fields)


FEED_BATCH = 500  # records of the alerts topic read at a time


class AlertFeed:
    """Follows the alerts topic from the start: what was sent, and live fan-out to subscribers."""

    def __init__(self, topic: str, consumer_options: dict[str, Any], recent: int = 200) -> None:
        self.topic = topic
        self.options = consumer_options or {}
        self.sent: set[str] = set()
        # Overdue alerts neither acknowledged nor escalated yet (anyone's): what escalation watches.
        self.overdue: dict[str, dict[str, Any]] = {}
        self.on_overdue: Callable[[dict[str, Any]], None] | None = None
        self.recent: deque[dict[str, Any]] = deque(maxlen=recent)
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.ready = asyncio.Event()
        self.skipped = 0  # records on the topic that are not alerts (foreign or malformed)
        self.overflowed = 0  # alerts a slow subscriber lost (its oldest first)
        self.tally = AlertTally()  # per unit: sent, acknowledged, waiting (the screen, the unit's page)
        self.acknowledged = self.tally.acked  # alert ids a unit signed for (签收): the tally's, one set
        self.awaited: dict[str, asyncio.Event] = {}  # alert ids whose 签收 a page waits to read back

    def note(self, alert: dict[str, Any]) -> None:
        """Remember an alert (ours as we send it, anyone's as the topic shows it) and fan it out once.

        A subscriber that does not keep up (a page that stopped reading) loses its oldest alert
        rather than stop the feed: the feed is what tells every worker which alerts were sent."""
        if alert["alert_id"] in self.sent:
            return
        self.sent.add(alert["alert_id"])
        self.tally.alert(alert)
        self._watch(alert)
        self.recent.append(alert)
        for queue in list(self.subscribers):
            if queue.full():
                queue.get_nowait()
                self.overflowed += 1
            queue.put_nowait(alert)

    def _watch(self, alert: dict[str, Any]) -> None:
        """An overdue alert is watched for its 签收 until acknowledged or escalated (with escalation
        on: without, nothing is kept)."""
        if self.on_overdue is None:
            return
        if alert["type"] == "alert.overdue" and alert["alert_id"] not in self.acknowledged:
            self.overdue[alert["alert_id"]] = alert
            if self.on_overdue is not None:
                self.on_overdue(alert)
        elif alert["type"] == "alert.escalated":
            self.overdue.pop(alert["overdue_alert_id"], None)

    async def read_back(self, alert_id: str, timeout_s: float) -> bool:
        """Whether the feed has read an acknowledgement of ``alert_id`` (waiting up to ``timeout_s``):
        a unit's page answers a press once the open list it shows no longer has the alert."""
        if alert_id in self.acknowledged:
            return True
        seen = self.awaited.setdefault(alert_id, asyncio.Event())
        try:
            await asyncio.wait_for(seen.wait(), timeout_s)
        except TimeoutError:
            self.awaited.pop(alert_id, None)
            return False
        return True

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers.discard(queue)

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(enable_auto_commit=False, auto_offset_reset="earliest", **self.options)
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            while True:
                # Bounded reads, yielding between them: a week of alerts read at start-up must let
                # the subscribers (and everything else on the loop) run meanwhile.
                batch = await consumer.getmany(timeout_ms=200, max_records=FEED_BATCH)
                for records in batch.values():
                    for record in records:
                        self._read(record.value, f"{record.topic}[{record.partition}]@{record.offset}")
                await asyncio.sleep(0)
                if not self.ready.is_set() and await self._caught_up(consumer, ends):
                    log.info("alert feed caught up: %d alerts already sent", len(self.sent))
                    self.ready.set()
        finally:
            await consumer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[int]:
        for _ in range(100):
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions:
                return sorted(partitions)
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
        raise RuntimeError(f"alerts topic {self.topic} does not exist")

    @staticmethod
    async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return False
        return True

    def _read(self, value: bytes | None, where: str = "") -> None:
        """One record of the topic: an alert is noted; anything else is skipped and counted, never fatal."""
        try:
            alert = parse_event(value or b"")
            if not alert.type.startswith("alert."):
                raise ValueError(f"an event of type {alert.type!r}, not an alert")
            if isinstance(alert, AlertAcknowledged):  # a unit's 签收 of an alert: not an alert itself
                self.tally.acknowledge(alert.alert_id)  # into ``acknowledged``
                self.overdue.pop(alert.alert_id, None)
                if (seen := self.awaited.pop(alert.alert_id, None)) is not None:
                    seen.set()
                return
            self.note(alert.model_dump(mode="json"))
        except Exception as exc:
            self.skipped += 1
            log.warning("record %s on the alerts topic skipped: %s", where, type(exc).__name__)


StateLookup = Callable[[str], Mapping[str, Any] | None]
Owns = Callable[[str], bool]
# Queues one alert (unit, value) on Kafka; returns the delivery's future, or None once delivered.
Send = Callable[[str, bytes], Awaitable["asyncio.Future[Any] | None"]]

RETRY_FIRST_S = 1.0  # a refused alert is tried again after this, doubling per refusal
RETRY_MAX_S = 30.0  # ... up to this: a broker down for long is asked twice a minute


class AlertScheduler:
    """Wall-clock timer over event-time deadlines; re-checks each order's state when an alert falls due."""

    def __init__(
        self,
        feed: AlertFeed,
        lookup: StateLookup,
        owns: Owns,
        send: Send,
        leads_s: Iterable[float],
        horizon_s: float,
        clock: Callable[[], float] = time.time,
        observe: Callable[[str, float], None] | None = None,
        escalate_after_s: float = 0.0,
        refused: Callable[[str], None] | None = None,
        retry_s: tuple[float, float] = (RETRY_FIRST_S, RETRY_MAX_S),
    ) -> None:
        self.feed = feed
        self.escalate_after_s = escalate_after_s
        if escalate_after_s > 0:
            feed.on_overdue = self.escalation
        self.lookup = lookup
        self.owns = owns
        self.send = send
        self.leads_s = tuple(leads_s)
        self.horizon_s = horizon_s
        self.clock = clock
        self.heap: list[Pending] = []
        self.wakeup = asyncio.Event()
        self.suppressed = 0
        self.observe = observe
        self.refused = refused  # counts a send Kafka refused (by kind)
        self.retry_s = retry_s
        self.sending: set[str] = set()  # alert ids queued on Kafka, not yet acknowledged nor refused
        self.retrying: set[str] = set()  # alert ids refused, their retry in the heap
        self.held_until = 0.0  # after a refusal nothing is sent before this: a dead broker is not hammered

    def schedule(self, order_id: str, state: Mapping[str, Any] | None) -> None:
        for p in pending_alerts(order_id, state or {}, self.leads_s):
            heapq.heappush(self.heap, p)
        self.wakeup.set()

    def rebuild(self, orders: Iterable[tuple[str, Mapping[str, Any] | None]]) -> None:
        retries = [p for p in self.heap if p.attempt]  # owed again after a refusal: kept, with their back-off
        self.heap = [p for order_id, state in orders for p in pending_alerts(order_id, state or {}, self.leads_s)]
        self.heap += retries
        if self.escalate_after_s > 0:  # the overdue alerts the feed watches: escalated by their owner
            self.heap += [self._escalation_of(alert) for alert in self.feed.overdue.values()]
        heapq.heapify(self.heap)
        self.wakeup.set()

    def escalation(self, overdue: Mapping[str, Any]) -> None:
        """An overdue alert was sent (by any worker): its escalation falls due ``escalate_after_s``
        later, and goes out then unless the unit acknowledged it (the owner of the order sends it).

        Exactly once across crashes, as the deadline alerts: the overdue alert, the 签收 and the
        escalation are all on the alerts topic, which the feed reads from its start, so a restarted
        worker watches the overdue alerts again (this, and :meth:`rebuild`) with their own
        ``emitted_at`` (its escalation is not delayed by the crash but for the restart itself);
        the escalation's id derives from the overdue alert's, so one already sent is in
        ``feed.sent``; and the scheduler fires nothing before the feed is ``ready`` (read to the
        topic's end as it was at start), so an escalation or a 签收 produced before the crash is
        known before anything could repeat it (``tests/integration/test_escalation.py``)."""
        heapq.heappush(self.heap, self._escalation_of(overdue))
        self.wakeup.set()

    def _escalation_of(self, overdue: Mapping[str, Any]) -> Pending:
        emitted = datetime.fromisoformat(str(overdue["emitted_at"])).timestamp()
        due = datetime.fromisoformat(str(overdue["due_at"]))
        return Pending(
            emitted + self.escalate_after_s,
            str(overdue["order_id"]),
            str(overdue["unit_id"]),
            due.isoformat(),
            ESCALATED,
            due.timestamp(),
            str(overdue["alert_id"]),
        )

    def _escalation_owed(self, p: Pending, state: Mapping[str, Any] | None) -> bool:
        """Still open at the same unit and deadline (compared as instants), owned here, not acknowledged."""
        return (
            p.overdue_id not in self.feed.acknowledged
            and is_open(state)
            and state is not None
            and state["unit"] == p.unit_id
            and datetime.fromisoformat(state["due"]).timestamp() == p.due_ts
            and self.owns(p.order_id)
        )

    def still_owed(self, p: Pending) -> bool:
        state = self.lookup(p.order_id)
        if p.kind == ESCALATED:
            return self._escalation_owed(p, state)
        if p.kind == SUPERVISION_DUE:
            return (
                awaiting_supervision(state)
                and state is not None
                and state["unit"] == p.unit_id
                and state["supervision_due"] == p.due
                and self.owns(p.order_id)
            )
        return (
            is_open(state)
            and state is not None
            and state["unit"] == p.unit_id
            and state["due"] == p.due
            and self.owns(p.order_id)
        )

    async def fire_due(self) -> int:
        """Queue every alert whose time has come on Kafka; return how many were queued."""
        now = self.clock()
        queued = 0
        while self.heap and self.heap[0].fire_at <= now and now >= self.held_until:
            p = heapq.heappop(self.heap)
            aid = p.alert_id
            if p.attempt:
                self.retrying.discard(aid)
            elif aid in self.retrying:
                continue  # refused before: its retry stands for it, with its back-off
            if aid in self.feed.sent or aid in self.sending or not self.still_owed(p):
                continue
            if p.kind not in ALERT_TYPES and now >= p.due_ts:
                continue  # past the deadline a "due soon" says nothing the overdue alert does not
            if not p.attempt and now - p.fire_at > self.horizon_s:  # a retry is no history: it is owed
                self.suppressed += 1  # history being replayed: counted overdue, not delivered
                if self.observe:
                    self.observe("suppressed", now - p.fire_at)
                continue
            emitted = self.clock()  # per alert: in a burst the last one really goes out later
            if not await self._send(p, make_alert(p, emitted), emitted):
                break  # Kafka refuses now: the others wait for the back-off, not for each its own timeout
            queued += 1
        if queued:
            log.info("queued %d alerts (%d still scheduled)", queued, len(self.heap))
        return queued

    async def _send(self, p: Pending, made: Alert, emitted: float) -> bool:
        """Queue one alert on Kafka; whether Kafka took it in (its delivery settles later)."""
        self.sending.add(p.alert_id)
        alert = made.model_dump(mode="json")
        try:
            delivery = await self.send(p.unit_id, dump_event(made))
        except KafkaError as exc:  # no metadata for the topic in time, the producer closed
            self.failed(p, exc)
            return False
        if delivery is None:
            self.delivered(p, alert, emitted)
        else:
            delivery.add_done_callback(lambda done: self._settled(p, alert, emitted, done))
        return True

    def _settled(self, p: Pending, alert: dict[str, Any], emitted: float, done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            self.failed(p, asyncio.CancelledError())
        elif (exc := done.exception()) is not None:
            self.failed(p, exc)
        else:
            self.delivered(p, alert, emitted)

    def delivered(self, p: Pending, alert: dict[str, Any], emitted: float) -> None:
        """Kafka has the alert: only now is it noted as sent, so the feed's subscribers and the
        units' tally see it once, and only an alert that is on the topic (a refused one never was)."""
        self.sending.discard(p.alert_id)
        self.feed.note(alert)
        if self.observe:
            self.observe(p.kind, emitted - p.owed_from)
        log.debug("alert %s %s for order %s of unit %s (due %s)", p.kind, p.alert_id, p.order_id, p.unit_id, p.due)

    def failed(self, p: Pending, exc: BaseException) -> None:
        """Kafka refused the alert or did not answer in time: it is owed again, fired on a later
        tick after a back-off (doubling per refusal, capped), held back and said, never dropped.

        Still exactly once for the readers of the topic, though not on it: a send whose record
        reached Kafka but whose acknowledgement was lost is sent again, and the topic then holds the
        alert twice. The alert id is the idempotency key downstream: ``hotline notify`` delivers
        an id once, the feeds and the units' tally count it once. The retry is skipped if the
        feed has read the first one back meanwhile (its id is then in ``feed.sent``)."""
        self.sending.discard(p.alert_id)
        first, most = self.retry_s
        backoff = min(most, first * 2**p.attempt)
        retry_at = self.clock() + backoff
        self.held_until = max(self.held_until, retry_at)
        self.retrying.add(p.alert_id)
        heapq.heappush(self.heap, replace(p, fire_at=retry_at, attempt=p.attempt + 1, owed_since=p.owed_from))
        self.wakeup.set()
        if self.refused:
            self.refused(p.kind)
        log.warning(
            "alert %s %s for order %s of unit %s not taken by Kafka (%s): owed again, retry %d in %.0fs",
            p.kind,
            p.alert_id,
            p.order_id,
            p.unit_id,
            type(exc).__name__,
            p.attempt + 1,
            backoff,
        )

    async def run(self, tick_s: float = 0.05) -> None:
        await self.feed.ready.wait()
        while True:
            await self.fire_due()
            self.wakeup.clear()
            next_at = max(self.heap[0].fire_at, self.held_until) if self.heap else 0.0
            delay = tick_s if not self.heap else max(0.0, min(tick_s * 20, next_at - self.clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=max(delay, 0.001))
