"""Overdue alerts leave the worker here: their own producer, the scheduler over the orders'
deadlines and the feed of what was already sent. Delivery to people is ``hotline notify``'s
(``streams/notify.py``), from the alerts topic: the worker POSTs nothing.

The scheduler only reads order state (``streams/alerts.py``); the pipeline tells it when an order
changed (:meth:`Alerting.track`) and when the order table was recovered (:meth:`Alerting.rebuild`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaProducer

from hotline.settings import Settings
from hotline.streams.alerts import AlertFeed, AlertScheduler
from hotline.streams.observer import BatchObserver

log = logging.getLogger("hotline.streams.app")


class Alerting:
    """The alerts of the orders this worker owns: scheduled and sent once, to the alerts topic."""

    def __init__(
        self,
        settings: Settings,
        observer: BatchObserver,
        order_state: Callable[[str], Mapping[str, Any] | None],
        owns: Callable[[str], bool],
    ) -> None:
        self.settings = settings
        self.feed = AlertFeed(settings.alerts_topic, settings.kafka_client_options())
        self.scheduler = AlertScheduler(
            self.feed,
            order_state,
            owns,
            self.send,
            settings.alert_leads_s,
            settings.alert_horizon_s,
            observe=observer.alert,
            escalate_after_s=settings.alert_escalate_after_s,
            refused=observer.alert_refused,
        )
        self._producer: AIOKafkaProducer | None = None

    def register(self, app: faust.App) -> None:
        """The feed and the scheduler run as the app's tasks."""
        app.task(self.feed.run)
        app.task(self.run)

    def track(self, order_id: str, state: Mapping[str, Any] | None) -> None:
        """An order changed: the alerts it is owed follow its state."""
        self.scheduler.schedule(order_id, state)

    def rebuild(self, orders: Iterable[tuple[str, Any]]) -> None:
        """After a rebalance the table holds the orders of this worker's partitions: owe their alerts."""
        self.scheduler.rebuild(list(orders))
        log.info("alert schedule rebuilt from %d orders", len(self.scheduler.heap))

    async def run(self) -> None:
        # Alerts go out through a producer of their own: Faust's buffer sends one record per
        # round trip, which a burst of deadlines (a restart, rounded due times) would queue behind.
        self._producer = AIOKafkaProducer(
            linger_ms=2, **self.settings.producer_options(), **self.settings.kafka_client_options()
        )
        await self._producer.start()
        try:
            await self.scheduler.run(self.settings.alert_tick_s)
        finally:
            await self._producer.stop()

    async def send(self, unit_id: str, value: bytes) -> asyncio.Future[Any]:
        """Queue the alert and return its delivery: the scheduler notes it sent once Kafka has it,
        and owes it again if Kafka refuses it (``AlertScheduler.failed``)."""
        assert self._producer is not None, "scheduler not started"
        delivery: asyncio.Future[Any] = await self._producer.send(
            self.settings.alerts_topic, value=value, key=unit_id.encode()
        )
        return delivery
