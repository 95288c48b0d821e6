"""Escalation on the real broker: an overdue alert not acknowledged in time is escalated once; an
acknowledged one is not."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from hotline.schemas.events import AlertAcknowledged, dump_event
from hotline.settings import Settings
from hotline.streams.deadlines import TZ
from tests.integration.conftest import Worker
from tests.integration.test_alerts import _send, alerts, dispatch, wait_for_alerts

pytestmark = pytest.mark.integration

ESCALATE_AFTER_S = 4.0


@pytest.fixture
def escalating(isolated: Settings) -> Settings:
    return isolated.model_copy(update={"alert_leads_s": [], "alert_escalate_after_s": ESCALATE_AFTER_S})


@pytest.fixture
def escalation_worker(escalating: Settings) -> Any:
    w = Worker(escalating)
    yield w.start()
    w.stop()


def acknowledge(settings: Settings, overdue: dict[str, Any]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(**settings.producer_options(), **settings.kafka_client_options())
        await producer.start()
        try:
            ack = AlertAcknowledged(
                event_id=f"ack-{overdue['alert_id']}",
                occurred_at=datetime.now(TZ),
                alert_id=overdue["alert_id"],
                unit_id=overdue["unit_id"],
            )
            await producer.send_and_wait(settings.alerts_topic, dump_event(ack), key=overdue["unit_id"].encode())
        finally:
            await producer.stop()

    asyncio.run(send())


def test_an_unacknowledged_overdue_alert_is_escalated_once_an_acknowledged_one_never(
    escalating: Settings, escalation_worker: Worker, tmp_path: Path
) -> None:
    now = datetime.now(TZ)
    _send(escalating, tmp_path, [dispatch("E1", "yuhu", now, 5), dispatch("E2", "police", now, 5)])
    found = wait_for_alerts(escalating, lambda f: sum(a["type"] == "alert.overdue" for a in f) == 2)
    acknowledge(escalating, next(a for a in found if a["order_id"] == "E2"))
    found = wait_for_alerts(escalating, lambda f: any(a["type"] == "alert.escalated" for a in f))
    overdue_e1 = next(a for a in found if a["type"] == "alert.overdue" and a["order_id"] == "E1")
    (escalated,) = [a for a in alerts(escalating, settle_s=2.0) if a["type"] == "alert.escalated"]
    assert (escalated["order_id"], escalated["overdue_alert_id"]) == ("E1", overdue_e1["alert_id"])
    waited = datetime.fromisoformat(escalated["emitted_at"]) - datetime.fromisoformat(overdue_e1["emitted_at"])
    assert ESCALATE_AFTER_S <= waited.total_seconds() < ESCALATE_AFTER_S + 2
