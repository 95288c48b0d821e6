"""``hotline notify`` on the real broker: alerts on the topic reach a local receiver; the notifier
SIGKILLed in the middle of a burst and restarted still delivers every alert, repeats only of the
same alert id, and its delivery log holds every one as delivered."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from hotline.deploy.worker import settings_env
from hotline.schemas.events import TZ, AlertOverdue, dump_event
from hotline.settings import AlertChannel, Settings
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.streams.alerts import alert_id
from hotline.streams.notify import log_settings
from tests.robots import ORDER_PREFIX, SECRET, Robot

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ROBOT_PORT = 18310
METRICS_PORT = 18311
BURST = 300


@pytest.fixture
async def robot() -> AsyncIterator[Robot]:
    r = await Robot(per_minute=100_000, delay_s=0.02).start(ROBOT_PORT)
    yield r
    await r.close()


@pytest.fixture
def notifying(isolated: Settings, robot: Robot) -> Settings:
    webhook = AlertChannel(channel="webhook", url=robot.url("webhook"), secret=SECRET, per_minute=100_000)
    channels = {"yuhu": [webhook]}
    return isolated.model_copy(update={"alert_channels": channels, "notify_port": METRICS_PORT})


def alerts(n: int) -> list[AlertOverdue]:
    now = datetime.now(TZ)
    made = []
    for i in range(n):
        aid = alert_id(f"O{i}", "yuhu", now.isoformat(), "overdue")
        made.append(
            AlertOverdue(
                event_id=aid,
                occurred_at=now,
                alert_id=aid,
                order_id=f"{ORDER_PREFIX}{aid}",
                unit_id="yuhu",
                due_at=now,
                emitted_at=now,
            )
        )
    return made


async def publish(settings: Settings, batch: list[AlertOverdue]) -> None:
    producer = AIOKafkaProducer(**settings.producer_options(), **settings.kafka_client_options())
    await producer.start()
    try:
        for a in batch:
            await producer.send(settings.alerts_topic, dump_event(a), key=a.unit_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def start(settings: Settings, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hotline", "notify", cwd=REPO, env=settings_env(settings), stdout=out, stderr=out
        )


async def stop(notifier: asyncio.subprocess.Process, log: Path) -> None:
    """SIGTERM and wait; a notifier that had already exited fails the test with its log."""
    assert notifier.returncode is None, f"the notifier exited early:\n{log.read_text()[-3000:]}"
    notifier.send_signal(signal.SIGTERM)
    await asyncio.wait_for(notifier.wait(), 60)


async def possible_repeats() -> float:
    """The restarted notifier's count of alerts it may have repeated (its /metrics)."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{METRICS_PORT}/metrics") as r:
        text = await r.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(REPEATS))


REPEATS = "hotline_notify_possible_repeats_total"


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:.0f}s"
        await asyncio.sleep(0.05)


