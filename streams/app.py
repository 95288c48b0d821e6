"""The Faust app: topics, the per-order table, the two agents and the worker's HTTP pages.

Delivery is at-least-once (faust-streaming's exactly-once mode has open bugs):
a batch is written to ClickHouse *before* its events are acked and before the
order table changes, so a crash at any point replays the batch, and the sink's
event-keyed tables make the replay a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

import faust
from faust.types import TP, EventT, StreamT

from hotline.schemas.events import Event, prefixes
from hotline.schemas.registry import Registry, default_registry
from hotline.settings import Settings
from hotline.sinks.backup import RESTORED
from hotline.sinks.clickhouse import Batch, DeadLetter, Generation, OrderRow
from hotline.sinks.fencing import Fence, Partition, StoreFenced
from hotline.sinks.store import Store, StoreRaced, describe, open_store, owned
from hotline.streams import history, orphans, timeline
from hotline.streams.alerting import Alerting
from hotline.streams.alerts import key_partition
from hotline.streams.changelog import Changelog
from hotline.streams.claims import ClaimKeeper
from hotline.streams.culprits import find_culprits
from hotline.streams.deadletters import send_deadletters
from hotline.streams.deadlines import TZ, limits_of
from hotline.streams.faustapp import Positions, ledger_app
from hotline.streams.folding import Inputs, fold, order_ids
from hotline.streams.gaps import GapReader
from hotline.streams.gauges import AgentFigures, AwaitingSupervision, OpenOrders
from hotline.streams.health import StoreHealth, backoff_s
from hotline.streams.known import EveryId, KnownIds, id_filter
from hotline.streams.ledger import Gap, Ledger, last_offsets
from hotline.streams.metrics import Metrics
from hotline.streams.observer import BatchObserver
from hotline.streams.processing import (
    Decoded,
    Folded,
    Identity,
    OrderState,
    Record,
    Source,
    decode_batch,
    identify,
    source_of,
    state_of,
)
from hotline.streams.reader import BatchReader
from hotline.streams.windows import Staged, Step, Windows, rows

log = logging.getLogger(__name__)


CALLS, ORDERS = "calls", "orders"  # the source topics' logical names (schemas.events.TOPIC_OF_PREFIX)
LIVE_DAYS = 40  # the windows held for the screen: a month to date and a rolling 30 days

T = TypeVar("T")


class Pipeline:
    """One worker's wiring: the app, its topics and table, and the process's only sink."""

    def __init__(self, settings: Settings, registry: Registry | None = None, store: Store | None = None) -> None:
        self.settings = settings
        self.registry = registry or default_registry()
        self._opened = store
        self._store_guard = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self.metrics = Metrics()
        self.metrics.store_up.set(1)
        self.observer = BatchObserver(self.metrics)
        self.ledger = Ledger()  # what this process has written to the store (the next batch follows it)
        self.stored_upto: dict[tuple[str, int], int] = {}  # the progress recorded in the store: the truth
        self._completing: asyncio.Future[None] | None = None  # the last batch's changelog and progress
        self.claims = ClaimKeeper(self._claim_at_store, self.metrics, self._stop_reading)
        self.gaps = GapReader(settings.kafka_client_options())
        self.health = StoreHealth()
        self._batch_lock = asyncio.Lock()
        # Set once the store is open, migrated and its known ids loaded: no batch before that,
        # or a re-sent event would look new (seen in a crash test: the first batch of a
        # restarted worker can arrive before the start-up task has run).
        self.ready = asyncio.Event()
        self._ready_lock = asyncio.Lock()
        # The agents' live figures: day windows of the partitions read here (and of imports),
        # open orders by deadline; and the state generation (imports, restatements) they follow.
        self.windows = Windows()
        self.open_orders = OpenOrders()
        self.awaiting = AwaitingSupervision()  # orders due for supervision (督办), per unit
        self.figures = AgentFigures(self.windows, self.open_orders, set(), self.awaiting)
        self.generation = Generation()
        self.known: KnownIds | EveryId = KnownIds()  # loaded from the store when it opens
        self._foreign: dict[str, OrderState] = {}  # open orders imported or restated, not yet in the table
        self.app = ledger_app(settings)
        self.app.resume_at = self._resume_at
        # Whether Faust has recovered the order table for the current assignment (see _resume_locked).
        self._table_recovered = False
        # Revoked first on every rebalance (eager protocol); not on assignment, which Faust signals
        # after starting the recovery, whose completion might then be missed (a worker never reading).
        self.app.on_partitions_revoked.connect(self._on_rebalance_started)
        self.app.on_rebalance_complete.connect(self._on_table_recovered)
        self.kinds = {settings.calls_topic: CALLS, settings.orders_topic: ORDERS}  # the source topics
        self.calls_topic = self._raw_topic(settings.calls_topic)
        self.orders_topic = self._raw_topic(settings.orders_topic)
        self.deadletter_topic = self._raw_topic(settings.deadletter_topic)
        # Changelog records are written by streams/changelog.py, each on its order's partition of
        # the orders topic (copartitioned: the reader of a partition recovers its orders' states).
        self.orders = self.app.Table(
            "order-state",
            default=None,
            key_type=str,
            partitions=settings.partitions,
            use_partitioner=True,
        )
        producer = {"linger_ms": 5, **settings.producer_options(), **settings.kafka_client_options()}
        self.changelog = Changelog(self.orders, settings.partitions, producer)
        self.limits = limits_of(settings)
        self.alerting = Alerting(settings, self.observer, self.order_state, self._owns)
        self.feed, self.scheduler = self.alerting.feed, self.alerting.scheduler  # read by the pages
        self.orders.on_recover(self._on_recover)
        self.alerting.register(self.app)
        self.app.timer(1.0)(self._update_lag)
        self.app.timer(settings.store_claim_lease_s / 3)(self.renew_claim)
        self.app.timer(min(3600.0, settings.orphan_wait_s / 4))(self.sweep_orphans)
        self.app.agent(self.calls_topic, name="calls")(self._calls_agent)
        self.app.agent(self.orders_topic, name="orders")(self._orders_agent)
        self.app.task(self._on_start)
        self.reader: BatchReader | None = None
        if settings.ingest == "batch":
            self.reader = BatchReader(
                settings.kafka_client_options(),
                self.kinds,
                self.prepare,
                self.process,
                settings.batch_size,
                settings.batch_within_s,
            )
            self.app.task(self.reader.run)
            self.app.on_partitions_revoked.connect(self._on_revoked)

    def _raw_topic(self, name: str) -> faust.TopicT:
        """Bytes in, bytes out: decoding is ours, so a bad record becomes a dead letter, not a crash."""
        return self.app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=self.settings.partitions,
        )

    # -- store ---------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The process's one sink, opened once: a second chDB client racing the first lost writes.

        ClickHouse opened here, or the storage owner (``hotline store``) when ``HOTLINE_STORE_URL``
        is set: chosen in ``hotline.sinks.store.open_store``, nowhere else."""
        with self._store_guard:
            if self._opened is None:
                self._opened = open_store(self.settings, worker=True)
            return self._opened

    async def _claim_at_store(self, fence: Fence) -> None:
        await self.in_store_thread(self.store.claim, fence)

    async def in_store_thread(self, fn: Any, *args: Any) -> Any:
        """chDB calls block; run them off the event loop, one at a time."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _on_start(self) -> None:
        await self.ensure_ready()

    async def ensure_ready(self) -> None:
        """Open the store once, whoever needs it first: Faust runs the app's tasks only after the
        first assignment, so the resume hook and the first batch may come before ``_on_start``."""
        if self.ready.is_set():
            return
        async with self._ready_lock:
            if self.ready.is_set():
                return
            self.generation = await self.in_store_thread(self._prepare_store)
            await self.changelog.start()
            self.ready.set()
        log.info("sink ready: %s", describe(self.settings))

    def _prepare_store(self) -> Generation:
        """Open and migrate the store; build the windows from stored events if a migration asks for it.

        Through ``hotline store`` the store process has done both, and keeps the one filter of
        stored ids (it sees every worker's writes): this worker then asks it about every id."""
        sink = self.store
        if owned(sink):
            generation = history.restate_if_pending(sink, self.limits)
        elif (generation := sink.generation()).restate_pending:
            raise RuntimeError("the store has not restated its day windows: restart `hotline store`")
        self.known = id_filter(sink)
        return generation

    def order_state(self, order_id: str) -> OrderState | None:
        """An order's current state: the table's, unless an import or restatement wrote a newer one."""
        state = self.orders.get(order_id)
        if state is not None and state.get("gen", 0) >= self.generation.gen:
            return state  # type: ignore[no-any-return]
        return self._foreign.get(order_id, state)

    @property
    def positions(self) -> dict[tuple[str, int], int]:
        """The last offset stored per source partition with its progress recorded (for lag and the screen)."""
        return dict(self.stored_upto)

    async def _resume_at(self, committed: Positions) -> Positions:
        """Each assigned source partition resumes right after the ledger's last processed offset.

        Under the batch lock: a batch still in flight from before the rebalance must not move
        the ledger or the windows while they are read back from ClickHouse here.
        """
        await self.ensure_ready()
        async with self._batch_lock:
            return await self._resume_locked(committed)

    async def _resume_locked(self, committed: Positions) -> Positions:
        assigned = [tp for tp in self.app.consumer.assignment() if tp.topic in self.kinds]
        if not assigned:
            if self.reader is not None:
                self.reader.assign({})
            return committed
        # During a rebalance of a running worker, Faust's fetcher seeks (getmany while its flow is
        # suspended) before the order table is recovered from its changelog, and again once it is.
        # Reading a newly assigned partition before then would fold its events on missing order
        # states (seen with two workers: an order of another worker's partition counted as new).
        # So until Faust says the table is recovered, partitions are positioned but not read.
        ready = self._table_recovered
        await self.settle()
        if not await self.claim([(tp.topic, tp.partition) for tp in assigned]):
            # A newer generation holds them: this worker is the stale one, and reads none of them
            # (streams/claims.py), through its batch reader or Faust's stream, until its next assignment.
            self.app.consumer.pause_partitions(assigned)
            return committed
        stored = await self.in_store_thread(self.store.progress)
        self.ledger.load(stored, [(tp.topic, tp.partition) for tp in assigned])
        for tp in assigned:
            self.stored_upto[(tp.topic, tp.partition)] = self.ledger.next_offset[(tp.topic, tp.partition)] - 1
        positions = dict(committed)
        for tp in assigned:
            offset = self.ledger.next_offset[(tp.topic, tp.partition)]
            if committed.get(tp) != offset:
                log.info(
                    "%s[%d]: resuming at ledger offset %d (group committed %s)",
                    tp.topic,
                    tp.partition,
                    offset,
                    committed.get(tp),
                )
            await self.app.consumer.seek(tp, offset)
            positions[tp] = offset
        if not ready:
            if self.reader is not None:
                self.app.consumer.pause_partitions(assigned)
                self.reader.assign({})
            log.info("order table not recovered yet: reading the assigned partitions once it is")
            return positions
        await self._load_live(assigned)
        if self.reader is not None:
            # Read them in batches here, not through Faust's per-event stream (streams/reader.py).
            self.app.consumer.pause_partitions(assigned)
            self.reader.assign({(tp.topic, tp.partition): positions[tp] for tp in assigned})
        return positions

    async def claim(self, partitions: list[Partition]) -> bool:
        """Claim the assigned source partitions at the store, under the group generation that assigned
        them, before their ledger is read (``streams/claims.py``); False when a newer generation
        holds one of them: this worker is the stale one, and reads nothing until its next assignment."""
        return await self.claims.claim(self.app.consumer_generation_id, partitions)

    async def renew_claim(self) -> None:
        """Renew this worker's claim at the store, idle or not (a claim not renewed lapses); a fenced
        worker whose group has not moved on tries to take its partitions back instead."""
        if self.claims.fenced:
            await self._reclaim()
        else:
            await self.claims.renew()

    async def _reclaim(self) -> None:
        """A fenced worker whose group has not moved on claims its assignment again, and resumes it
        once the store takes the claim.

        Fencing expects the rebalance that fenced a worker to bring it a new assignment. When none
        comes (the group's generation is still the one fenced: the claim that fenced it came from
        outside the group, or from a generation that does not exist), the worker would read nothing
        for good while its partitions wait; so it tries again every renewal period, and takes its
        partitions back as soon as the foreign claim has lapsed."""
        generation = self.app.consumer_generation_id
        assigned = [tp for tp in self.app.consumer.assignment() if tp.topic in self.kinds]
        if not assigned or generation is None or generation < 0:
            return
        await self._resume_at({})  # claims again first; refused, it stays fenced until the next try
        if self.claims.fenced:
            return
        log.warning("the claim that fenced this worker off has lapsed and no new assignment came: resuming")
        if self.reader is None:
            self.app.consumer.resume_partitions(assigned)

    def _stop_reading(self) -> None:
        """Fenced off: every partition stops (the group's rebalance is eager, so the whole assignment
        is from the stale generation), until the next assignment or a claim taken back."""
        if self.reader is not None:
            self.reader.assign({})
        else:  # the agents' stream: Faust's next assignment (eager: revoke first) unpauses them
            self.app.consumer.pause_partitions(tp for tp in self.app.consumer.assignment() if tp.topic in self.kinds)

    async def _load_live(self, assigned: list[TP]) -> None:
        """The live figures of what this worker now reads: recent windows, open orders, and the
        generation; ClickHouse holds them durably (written before the ledger moves)."""
        owned = {(tp.topic, tp.partition) for tp in assigned}
        since = history.today() - timedelta(days=LIVE_DAYS)
        self.generation = await self.in_store_thread(self.store.generation)
        loaded = await self.in_store_thread(self.store.windows, "day >= %(since)s", {"since": since})
        months = set(await self.in_store_thread(history.event_months, self.store))
        self.windows = Windows()
        self.windows.load(
            w for w in loaded if w.source_topic not in self.kinds or (w.source_topic, w.source_partition) in owned
        )
        self.open_orders = OpenOrders()
        self._foreign = {}
        for row in await self.in_store_thread(self.store.open_orders):
            if self._order_tp(row.order_id) in assigned:
                self.open_orders.update(row.order_id, row.unit_id, row.due)
                self._state_of_stored(row)
        await self._load_awaiting(assigned)
        self.figures = AgentFigures(self.windows, self.open_orders, months, self.awaiting)
        log.info(
            "live figures loaded: %d open orders, %d imported or restated", len(self.open_orders), len(self._foreign)
        )

    async def _load_awaiting(self, assigned: list[TP]) -> None:
        """Supervision: the orders of these partitions awaiting it, from ClickHouse; those
        an import or restatement wrote are owed their alert like the open ones above."""
        self.awaiting = AwaitingSupervision()
        for row in await self.in_store_thread(self.store.awaiting_supervision):
            if self._order_tp(row.order_id) in assigned:
                self.awaiting.follow(row.order_id, self._state_of_stored(row))

    def _order_tp(self, order_id: str) -> TP:
        """The orders topic's partition of an order (Kafka's partitioner on its key)."""
        return TP(self.settings.orders_topic, key_partition(order_id, self.settings.partitions))

    def _state_of_stored(self, row: OrderRow) -> OrderState | None:
        """An order read back from ClickHouse: the table's state, unless an import or restatement
        wrote a newer one, which is then held as foreign and owed its alerts (scheduled once)."""
        table_state = self.orders.get(row.order_id)
        if table_state is not None and table_state.get("gen", 0) >= self.generation.gen:
            return table_state  # type: ignore[no-any-return]
        if row.order_id not in self._foreign:
            self._foreign[row.order_id] = state_of(row, self.generation.gen)
            self.scheduler.schedule(row.order_id, self._foreign[row.order_id])
        return self._foreign[row.order_id]

    async def _on_rebalance_started(self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """Partitions revoked: the next assignment's order table is recovered before they are read."""
        self._table_recovered = False

    async def _on_table_recovered(self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """Faust has restored the order table from its changelog for this assignment (it seeks next)."""
        self._table_recovered = True

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """Stop reading at once: the partitions may be another worker's from now on."""
        if self.reader is not None:
            self.reader.assign({})

    # -- agents -------------------------------------------------------------------------
    async def _calls_agent(self, stream: StreamT[bytes]) -> None:
        async for events in stream.take_events(  # type: ignore[attr-defined]  # faust-streaming API, not in StreamT
            self.settings.batch_size, within=self.settings.batch_within_s
        ):
            await self.process([_record(ev) for ev in events], CALLS)

    async def _orders_agent(self, stream: StreamT[bytes]) -> None:
        async for events in stream.take_events(  # type: ignore[attr-defined]  # faust-streaming API, not in StreamT
            self.settings.batch_size, within=self.settings.batch_within_s
        ):
            await self.process([_record(ev) for ev in events], ORDERS)

    async def process(self, records: list[Record], kind: str, prepared: Decoded | None = None) -> Folded | None:
        """Process one delivered batch until it is stored; never raises for a record's content.

        Returns once the batch's events, counters, dead letters and order states are in the
        store and the table; its changelog acks and progress record complete in the background
        (:meth:`settle` waits for them), at most one batch behind. Faust's acks do not matter:
        the worker resumes from the recorded progress. Only an outage of ClickHouse or Kafka
        keeps a batch here, retried with backoff and shown on ``/status`` and ``/metrics``.
        """
        await self.ensure_ready()
        async with self._batch_lock:  # one batch at a time: identity checks see every earlier write
            if self.claims.fenced:  # another worker's partitions now (_fence): it reads them from the ledger
                return None
            return await self._until_done(lambda: self._process_once(records, kind, prepared))

    async def _until_done(self, attempt_once: Callable[[], Awaitable[T]]) -> T | None:
        """Try until it succeeds: a failure here is an outage (ClickHouse or Kafka), not a record's.

        Except a refusal by the store's fence: the partitions are another worker's now, so the
        attempt is given up (``None``), never retried (``ClaimKeeper.fence``)."""
        attempt = 0
        while True:
            done: T | None
            try:
                done = await attempt_once()
            except StoreFenced as fenced:
                self.claims.fence(fenced)
                done = None
            except Exception as exc:
                attempt += 1
                await self._back_off(exc, attempt)
                continue
            if attempt:
                self.health.recovered()
                self.metrics.store_up.set(1)
            return done

    async def _process_once(self, delivered: list[Record], kind: str, prepared: Decoded | None) -> Folded | None:
        records, gaps = await self._admit(delivered)
        if not records:
            return None
        fence = self.claims.fence_of((r.source.topic, r.source.partition) for r in records)
        folded, staged = await self._write_batch(records, kind, prepared, fence)
        # Order states after the sink holds the batch, one table write per order. The next
        # batch folds on them, on these windows and after these offsets at once; this batch's
        # changelog acks and progress record complete while it does (``_complete``): the
        # progress is recorded only after the changelog is acknowledged, a crash before that
        # replays the batch, and the states' seen-ids and the stored rows make that a no-op.
        self.changelog.set(folded.orders)
        self.windows.commit(staged)
        progress = last_offsets(records)
        self.ledger.advance(progress)
        for order_id, state in folded.orders.items():
            self._foreign.pop(order_id, None)
            self._track(order_id, state)
        for order_id in folded.replayed - set(folded.orders):
            # Stored by an attempt that failed after the table write: its alerts are still owed.
            self._track(order_id, self.order_state(order_id))
        for gap in gaps:
            self.metrics.gaps.labels(gap.topic).inc(gap.end - gap.start)
        self.observer.batch(records, folded)
        await self.settle()  # the batch before this one: at most one completion outstanding
        self._completing = asyncio.ensure_future(self._complete(kind == ORDERS, progress, fence))
        return folded

    async def settle(self) -> None:
        """Wait until every batch processed so far has its changelog acked and its progress recorded."""
        if self._completing is not None:
            await self._completing

    async def _complete(self, changelog: bool, progress: dict[tuple[str, int], int], fence: Fence | None) -> None:
        """A stored batch's changelog acknowledged, then its progress recorded; retried through outages
        (not when the store fences this worker off: the progress is then not recorded)."""

        async def once() -> bool:
            if changelog:  # also when this batch changed nothing: an earlier attempt may have
                await self.flush_changelog()
            await self.in_store_thread(self.store.record_progress, progress, fence)
            return True

        if not await self._until_done(once):
            return
        for tp, offset in progress.items():
            self.stored_upto[tp] = max(self.stored_upto.get(tp, -1), offset)

    def _track(self, order_id: str, state: OrderState | None) -> None:
        """An order changed: its alerts and its place among the open orders."""
        self.alerting.track(order_id, state)
        self.open_orders.follow(order_id, state)
        self.awaiting.follow(order_id, state)

    async def sweep_orphans(self) -> None:
        """Dead-letter the events of orders whose dispatch has not come within ``orphan_wait_s``
        (``streams/orphans.py``), under the batch lock: their dead letters are stored and sent
        before the orders' states drop them, so a crash in between sweeps them again (the
        dead-letter table keeps one row per record; the topic may get a letter twice)."""
        await self.ensure_ready()
        wait = self.settings.orphan_wait_s
        async with self._batch_lock:
            if self.claims.fenced:
                return
            now = timeline.micros(datetime.now(TZ))
            due = orphans.overdue(((o, s) for o, s in self.orders.items() if self._owns(o)), now, wait)
            if not due:
                return
            states: dict[str, OrderState] = {o: self.orders[o] for o in due}
            ids = [i for state in states.values() for i in orphans.held_ids(state)]
            stored = await self.in_store_thread(self.store.stored, ids)
            letters = [d for o, state in states.items() for d in orphans.letters(o, state, stored, wait)]
            await self._until_done(lambda: self._dead_letter_orphans(letters))
            released = {o: orphans.released(state) for o, state in states.items()}
            self.changelog.set(released)
            await self._until_done(self.flush_changelog)
            for order_id, state in released.items():
                self._track(order_id, state)
            log.warning("%d event(s) of %d order(s) never dispatched dead-lettered", len(letters), len(due))

    async def _dead_letter_orphans(self, letters: list[DeadLetter]) -> None:
        await send_deadletters(self.deadletter_topic, letters)
        fence = self.claims.fence_of({(d.source_topic, d.source_partition) for d in letters})
        await self.in_store_thread(self.store.write, Batch(deadletters=letters), fence)
        for dead in letters:
            self.metrics.deadletters.labels(dead.source_topic).inc()

    async def flush_changelog(self) -> None:
        """Wait until the order table's changelog records are acknowledged by Kafka."""
        await self.changelog.flush()

    async def _admit(self, delivered: list[Record]) -> tuple[list[Record], list[Gap]]:
        """What the ledger has not seen, in offset order, with any skipped offsets read back in."""
        unknown = {tp for tp in {(r.source.topic, r.source.partition) for r in delivered} if not self.ledger.knows(tp)}
        if unknown:
            self.ledger.load(await self.in_store_thread(self.store.progress), unknown)
        admitted = self.ledger.admit(delivered)
        records = list(admitted.records)
        for gap in admitted.gaps:
            records.extend(await self.gaps.read(gap))
        return sorted(records, key=lambda r: (r.source.topic, r.source.partition, r.source.offset)), admitted.gaps

    def prepare(self, records: list[Record], kind: str) -> Decoded:
        """A batch decoded, ahead of its turn (pure: no state, no I/O)."""
        return decode_batch(records, self.registry, prefixes(kind))  # prefixes: schemas.events.TOPIC_OF_PREFIX

    async def _write_batch(
        self, records: list[Record], kind: str, prepared: Decoded | None, fence: Fence | None
    ) -> tuple[Folded, Staged]:
        """Fold and write; a record the store refuses is dead-lettered and the batch folded again."""
        # Records read back for a gap were not prepared: decode_batch decodes only those.
        ready = decode_batch(records, self.registry, prefixes(kind), prepared)
        decoded, contents = ready.events, ready.contents
        events = [(source, d) for source, d in decoded.items() if not isinstance(d, DeadLetter)]
        identities = await self._identify(events, contents)
        states = await self._states(order_ids(records, decoded))
        refused: dict[Source, DeadLetter] = {}
        sent: set[Source] = set()
        while True:
            inputs = Inputs(decoded, identities, contents, states, refused)
            folded = fold(records, inputs, self.limits, self.generation.gen, self.settings.max_order_events)
            staged = await self._stage(folded.steps)
            folded.batch.windows = rows(staged)
            unsent = [d for d in folded.batch.deadletters if source_of(d) not in sent]
            await send_deadletters(self.deadletter_topic, unsent)
            sent.update(source_of(d) for d in folded.batch.deadletters)
            try:
                with self.metrics.sink_latency.time():
                    await self.in_store_thread(self.store.write, folded.batch, fence)
                self.known.add(row["event_id"] for row in folded.batch.events)
                return folded, staged
            except StoreFenced:
                raise  # not the records' fault: the batch is given up (_until_done)
            except StoreRaced as raced:  # another worker stored some of its new events meanwhile
                log.info("folding the batch again: %s", raced)
                self.metrics.store_raced.inc(len(raced.event_ids))
                identities = await self._identify(events, contents)
            except Exception as exc:
                isolate = (find_culprits, self.store, folded.batch, records, exc, fence, self.stored_upto)
                refused.update(await self.in_store_thread(*isolate))

    async def _identify(
        self, events: list[tuple[Source, Event]], contents: Mapping[Source, str]
    ) -> dict[Source, Identity]:
        """Each event against what the store holds under its id (looked up only where the filter says maybe)."""
        stored = await self.in_store_thread(self.store.stored, self.known.maybe(e.event_id for _, e in events))
        return identify(events, stored, contents)

    async def _states(self, ids: set[str]) -> dict[str, OrderState | None]:
        """The batch's orders before it: the table's, or ClickHouse's where an import or a
        restatement may have written a newer state (one lookup per batch, only then), read back
        with their timelines."""
        states: dict[str, OrderState | None] = {}
        lookup: list[str] = []
        gen = self.generation.gen
        for order_id in ids:
            state = self.orders.get(order_id)
            states[order_id] = state
            stale = gen and (state is None or state.get("gen", 0) < gen)
            if stale or (state is not None and "facts" not in state):  # or kept by a release before timelines
                lookup.append(order_id)
        if lookup:
            found = await self.in_store_thread(history.read_back, self.store, lookup, self.limits, gen)
            states.update(found)
            if self.generation.kind == RESTORED:
                # Restored from a backup: the table (from its changelog in Kafka) may hold states newer
                # than the store; an order the store does not hold starts again from what Kafka
                # re-delivers after the restored ledger (hotline.sinks.backup).
                states.update({order_id: None for order_id in lookup if order_id not in found})
        return states

    async def _stage(self, steps: list[Step]) -> Staged:
        """The windows these steps change, reading the ones not held here from ClickHouse first."""
        missing = self.windows.missing(steps)
        if missing:
            where = "(source_topic, source_partition) IN %(tps)s AND day IN %(days)s"
            params = {"tps": sorted({w[0] for w in missing}), "days": sorted({w[1][1] for w in missing})}
            loaded = await self.in_store_thread(self.store.windows, where, params)
            self.windows.load(
                [w for w in loaded if ((w.source_topic, w.source_partition), (w.unit_id, w.day)) in missing], missing
            )
        return self.windows.stage(steps)

    async def _back_off(self, exc: Exception, attempt: int) -> None:
        """An outage, not a record: wait (0.5 s doubling to 30 s), say so, and try the batch again."""
        delay = backoff_s(attempt)
        self.health.failing(exc, attempt)
        self.metrics.store_up.set(0)
        self.metrics.store_retries.inc()
        log.warning("batch not stored (attempt %d: %s: %s); retrying in %.1fs", attempt, type(exc).__name__, exc, delay)
        await asyncio.sleep(delay)

    async def _update_lag(self) -> None:
        """Consumer lag per topic: the broker's high-water mark minus what this worker has sunk."""
        lag: Counter[str] = Counter()
        for tp in self.app.consumer.assignment():
            if tp.topic in self.kinds:
                highwater = self.app.consumer.highwater(tp) or 0
                lag[tp.topic] += max(0, highwater - self.positions.get((tp.topic, tp.partition), -1) - 1)
        for topic in self.kinds:
            self.metrics.lag.labels(topic).set(lag[topic])

    # -- alerts -------------------------------------------------------------------------
    async def _on_recover(self) -> None:
        """After a rebalance the table holds the orders of our partitions: owe their alerts."""
        self.alerting.rebuild([*self.orders.items(), *self._foreign.items()])

    def _owns(self, order_id: str) -> bool:
        """Only the worker that owns an order's partition alerts for it."""
        return self._order_tp(order_id) in self.app.consumer.assignment()

def _record(ev: EventT) -> Record:
    message = ev.message
    return Record(Source(message.topic, message.partition, message.offset), message.key, message.value)
