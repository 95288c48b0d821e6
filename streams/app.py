"""The Faust app: topics, the per-order table, the two agents and the worker's HTTP pages.

Delivery is at-least-once (faust-streaming's exactly-once mode has open bugs):
a batch is written to ClickHouse *before* its events are acked and before the
order table changes, so a crash at any point replays the batch, and the sink's
event-keyed tables make the replay a no-op.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from faust.types import TP, EventT, StreamT

from hotline.settings import Settings
from schemas.registry import Registry, default_registry
from sinks.clickhouse import Batch, ClickHouseSink, DeadLetter
from streams.alerts import OVERDUE, AlertFeed, AlertScheduler, key_partition
from streams.deadlines import DEFAULT_LIMITS
from streams.metrics import Metrics
from streams.processing import OrderState, Source, apply_order_event, decode, event_row
from streams.webhooks import WebhookDelivery

log = logging.getLogger(__name__)


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """SASL/SSL for a managed cluster; ``None`` for the local PLAINTEXT broker."""
    context = settings.kafka_ssl_context()
    if settings.kafka_sasl_mechanism:
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


class Pipeline:
    """One worker's wiring: the app, its topics and table, and the process's only sink."""

    def __init__(
        self, settings: Settings, registry: Registry | None = None, sink: ClickHouseSink | None = None
    ) -> None:
        self.settings = settings
        self.registry = registry or default_registry()
        self._sink = sink
        self._sink_guard = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        self.metrics = Metrics()
        self.positions: dict[tuple[str, int], int] = {}
        self._alert_producer: AIOKafkaProducer | None = None
        self.app = faust.App(
            settings.app_id,
            broker=[f"kafka://{b}" for b in settings.kafka_bootstrap.split(",")],
            broker_credentials=broker_credentials(settings),
            store=settings.table_store,
            topic_partitions=settings.partitions,
            topic_replication_factor=settings.replication_factor,
            processing_guarantee="at_least_once",
            web_host=settings.web_host,
            web_port=settings.web_port,
            web_in_thread=False,
            datadir=str(settings.var_path / "faust"),
            consumer_auto_offset_reset="earliest",
            broker_commit_every=settings.batch_size,
            broker_commit_interval=1.0,
            broker_session_timeout=settings.session_timeout_s,
            broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        )
        self.calls_topic = self._raw_topic(settings.calls_topic)
        self.orders_topic = self._raw_topic(settings.orders_topic)
        self.deadletter_topic = self._raw_topic(settings.deadletter_topic)
        # use_partitioner: a batch writes keys from several partitions, so each
        # changelog record must go where the key hashes, as the order topic does.
        self.orders = self.app.Table(
            "order-state",
            default=None,
            key_type=str,
            partitions=settings.partitions,
            use_partitioner=True,
        )
        self.limits = {**DEFAULT_LIMITS, **settings.deadline_days}
        self.feed = AlertFeed(settings.alerts_topic, settings.kafka_client_options())
        self.scheduler = AlertScheduler(
            self.feed,
            self.orders.get,
            self._owns,
            self._send_alert,
            settings.alert_leads_s,
            settings.alert_horizon_s,
            observe=self._observe_alert,
        )
        self.webhooks = WebhookDelivery(settings.webhooks, settings.webhook_attempts)
        self.orders.on_recover(self._on_recover)
        self.app.task(self.feed.run)
        self.app.task(self._run_scheduler)
        self.app.task(self.webhooks.run)
        self.app.timer(1.0)(self._update_lag)
        self.app.agent(self.calls_topic, name="calls")(self._calls_agent)
        self.app.agent(self.orders_topic, name="orders")(self._orders_agent)
        self.app.task(self._on_start)
        from streams import web

        web.register(self)

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

    # -- sink ---------------------------------------------------------------------------
    @property
    def sink(self) -> ClickHouseSink:
        """The process's one sink, opened once: a second chDB client racing the first lost writes."""
        with self._sink_guard:
            if self._sink is None:
                sink = ClickHouseSink(self.settings)
                sink.migrate()
                self._sink = sink
            return self._sink

    async def in_sink_thread(self, fn: Any, *args: Any) -> Any:
        """chDB calls block; run them off the event loop, one at a time."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _on_start(self) -> None:
        await self.in_sink_thread(lambda: self.sink)
        log.info("sink ready: %s", self.settings.resolved_clickhouse_dsn.split("@")[-1])

    # -- agents -------------------------------------------------------------------------
    async def _calls_agent(self, stream: StreamT[bytes]) -> None:
        async for events in stream.take_events(  # type: ignore[attr-defined]  # faust-streaming API, not in StreamT
            self.settings.batch_size, within=self.settings.batch_within_s
        ):
            await _or_exit(self.process_calls(events))

    async def _orders_agent(self, stream: StreamT[bytes]) -> None:
        async for events in stream.take_events(  # type: ignore[attr-defined]  # faust-streaming API, not in StreamT
            self.settings.batch_size, within=self.settings.batch_within_s
        ):
            await _or_exit(self.process_orders(events))

    async def process_calls(self, events: Sequence[EventT]) -> Batch:
        batch = Batch([], [], [], {})
        for ev in events:
            source = _source(ev)
            decoded = decode(ev.message.value, source, self.registry, ("call.",))
            if isinstance(decoded, DeadLetter):
                batch.deadletters.append(decoded)
            else:
                batch.events.append(event_row(decoded, source))
            _checkpoint(batch, source)
        await self._commit(batch, events)
        return batch

    async def process_orders(self, events: Sequence[EventT]) -> Batch:
        batch = Batch([], [], [], {})
        changed: dict[str, OrderState] = {}
        for ev in events:
            source = _source(ev)
            decoded = decode(ev.message.value, source, self.registry, ("order.",))
            _checkpoint(batch, source)
            if isinstance(decoded, DeadLetter):
                batch.deadletters.append(decoded)
                continue
            order_id = str(decoded.order_id)  # type: ignore[union-attr]  # decode() checked the topic
            state = changed[order_id] if order_id in changed else self.orders.get(order_id)
            step = apply_order_event(state, decoded, source, self.limits)
            if step.duplicate:
                self.metrics.duplicates.inc()
                log.debug("duplicate %s of order %s at %s", decoded.event_id, order_id, source)
                continue
            changed[order_id] = step.state
            if step.row is not None:
                batch.events.append(step.row)
            batch.counters.extend(step.counters)
        await self._commit(batch, events)
        # One table write per order per batch, after the sink holds the batch.
        for order_id, state in changed.items():
            self.orders[order_id] = state
            self.scheduler.schedule(order_id, state)
        return batch

    async def _update_lag(self) -> None:
        """Consumer lag per topic: the broker's high-water mark minus what this worker has sunk."""
        lag: Counter[str] = Counter()
        for tp in self.app.consumer.assignment():
            if tp.topic in (self.settings.calls_topic, self.settings.orders_topic):
                highwater = self.app.consumer.highwater(tp) or 0
                lag[tp.topic] += max(0, highwater - self.positions.get((tp.topic, tp.partition), -1) - 1)
        for topic in (self.settings.calls_topic, self.settings.orders_topic):
            self.metrics.lag.labels(topic).set(lag[topic])

    def _observe_alert(self, kind: str, lateness_s: float) -> None:
        if kind == "suppressed":
            self.metrics.alerts_suppressed.inc()
            return
        self.metrics.alerts.labels("alert.overdue" if kind == OVERDUE else "alert.due_soon").inc()
        self.metrics.alert_lateness.observe(lateness_s)

    # -- alerts -------------------------------------------------------------------------
    async def _on_recover(self) -> None:
        """After a rebalance the table holds the orders of our partitions: owe their alerts."""
        self.scheduler.rebuild(list(self.orders.items()))
        log.info("alert schedule rebuilt from %d orders", len(self.scheduler.heap))

    async def _run_scheduler(self) -> None:
        # Alerts go out through a producer of their own: Faust's buffer sends one record per
        # round trip, which a burst of deadlines (a restart, rounded due times) would queue behind.
        self._alert_producer = AIOKafkaProducer(acks="all", linger_ms=2, **self.settings.kafka_client_options())
        await self._alert_producer.start()
        try:
            await self.scheduler.run(self.settings.alert_tick_s)
        finally:
            await self._alert_producer.stop()

    def _owns(self, order_id: str) -> bool:
        """Only the worker that owns an order's partition alerts for it."""
        partition = key_partition(order_id, self.settings.partitions)
        return TP(self.settings.orders_topic, partition) in self.app.consumer.assignment()

    async def _send_alert(self, unit_id: str, value: bytes) -> None:
        """Queue the alert and return; a failed delivery is logged (the restart's feed resends it)."""
        assert self._alert_producer is not None, "scheduler not started"
        delivery = await self._alert_producer.send(self.settings.alerts_topic, value=value, key=unit_id.encode())
        delivery.add_done_callback(_log_failed_alert)
        self.webhooks.offer(json.loads(value))

    async def _commit(self, batch: Batch, events: Sequence[EventT]) -> None:
        with self.metrics.sink_latency.time():
            await self.in_sink_thread(self.sink.write, batch)
        self.positions.update(batch.offsets)
        for (topic, _), count in Counter((ev.message.topic, 0) for ev in events).items():
            self.metrics.events.labels(topic).inc(count)
        for dead in batch.deadletters:
            self.metrics.deadletters.labels(dead.source_topic).inc()
            log.warning(
                "dead letter %s[%s]@%s: %s", dead.source_topic, dead.source_partition, dead.source_offset, dead.error
            )
            await self.deadletter_topic.send(
                key=None,
                value=dead.raw,
                headers={
                    "hotline.error": dead.error.encode(),
                    "hotline.source.topic": dead.source_topic.encode(),
                    "hotline.source.partition": str(dead.source_partition).encode(),
                    "hotline.source.offset": str(dead.source_offset).encode(),
                },
            )
        if events:
            log.info(
                "sank %d records (%d events, %d counters, %d dead letters) from %s",
                len(events),
                len(batch.events),
                len(batch.counters),
                len(batch.deadletters),
                _ranges(events),
            )