async def test_alerts_reach_the_receiver_through_a_sigkill_mid_burst(
    notifying: Settings, robot: Robot, tmp_path: Path
) -> None:
    burst = alerts(BURST)
    ids = {a.alert_id for a in burst}
    await publish(notifying, burst)
    log = tmp_path / "notify.log"
    first = await start(notifying, log)
    await until(lambda: len(robot.delivered_ids()) >= BURST // 3, 120, "a third of the burst delivered")
    os.kill(first.pid, signal.SIGKILL)
    await first.wait()
    assert len(set(robot.delivered_ids())) < BURST, "killed after the burst: nothing was in flight"

    before_restart = set(robot.delivered_ids())
    second = await start(notifying, log)
    try:
        await until(lambda: set(robot.delivered_ids()) >= ids, 120, "every alert delivered after the restart")
        counted = await possible_repeats()
    finally:
        await stop(second, log)
    delivered = Counter(robot.delivered_ids())
    repeated = {aid for aid, n in delivered.items() if n > 1}
    assert set(delivered) == ids and robot.refused == []
    assert repeated <= before_restart and len(repeated) <= counted  # repeats: taken before the kill, counted

    with ClickHouseStore(log_settings(notifying)) as store:
        rows = store.query_rows("SELECT status, count() AS n FROM {db}.alert_deliveries FINAL GROUP BY status")
    assert {r["status"]: r["n"] for r in rows} == {"delivered": BURST}, log.read_text()[-3000:]


async def test_alerts_sent_while_the_receiver_is_down_arrive_once_it_is_up(
    notifying: Settings, robot: Robot, tmp_path: Path
) -> None:
    robot.down = True
    burst = alerts(50)
    await publish(notifying, burst)
    notifier = await start(notifying, tmp_path / "notify.log")
    try:
        await until(lambda: robot.turned_away >= 3, 120, "the notifier retrying the receiver while it is down")
        robot.down = False
        await until(lambda: set(robot.delivered_ids()) >= {a.alert_id for a in burst}, 120, "every alert delivered")
    finally:
        await stop(notifier, tmp_path / "notify.log")
    assert Counter(robot.delivered_ids()) == Counter(a.alert_id for a in burst)  # each once
    with ClickHouseStore(log_settings(notifying)) as store:
        rows = store.query_rows(
            "SELECT max(attempts) AS most, countIf(status = 'delivered') AS n FROM {db}.alert_deliveries FINAL"
        )
    assert rows[0]["n"] == 50 and rows[0]["most"] >= 3


async def acknowledgements(settings: Settings, timeout_s: float) -> list[dict[str, object]]:
    """The alert.acknowledged events on the alerts topic (read from its start)."""
    consumer = AIOKafkaConsumer(
        settings.alerts_topic, auto_offset_reset="earliest", enable_auto_commit=False, **settings.kafka_client_options()
    )
    await consumer.start()
    found: list[dict[str, object]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while not found and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            events = [json.loads(r.value or b"{}") for records in batch.values() for r in records]
            found += [e for e in events if e.get("type") == "alert.acknowledged"]
    finally:
        await consumer.stop()
    return found


async def test_a_unit_signs_for_an_alert_through_its_link_and_the_topic_has_it(
    notifying: Settings, robot: Robot, tmp_path: Path
) -> None:
    settings = notifying.model_copy(update={"ack_secret": "ack-secret"})
    (one,) = alerts(1)
    await publish(settings, [one])
    notifier = await start(settings, tmp_path / "notify.log")
    try:
        await until(lambda: bool(robot.messages), 120, "the alert delivered")
        link = str(robot.messages[0].payload["alerts"][0]["ack_url"])
        async with aiohttp.ClientSession() as session, session.post(link) as pressed:
            assert pressed.status == 200, await pressed.text()
        (ack,) = await acknowledgements(settings, 60)
    finally:
        await stop(notifier, tmp_path / "notify.log")
    assert (ack["alert_id"], ack["unit_id"]) == (one.alert_id, "yuhu")
    with ClickHouseStore(log_settings(settings)) as store:
        rows = store.query_rows("SELECT destination, status FROM {db}.alert_deliveries FINAL ORDER BY destination")
    stored = [(r["destination"], r["status"]) for r in rows]
    assert stored == [("yuhu/ack", "acknowledged"), ("yuhu/webhook/0", "delivered")]


def press_ack(browser: WebDriver, link: str) -> str:
    """Open the 签收 link as a duty officer's phone would, press the button, return what the page says."""
    browser.get(link)
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "ack"))
    browser.find_element(By.ID, "ack").click()
    # The page replaces what it says once the acknowledgement is stored: an element read during the
    # swap is stale, so the wait reads it afresh until the new text is there.
    def signed(d: WebDriver) -> str | bool:
        text = str(d.find_element(By.ID, "what").text)
        return text if "已签收" in text else False

    return str(WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,)).until(signed))


async def test_a_duty_officer_signs_for_an_alert_in_a_browser(
    notifying: Settings, robot: Robot, tmp_path: Path, browser: WebDriver
) -> None:
    settings = notifying.model_copy(update={"ack_secret": "ack-secret"})
    (one,) = alerts(1)
    await publish(settings, [one])
    notifier = await start(settings, tmp_path / "notify.log")
    try:
        await until(lambda: bool(robot.messages), 120, "the alert delivered")
        link = str(robot.messages[0].payload["alerts"][0]["ack_url"])
        said = await asyncio.to_thread(press_ack, browser, link)
        (ack,) = await acknowledgements(settings, 60)
    finally:
        await stop(notifier, tmp_path / "notify.log")
    assert one.alert_id in said and (ack["alert_id"], ack["unit_id"]) == (one.alert_id, "yuhu")
