"""Escalation on the real broker: an overdue alert not acknowledged in time is escalated once; an
acknowledged one is not; and both hold across a worker SIGKILLed before, or right after, the
escalation, or while the unit signs for (签收) the alert."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
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
# Across a crash: long enough for a killed worker to be restarted before the escalation falls due,
# its partitions freed by a short session (the dead member's wait) rather than the default 10 s.
CRASH_ESCALATE_AFTER_S = 12.0
CRASH_SESSION_TIMEOUT_S = 6.0
# A restarted worker escalates once it has started, rejoined the group (after the dead member's
# session expired), recovered its order table and read the alerts topic up to its end: a few
# seconds on a quiet machine, allowed generously on a busy one.
RESTART_SLACK_S = 15.0


@pytest.fixture
def escalating(isolated: Settings) -> Settings:
    return isolated.model_copy(update={"alert_leads_s": [], "alert_escalate_after_s": ESCALATE_AFTER_S})


@pytest.fixture
def escalation_worker(escalating: Settings) -> Any:
    w = Worker(escalating)
    yield w.start()
    w.stop()


@pytest.fixture
def crash_escalating(isolated: Settings) -> Settings:
    return isolated.model_copy(
        update={
            "alert_leads_s": [],
            "alert_escalate_after_s": CRASH_ESCALATE_AFTER_S,
            "session_timeout_s": CRASH_SESSION_TIMEOUT_S,
        }
    )


@pytest.fixture
def crashing_worker(crash_escalating: Settings) -> Iterator[Worker]:
    w = Worker(crash_escalating)
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


def _of(found: list[dict[str, Any]], kind: str, order_id: str) -> list[dict[str, Any]]:
    return [a for a in found if a["type"] == f"alert.{kind}" and a["order_id"] == order_id]


def _at(alert: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(alert["emitted_at"])


def _overdue_then_kill(settings: Settings, worker: Worker, order_id: str, tmp_path: Path) -> dict[str, Any]:
    """The order is dispatched due in 2 s; once its overdue alert is on the topic the worker is SIGKILLed."""
    _send(settings, tmp_path, [dispatch(order_id, "yuhu", datetime.now(TZ), 2)])
    found = wait_for_alerts(settings, lambda f: bool(_of(f, "overdue", order_id)))
    worker.kill()
    (overdue,) = _of(found, "overdue", order_id)
    return overdue


def _probe(settings: Settings, tmp_path: Path, after: datetime) -> list[dict[str, Any]]:
    """Every alert on the topic once the running worker has fired an alert due after ``after``.

    The probe's overdue alert goes out only from a worker whose feed read the topic to its end
    (the scheduler waits for it), that owns the order's partition and has its order table: so
    that worker ran the schedule past ``after``. The probe is the same unit's, so its alert lands
    on the same partition, after any alert its scheduler fired before it (earlier in the schedule):
    a duplicate escalation due before ``after`` would be on the topic by then."""
    order_id = f"P{time.monotonic_ns()}"
    now = datetime.now(TZ)
    due_in = max(1.0, (after - now).total_seconds() + 1.0)
    _send(settings, tmp_path, [dispatch(order_id, "yuhu", now, due_in)])
    return wait_for_alerts(settings, lambda f: bool(_of(f, "overdue", order_id)), timeout=120)


def test_a_worker_killed_before_the_escalation_falls_due_escalates_once_after_its_restart(
    crash_escalating: Settings, crashing_worker: Worker, tmp_path: Path
) -> None:
    overdue = _overdue_then_kill(crash_escalating, crashing_worker, "K1", tmp_path)
    killed = datetime.now(TZ)
    crashing_worker.start()
    found = wait_for_alerts(crash_escalating, lambda f: bool(_of(f, "escalated", "K1")), timeout=120)
    (escalated,) = _of(found, "escalated", "K1")
    found = _probe(crash_escalating, tmp_path, after=_at(escalated))
    assert [a["alert_id"] for a in _of(found, "escalated", "K1")] == [escalated["alert_id"]]
    assert escalated["overdue_alert_id"] == overdue["alert_id"]
    # Never before the unit had its full time to sign for the alert; at the latest a restart's
    # slack after whichever came later: the escalation's due time, or the dead member's session
    # expiring (before then the killed worker's partitions cannot move to the restarted one).
    falls_due = _at(overdue) + timedelta(seconds=CRASH_ESCALATE_AFTER_S)
    movable = killed + timedelta(seconds=CRASH_SESSION_TIMEOUT_S)
    assert falls_due <= _at(escalated) <= max(falls_due, movable) + timedelta(seconds=RESTART_SLACK_S)


def test_a_worker_killed_right_after_escalating_does_not_escalate_again_after_its_restart(
    crash_escalating: Settings, crashing_worker: Worker, tmp_path: Path
) -> None:
    _send(crash_escalating, tmp_path, [dispatch("K2", "yuhu", datetime.now(TZ), 2)])
    found = wait_for_alerts(crash_escalating, lambda f: bool(_of(f, "escalated", "K2")), timeout=120)
    crashing_worker.kill()
    (escalated,) = _of(found, "escalated", "K2")
    crashing_worker.start()
    found = _probe(crash_escalating, tmp_path, after=_at(escalated))
    assert [a["alert_id"] for a in _of(found, "escalated", "K2")] == [escalated["alert_id"]]


def test_an_alert_acknowledged_while_the_worker_is_down_is_not_escalated_after_its_restart(
    crash_escalating: Settings, crashing_worker: Worker, tmp_path: Path
) -> None:
    overdue = _overdue_then_kill(crash_escalating, crashing_worker, "K3", tmp_path)
    acknowledge(crash_escalating, overdue)
    crashing_worker.start()
    falls_due = _at(overdue) + timedelta(seconds=CRASH_ESCALATE_AFTER_S)
    found = _probe(crash_escalating, tmp_path, after=falls_due)
    assert _of(found, "escalated", "K3") == []
