"""Supervision due (督办) on the real broker: the second unsatisfied visit raises one alert, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hotline.settings import Settings
from hotline.streams.deadlines import TZ
from tests.factories import event
from tests.integration.conftest import Worker
from tests.integration.test_alerts import _iso, _send, wait_for_alerts

pytestmark = pytest.mark.integration


@pytest.fixture
def alerting(isolated: Settings) -> Settings:
    """A short session timeout, so a killed worker's partitions come back quickly."""
    return isolated.model_copy(update={"session_timeout_s": 6.0})


@pytest.fixture
def alert_worker(alerting: Settings) -> Iterator[Worker]:
    w = Worker(alerting)
    yield w.start()
    w.stop()

SUPERVISION_DUE = "alert.supervision_due"


def visited_order(order_id: str, unsatisfied: int, unit_id: str = "yuhu") -> list[dict[str, Any]]:
    """An order dispatched (due tomorrow), completed, then visited ``unsatisfied`` times, unsatisfied."""
    now = datetime.now(TZ)
    fields = {"order_id": order_id, "unit_id": unit_id}
    events = [
        event("order.dispatched", **fields, occurred_at=_iso(now), due_at=_iso(now + timedelta(days=1))),
        event("order.completed", **fields, occurred_at=_iso(now + timedelta(milliseconds=1))),
    ]
    for n in range(unsatisfied):
        at = _iso(now + timedelta(milliseconds=2 + n))
        events.append(event("order.visited", **fields, outcome="unsatisfied", occurred_at=at))
    return events


def supervision_alerts(found: list[dict[str, Any]], order_id: str) -> list[dict[str, Any]]:
    return [a for a in found if a["type"] == SUPERVISION_DUE and a["order_id"] == order_id]


def test_the_second_unsatisfied_visit_raises_exactly_one_supervision_due_alert(
    alerting: Settings, alert_worker: Worker, tmp_path: Path
) -> None:
    _send(alerting, tmp_path, visited_order("S1", unsatisfied=1) + visited_order("S2", unsatisfied=3))
    # A later order due for supervision: once its alert is out, every earlier one owed is too.
    _send(alerting, tmp_path, visited_order("MARK1", unsatisfied=2))
    found = wait_for_alerts(alerting, lambda f: supervision_alerts(f, "MARK1"))
    assert supervision_alerts(found, "S1") == []
    [alert] = supervision_alerts(found, "S2")
    assert (alert["unit_id"], alert["_key"]) == ("yuhu", "yuhu")


def test_a_sigkill_after_the_alert_does_not_send_it_again(
    alerting: Settings, alert_worker: Worker, tmp_path: Path
) -> None:
    _send(alerting, tmp_path, visited_order("K1", unsatisfied=2, unit_id="police"))
    wait_for_alerts(alerting, lambda f: supervision_alerts(f, "K1"))
    alert_worker.kill()  # SIGKILL: the restarted worker rebuilds what it owes from the order table
    alert_worker.start()
    _send(alerting, tmp_path, visited_order("MARK2", unsatisfied=2))
    found = wait_for_alerts(alerting, lambda f: supervision_alerts(f, "MARK2"))
    assert len(supervision_alerts(found, "K1")) == 1
