"""``hotline notify``: delivers the alerts topic to people, as a process of its own.

Why a process and not a task of the worker: the worker's hot path (and its exactly-once alert
timer) stays as it is, a slow or dead robot cannot hold a worker back, and the notifier restarts
on its own. It reads the alerts topic in its own consumer group (``HOTLINE_NOTIFY_GROUP``), so every
alert reaches it once per group whichever worker sent it.

Offsets are committed only once each alert read is *durably recorded*: queued for each of its
unit's destinations as a ``pending`` row of the delivery log (``alert_deliveries``), or already
there. Committing before delivery keeps one dead receiver from holding back the topic (and every
other unit); the pending rows are what a restart resumes from, so nothing committed is lost. An
alert read again after a crash (offsets not yet committed) finds its rows and is not queued twice.
An acknowledgement (签收) on the topic is recorded too, once (``streams/acks.py``: ``topic_ack_row``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import generate_latest

from hotline.schemas.events import TZ, AlertAcknowledged, parse_event
from hotline.settings import Settings
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.tables import ALERT_DELIVERIES
from hotline.streams.acks import Acknowledgements, Produce, topic_ack_row
from hotline.streams.channels import Destination, ack_links
from hotline.streams.delivery import Deliveries, DeliveryMetrics, LogRow, http_post

log = logging.getLogger(__name__)

READ_BATCH = 500  # alerts read, recorded pending and committed at a time
REQUEST_TIMEOUT_S = 10.0


def destinations(settings: Settings) -> list[Destination]:
    """Every unit's configured channels, as destinations named ``unit/channel/index``."""
    return [
        Destination(
            unit_id=unit,
            channel=c.channel,
            url=c.url,
            secret=c.secret,
            phones=tuple(c.phones),
            kinds=frozenset(c.kinds),
            per_minute=c.per_minute,
            index=i,
        )
        for unit, channels in settings.alert_channels.items()
        for i, c in enumerate(channels)
    ]


def log_settings(settings: Settings) -> Settings:
    """Where the delivery log is kept: the ClickHouse server when there is one, else a chDB directory
    of the notifier's own (one process holds a chDB directory, and the worker holds its own)."""
    if settings.clickhouse_dsn:
        return settings
    return settings.model_copy(update={"clickhouse_dsn": f"chdb://{settings.var_path / 'notify-clickhouse'}"})


def _at(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, TZ)


def _ts(value: Any) -> float | None:
    return None if value is None else float(value.timestamp())


