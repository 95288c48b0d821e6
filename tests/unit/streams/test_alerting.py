"""The worker's alerting as wired: its sends through a producer whose broker may be down, and what
the metrics say of them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hotline.settings import Settings
from hotline.streams.alerting import Alerting
from hotline.streams.deadlines import TZ
from hotline.streams.metrics import Metrics
from hotline.streams.observer import BatchObserver
from tests.doubles import FlakyProducer, settle

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=TZ).timestamp()
OVERDUE = {"type": "alert.overdue"}


class World:
    """One order of yuhu due at T0 + 10, the alerting over it with a clock the test sets."""

    def __init__(self, tmp_path: Path, producer: FlakyProducer) -> None:
        self.now = T0
        self.metrics = Metrics()
        state = {"unit": "yuhu", "due": datetime.fromtimestamp(T0 + 10, TZ).isoformat(), "completed_on_time": None}
        settings = Settings(var_dir=tmp_path / "var", alert_leads_s=[])
        self.alerting = Alerting(settings, BatchObserver(self.metrics), {"O1": state}.get, lambda order_id: True)
        self.alerting._producer = producer  # type: ignore[assignment]
        self.alerting.scheduler.clock = lambda: self.now
        self.alerting.track("O1", state)
        self.producer = producer

    async def tick_at(self, offset_s: float) -> None:
        """The scheduler's tick at T0 + ``offset_s``, its deliveries settled."""
        self.now = T0 + offset_s
        await self.alerting.scheduler.fire_due()
        await settle()

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.metrics.registry.get_sample_value(name, labels or {}) or 0.0


@pytest.fixture
def world(tmp_path: Path) -> Any:
    return lambda refusals: World(tmp_path, FlakyProducer(refusals))


async def test_an_alert_arrives_once_the_producer_recovers(world: Any) -> None:
    w = world(2)
    for at in (10, 11, 13, 30):
        await w.tick_at(at)
    assert [(key, json.loads(value)["type"]) for key, value in w.producer.taken] == [(b"yuhu", "alert.overdue")]


async def test_each_refused_send_is_counted(world: Any) -> None:
    w = world(2)
    for at in (10, 11, 13, 30):
        await w.tick_at(at)
    assert w.sample("hotline_alerts_refused_total", OVERDUE) == 2
    assert w.sample("hotline_alerts_sent_total", OVERDUE) == 1


async def test_a_refused_alert_is_logged_with_its_order_unit_and_id(
    world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    w = world(1)
    await w.tick_at(10)
    (line,) = [r.getMessage() for r in caplog.records if "not taken by Kafka" in r.getMessage()]
    aid = w.alerting.scheduler.heap[0].alert_id
    assert "order O1 of unit yuhu" in line and aid in line and "KafkaTimeoutError" in line


async def test_a_send_kafka_takes_goes_out_once_and_is_never_refused(world: Any) -> None:
    w = world(0)
    await w.tick_at(10)
    await w.tick_at(20)
    assert len(w.producer.taken) == 1
    assert w.sample("hotline_alerts_sent_total", OVERDUE) == 1
    assert w.sample("hotline_alerts_refused_total", OVERDUE) == 0
