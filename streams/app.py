"""The Faust app: topics, the per-order table, the two agents and the worker's HTTP pages.

Delivery is at-least-once (faust-streaming's exactly-once mode has open bugs):
a batch is written to ClickHouse *before* its events are acked and before the
order table changes, so a crash at any point replays the batch, and the sink's
event-keyed tables make the replay a no-op.
"""

from __future__ import annotations

import asyncio
import logging

import faust
from faust.types import EventT, StreamT

from hotline.schemas.registry import Registry, registry_at
from hotline.settings import Settings
from hotline.sinks.base import Generation, Store
from hotline.streams.alerting import Alerting
from hotline.streams.assignment import Assignment
from hotline.streams.batches import CALLS, ORDERS, Batches
from hotline.streams.changelog import Changelog, topic_configs
from hotline.streams.deadlines import limits_of
from hotline.streams.faustapp import ledger_app
from hotline.streams.gauges import AgentFigures
from hotline.streams.metrics import Metrics
from hotline.streams.observer import BatchObserver
from hotline.streams.processing import Record, Source
from hotline.streams.reader import BatchReader
from hotline.streams.state import WorkerState
from hotline.streams.store_thread import StoreThread
from hotline.streams.sweeps import Sweeps

log = logging.getLogger(__name__)


class Pipeline:
    """One worker, wired: Faust's app, topics and order table, and the collaborators that do the work.

    Like Quix's ``Application``, it builds and connects; each job is a collaborator's:
    :class:`StoreThread` (the one store and its thread), :class:`WorkerState` (the order table and
    live figures, loaded from the store), :class:`Assignment` (resume from the ledger, claims and
    fencing), :class:`Batches` (admit → fold → store → changelog → progress), :class:`Alerting`
    (the overdue alerts) and :class:`BatchObserver` (the metrics). The pages read the narrow
    attributes below.
    """

    def __init__(self, settings: Settings, registry: Registry | None = None, store: Store | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.metrics.store_up.set(1)
        self.observer = BatchObserver(self.metrics)
        self.stores = StoreThread(settings, store)
        self.in_store_thread = self.stores.run
        self.app = ledger_app(settings)
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
            extra_topic_configs=topic_configs(settings.changelog_segment_s),
        )
        producer = {"linger_ms": 5, **settings.producer_options(), **settings.kafka_client_options()}
        changelog = Changelog(self.orders, settings.partitions, producer)
        self.state = WorkerState(settings, self.orders, changelog, self.stores, limits_of(settings))
        # The registry given, else the office's (HOTLINE_UNITS_FILE or the profile's), until the store's opens.
        self.state.registry = registry or registry_at(settings.units_file)
        self.state.registry_given = registry is not None
        lock = asyncio.Lock()  # one batch at a time, and no batch while an assignment is resumed
        self.assignment = Assignment(
            self.app, settings, self.stores, self.state, self.metrics, lock, lambda: self.batches.settle()
        )
        self.claims, self.ledger = self.assignment.claims, self.assignment.ledger
        self.batches = Batches(
            settings,
            self.stores,
            self.state,
            self.claims,
            self.ledger,
            self.assignment.recorded,
            self.deadletter_topic,
            self.observer,
            lock,
        )
        self.health, self.process, self.settle = self.batches.health, self.batches.process, self.batches.settle
        self.alerting = Alerting(settings, self.observer, self.state.order_state, self.assignment.owns)
        self.state.on_change = self.alerting.track
        self.feed, self.scheduler = self.alerting.feed, self.alerting.scheduler  # read by the pages
        self.sweeps = Sweeps(self.batches, self.assignment.owns)
        self.reader = self._reader()
        self.assignment.connect(self.reader)
        self._schedule()

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

    def _reader(self) -> BatchReader | None:
        """Batch ingest reads the assigned partitions itself (``streams/reader.py``); stream ingest
        leaves them to Faust's agents."""
        if self.settings.ingest != "batch":
            return None
        reader = BatchReader(
            self.settings.kafka_client_options(),
            self.kinds,
            self.batches.prepare,
            self.batches.process,
            self.settings.batch_size,
            self.settings.batch_within_s,
        )
        self.app.task(reader.run)
        return reader

    def _schedule(self) -> None:
        """The agents, the timers and the store's opening, as Faust runs them."""
        settings = self.settings
        self.orders.on_recover(self._on_recover)
        self.alerting.register(self.app)
        self.app.timer(1.0)(self.assignment.update_lag)
        self.app.timer(settings.store_claim_lease_s / 3)(self.assignment.renew_claim)
        self.app.timer(min(3600.0, settings.orphan_wait_s / 4))(self.sweep_orphans)
        if settings.evict_after_s:
            self.app.timer(min(settings.evict_sweep_s, max(0.5, settings.evict_after_s / 4)))(self.sweeps.evictions)
        self.app.agent(self.calls_topic, name="calls")(self._calls_agent)
        self.app.agent(self.orders_topic, name="orders")(self._orders_agent)
        self.app.starting = self.state.open

    @property
    def store(self) -> Store:
        """The process's one store, opened once (``StoreThread``)."""
        return self.stores.store

    @property
    def registry(self) -> Registry:
        """The unit registry the worker decodes with (the store's version once it is open)."""
        return self.state.registry

    @property
    def positions(self) -> dict[tuple[str, int], int]:
        """The last offset stored per source partition with its progress recorded (for lag and the screen)."""
        return dict(self.assignment.recorded)

    @property
    def figures(self) -> AgentFigures:
        """The live figures the screen and ``/metrics`` read (replaced on every assignment)."""
        return self.state.figures

    @property
    def generation(self) -> Generation:
        """The state generation (imports, restatements) the live figures follow."""
        return self.state.generation

    async def sweep_orphans(self) -> None:
        """Dead-letter the events of orders never dispatched (``Sweeps.orphans``)."""
        await self.sweeps.orphans()

    async def _on_recover(self) -> None:
        """After a rebalance the table holds the orders of our partitions: owe their alerts."""
        self.alerting.rebuild(self.state.every_order())

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


def _record(ev: EventT) -> Record:
    message = ev.message
    return Record(Source(message.topic, message.partition, message.offset), message.key, message.value)
