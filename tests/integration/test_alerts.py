"""Overdue alerts on the real broker: due-soon and overdue on time, once, to the right unit."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer

from hotline.client import worker_get
from hotline.replay import produce, read_records
from hotline.settings import Settings
from hotline.streams.deadlines import TZ
from tests.factories import event
from tests.integration.conftest import Worker

pytestmark = pytest.mark.integration

TOKENS = {"tok-yuhu": "yuhu", "tok-police": "police", "tok-office": "*"}


@pytest.fixture
def alerting(isolated: Settings) -> Settings:
    return isolated.model_copy(
        update={
            "alert_leads_s": [4.0, 2.0],
            "access_tokens": TOKENS,
            "api_token": "tok-office",
            "session_timeout_s": 6.0,
        }
    )


@pytest.fixture
def alert_worker(alerting: Settings) -> Any:
    w = Worker(alerting)
    yield w.start()
    w.stop()


def _iso(dt: datetime) -> str:
    return dt.astimezone(TZ).isoformat()


def dispatch(order_id: str, unit_id: str, at: datetime, due_in_s: float) -> dict[str, Any]:
    """A dispatch at ``at`` with a deadline ``due_in_s`` seconds later."""
    return event(
        "order.dispatched",
        order_id=order_id,
        unit_id=unit_id,
        occurred_at=_iso(at),
        due_at=_iso(at + timedelta(seconds=due_in_s)),
    )


def _send(settings: Settings, tmp_path: Path, events: list[dict[str, Any]]) -> None:
    path = tmp_path / f"e{time.monotonic_ns()}.jsonl"
    path.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in events) + "\n", encoding="utf-8")
    asyncio.run(produce(list(read_records(path, settings)), settings))


def alerts(settings: Settings, settle_s: float = 1.0) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            settings.alerts_topic,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **settings.kafka_client_options(),
        )
        await consumer.start()
        found: list[dict[str, Any]] = []
        try:
            idle_until = time.monotonic() + settle_s
            while time.monotonic() < idle_until:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    found += [json.loads(r.value) | {"_key": r.key.decode(), "_sent_ms": r.timestamp} for r in records]
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def wait_for_alerts(settings: Settings, predicate: Any, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = alerts(settings, settle_s=0.5)
        if predicate(found):
            return found
    raise AssertionError(f"alerts never satisfied the condition: {alerts(settings)}")


def kinds(found: list[dict[str, Any]], order_id: str) -> list[tuple[str, str]]:
    return sorted((a["type"], a["unit_id"]) for a in found if a["order_id"] == order_id)


def test_due_soon_and_overdue_alerts_fire_on_time(alerting: Settings, alert_worker: Worker, tmp_path: Path) -> None:
    due = datetime.now(TZ) + timedelta(seconds=7)
    _send(
        alerting,
        tmp_path,
        [
            event(
                "order.dispatched", order_id="A1", unit_id="yuhu", due_at=_iso(due), occurred_at=_iso(datetime.now(TZ))
            )
        ],
    )
    found = wait_for_alerts(alerting, lambda f: any(a["type"] == "alert.overdue" for a in f))
    assert kinds(found, "A1") == [("alert.due_soon", "yuhu"), ("alert.due_soon", "yuhu"), ("alert.overdue", "yuhu")]
    overdue = next(a for a in found if a["type"] == "alert.overdue")
    assert overdue["_key"] == "yuhu"
    lateness = datetime.fromisoformat(overdue["emitted_at"]) - datetime.fromisoformat(overdue["due_at"])
    assert timedelta(0) <= lateness < timedelta(seconds=2)
    assert len({a["alert_id"] for a in found}) == len(found) == 3


def test_completion_before_the_deadline_cancels_the_overdue_alert(
    alerting: Settings, alert_worker: Worker, tmp_path: Path
) -> None:
    now = datetime.now(TZ)
    _send(
        alerting,
        tmp_path,
        [
            dispatch("B1", "yuhu", now, 6),
            dispatch("B2", "police", now, 6),
        ],
    )
    time.sleep(1)
    _send(alerting, tmp_path, [event("order.completed", order_id="B1", unit_id="yuhu", occurred_at=_iso(now))])
    found = wait_for_alerts(alerting, lambda f: any(a["type"] == "alert.overdue" for a in f))
    time.sleep(2)
    found = alerts(alerting)
    assert ("alert.overdue", "police") in kinds(found, "B2")
    assert ("alert.overdue", "yuhu") not in kinds(found, "B1")


def test_a_redispatched_order_alerts_the_new_unit(alerting: Settings, alert_worker: Worker, tmp_path: Path) -> None:
    now = datetime.now(TZ)
    _send(
        alerting,
        tmp_path,
        [
            dispatch("C1", "yuhu", now, 5),
            event("order.returned", order_id="C1", unit_id="yuhu", occurred_at=_iso(now + timedelta(seconds=1))),
            dispatch("C1", "police", now + timedelta(seconds=1), 7),
        ],
    )
    found = wait_for_alerts(alerting, lambda f: any(a["type"] == "alert.overdue" for a in f))
    time.sleep(1)
    overdue = [a for a in alerts(alerting) if a["type"] == "alert.overdue"]
    assert [(a["order_id"], a["unit_id"]) for a in overdue] == [("C1", "police")]
    assert all(a["unit_id"] == "police" for a in found if a["type"] == "alert.overdue")


def test_sigkill_across_the_deadline_still_delivers_exactly_one_overdue_alert(
    alerting: Settings, alert_worker: Worker, tmp_path: Path
) -> None:
    now = datetime.now(TZ)
    _send(
        alerting,
        tmp_path,
        [dispatch("D1", "yuhu", now, 5)],
    )
    time.sleep(1.5)
    alert_worker.kill()  # before the deadline
    time.sleep(5)
    alert_worker.start()  # after it
    wait_for_alerts(alerting, lambda f: ("alert.overdue", "yuhu") in kinds(f, "D1"))
    alert_worker.kill()  # right after the overdue alert went out
    alert_worker.start()
    time.sleep(3)
    assert kinds(alerts(alerting), "D1").count(("alert.overdue", "yuhu")) == 1


async def _read_sse(url: str, headers: dict[str, str], seconds: float) -> tuple[int, list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        if response.status != 200:
            return response.status, received
        try:
            async with asyncio.timeout(seconds):
                async for line in response.content:
                    if line.startswith(b"data: "):
                        received.append(json.loads(line[6:]))
        except TimeoutError:
            pass
        return response.status, received


def test_the_sse_stream_shows_each_unit_only_its_own_alerts(
    alerting: Settings, alert_worker: Worker, tmp_path: Path
) -> None:
    now = datetime.now(TZ)
    _send(
        alerting,
        tmp_path,
        [
            dispatch("E1", "yuhu", now, 3),
            dispatch("E2", "police", now, 3),
        ],
    )
    base = alerting.web_url

    async def all_reads() -> list[tuple[int, list[dict[str, Any]]]]:
        return list(
            await asyncio.gather(
                _read_sse(f"{base}/units/yuhu/alerts", {"Authorization": "Bearer tok-yuhu"}, 8),
                _read_sse(f"{base}/units/police/alerts?token=tok-police", {}, 8),
                _read_sse(f"{base}/alerts", {"Authorization": "Bearer tok-office"}, 8),
                _read_sse(f"{base}/units/yuhu/alerts", {}, 2),
                _read_sse(f"{base}/units/yuhu/alerts", {"Authorization": "Bearer nope"}, 2),
                _read_sse(f"{base}/units/police/alerts", {"Authorization": "Bearer tok-yuhu"}, 2),
            )
        )

    (s1, yuhu), (s2, police), (s3, office), (s4, _), (s5, _), (s6, _) = asyncio.run(all_reads())
    assert (s1, s2, s3) == (200, 200, 200)
    assert (s4, s5, s6) == (401, 401, 403)
    assert {a["unit_id"] for a in yuhu} == {"yuhu"} and {a["order_id"] for a in yuhu} == {"E1"}
    assert {a["unit_id"] for a in police} == {"police"} and {a["order_id"] for a in police} == {"E2"}
    assert {a["order_id"] for a in office} == {"E1", "E2"}
    assert any(a["type"] == "alert.overdue" for a in yuhu)


def test_replayed_history_is_counted_but_does_not_flood_units(
    alerting: Settings, alert_worker: Worker, tmp_path: Path
) -> None:
    long_ago = datetime.now(TZ) - timedelta(days=3)
    now = datetime.now(TZ)
    _send(
        alerting,
        tmp_path,
        [
            event(
                "order.dispatched", order_id="H1", unit_id="police", due_at=_iso(long_ago), occurred_at=_iso(long_ago)
            ),
            dispatch("H2", "yuhu", now, 2),
        ],
    )
    wait_for_alerts(alerting, lambda f: ("alert.overdue", "yuhu") in kinds(f, "H2"))
    assert kinds(alerts(alerting), "H1") == []
    metrics = worker_get(alerting, "/metrics").decode()
    assert "hotline_alerts_suppressed_total 1.0" in metrics  # H1's deadline (its due-soon alerts are moot)
    bulletin = worker_get(alerting, f"/bulletin/{long_ago:%Y-%m}?format=json")
    police = next(u for u in bulletin["units"] if u["unit_id"] == "police")
    assert (police["dispatched"], police["overdue"]) == ("1", "1")  # counted overdue all the same


def test_office_pages_need_a_supervisor_token(alerting: Settings, alert_worker: Worker) -> None:
    def status(token: str | None) -> int:
        request = urllib.request.Request(f"{alerting.web_url}/bulletin/2019-11?format=csv")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert [status(None), status("tok-yuhu"), status("tok-office")] == [401, 403, 200]