class ClickHouseLog:
    """The delivery log in the ``alert_deliveries`` table (the latest version per destination and alert)."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store

    def record(self, rows: list[LogRow]) -> None:
        if rows:
            self.store.insert(ALERT_DELIVERIES, [self._values(r) for r in rows])

    @staticmethod
    def _values(r: LogRow) -> list[Any]:
        return [
            r.destination,
            r.alert_id,
            r.unit_id,
            r.channel,
            r.status,
            r.attempts,
            _at(r.first_try),
            _at(r.last_try),
            _at(r.delivered_at),
            r.last_error,
            r.alert,
            r.version,
        ]

    def load(self, since_version: int) -> list[LogRow]:
        rows = self.store.query_rows(
            f"SELECT {', '.join(ALERT_DELIVERIES.names)} FROM {{db}}.alert_deliveries FINAL WHERE version >= %(since)s",
            {"since": since_version},
        )
        return [
            LogRow(
                destination=str(r["destination"]),
                alert_id=str(r["alert_id"]),
                unit_id=str(r["unit_id"]),
                channel=str(r["channel"]),
                status=str(r["status"]),
                attempts=int(r["attempts"]),
                first_try=_ts(r["first_try"]),
                last_try=_ts(r["last_try"]),
                delivered_at=_ts(r["delivered_at"]),
                last_error=str(r["last_error"]),
                alert=str(r["alert"]),
                version=int(r["version"]),
            )
            for r in rows
        ]


def read_alert(value: bytes | None) -> dict[str, Any] | AlertAcknowledged:
    """An alert to deliver, as JSON; an acknowledgement (签收) as the event, to record; ValueError
    for anything else (skipped and counted: never fatal)."""
    event = parse_event(value or b"")
    if isinstance(event, AlertAcknowledged):
        return event
    if not event.type.startswith("alert."):
        raise ValueError(f"an event of type {event.type!r}, not an alert")
    alert: dict[str, Any] = event.model_dump(mode="json")
    return alert


class Notifier:
    """The consumer of the alerts topic feeding the delivery engine."""

    def __init__(self, settings: Settings, engine: Deliveries) -> None:
        self.settings = settings
        self.engine = engine
        self.skipped = 0

    async def consume(self) -> None:
        consumer = AIOKafkaConsumer(
            self.settings.alerts_topic,
            group_id=self.settings.notify_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **self.settings.kafka_client_options(),
        )
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=200, max_records=READ_BATCH)
                if batch:
                    await self.take([r.value for records in batch.values() for r in records])
                    await consumer.commit()  # only now: every alert read is recorded pending (or known)
        finally:
            await consumer.stop()

    async def take(self, values: Iterable[bytes | None]) -> None:
        rows: list[LogRow] = []
        for value in values:
            try:
                alert = read_alert(value)
            except ValueError as exc:
                self.skipped += 1
                log.warning("a record of the alerts topic skipped: %s", type(exc).__name__)
                continue
            if isinstance(alert, AlertAcknowledged):  # made on a worker's unit page or by a link
                rows.extend(self.engine.once(topic_ack_row(alert)))
            else:
                rows.extend(self.engine.offer(alert))
        await self.engine.record(rows)


async def serve(metrics: DeliveryMetrics, acks: Acknowledgements | None, host: str, port: int) -> web.AppRunner:
    """``/metrics``, and the 签收 pages when acknowledgements are on."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", handle)
    if acks is not None:
        acks.routes(app)
    runner = web.AppRunner(app, access_log=None)  # a 签收 link's query is a credential: never logged
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run(settings: Settings) -> None:
    """Open the delivery log, resume what is pending, then consume and deliver until cancelled."""
    store = ClickHouseStore(log_settings(settings))
    await asyncio.to_thread(store.migrate)
    metrics = DeliveryMetrics()
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    secret = settings.ack_secret
    # 签收 presses go to the alerts topic through a producer of their own (only with links on)
    producer = AIOKafkaProducer(**settings.producer_options(), **settings.kafka_client_options()) if secret else None
    async with aiohttp.ClientSession(timeout=timeout) as session:
        if producer is not None:
            await producer.start()
        delivery_log = ClickHouseLog(store)
        acks = None
        if secret and producer is not None:
            acks = Acknowledgements(secret, _producing(producer, settings.alerts_topic), delivery_log)
        engine = Deliveries(
            destinations(settings),
            delivery_log,
            http_post(session),
            ttl_s=settings.notify_ttl_s,
            max_retry_s=settings.notify_retry_max_s,
            metrics=metrics,
            link=ack_links(settings.ack_url, secret) if secret else None,
        )
        resumed = engine.resume()
        log.info(
            "notify: %d destinations (%s), %d alerts resumed pending",
            len(engine.outboxes),
            json.dumps(sorted(engine.outboxes)),
            resumed,
        )
        runner = await serve(metrics, acks, settings.notify_host, settings.notify_port)
        tasks = [asyncio.create_task(engine.run()), asyncio.create_task(Notifier(settings, engine).consume())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await runner.cleanup()
            if producer is not None:
                await producer.stop()
            store.close()


def _producing(producer: AIOKafkaProducer, topic: str) -> Produce:
    async def produce(key: str, value: bytes) -> None:
        await producer.send_and_wait(topic, value, key=key.encode())

    return produce


async def until_stopped(settings: Settings) -> None:
    """:func:`run` until SIGTERM or SIGINT, which cancel it inside the loop: the consumer then leaves
    its group cleanly (a KeyboardInterrupt raised anywhere in the loop broke its connection, and the
    leave timed out), and the delivery log is closed."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await run(settings)