async def _or_exit(batch: Coroutine[Any, Any, Batch]) -> None:
    """A batch that fails must not be acked: Faust's ``take_events`` acks in a ``finally``, and a
    restarted agent would go on past it. Exiting at once leaves its offsets uncommitted, so the
    restarted worker (systemd, the supervisor) reads the batch again."""
    try:
        await batch
    except Exception:
        log.critical("batch failed; exiting so that it is not acknowledged", exc_info=True)
        logging.shutdown()
        os._exit(70)


def _ranges(events: Sequence[EventT]) -> str:
    """``topic[partition] first-last`` of a batch: where to look when a figure is questioned."""
    spans: dict[tuple[str, int], list[int]] = {}
    for ev in events:
        span = spans.setdefault((ev.message.topic, ev.message.partition), [ev.message.offset, ev.message.offset])
        span[0], span[1] = min(span[0], ev.message.offset), max(span[1], ev.message.offset)
    return ", ".join(f"{t}[{p}] {lo}-{hi}" for (t, p), (lo, hi) in sorted(spans.items()))


def _log_failed_alert(delivery: asyncio.Future[Any]) -> None:
    if not delivery.cancelled() and delivery.exception() is not None:
        log.error("alert not delivered to Kafka: %r", delivery.exception())


def _source(ev: EventT) -> Source:
    return Source(ev.message.topic, ev.message.partition, ev.message.offset)


def _checkpoint(batch: Batch, source: Source) -> None:
    key = (source.topic, source.partition)
    batch.offsets[key] = max(batch.offsets.get(key, -1), source.offset)
