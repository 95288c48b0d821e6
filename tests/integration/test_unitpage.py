"""The unit's page on the real broker, a real worker and Debian's headless Chromium.

One module-scoped setup does the slow part once: two orders of 雨湖区 and one of 市公安局 fall
overdue a few seconds after dispatch, 雨湖区's duty officer opens the page with the unit's
``?token=`` link and presses 签收 on one alert, and the page is read once the alert has left it.
Each test then checks one outcome: the event on the topic, the page's open list, the screen's
counts, and another unit's token refused.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from hotline.settings import Settings
from hotline.streams.acks import ack_event_id
from hotline.streams.deadlines import TZ
from tests.integration.conftest import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS, Worker, isolated_settings
from tests.integration.test_alerts import _send, alerts, dispatch, wait_for_alerts

pytestmark = pytest.mark.integration

TOKENS = {"tok-office": "*", "tok-yuhu": "yuhu", "tok-police": "police"}
KEYS = ("sent", "acknowledged", "waiting")  # the screen's alert columns, left to right
OPEN_IDS = "return [...document.querySelectorAll('#open li[data-alert]')].map((li) => li.dataset.alert)"


@dataclass
class Pressed:
    """What the setup did and saw: the unit's alerts, the one signed for, the page after."""

    settings: Settings
    yuhu: list[dict[str, Any]]  # 雨湖区's two overdue alerts
    police: dict[str, Any]
    signed: dict[str, Any]
    listed_before: list[str]
    listed_after: list[str]
    address: str  # the page's address once signed in
    driver: webdriver.Chrome


def _browser(profile: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _listed(driver: webdriver.Chrome, done: Any) -> list[str] | None:
    """The open list's alert ids once ``done`` says so (for WebDriverWait: None until then)."""
    ids = list(driver.execute_script(OPEN_IDS))
    return ids if done(ids) else None


@pytest.fixture(scope="module")
def pressed(broker: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pressed]:
    root = tmp_path_factory.mktemp("unitpage")
    settings = isolated_settings(broker, root, alert_leads_s=[], access_tokens=TOKENS)
    worker = Worker(settings).start()
    driver = _browser(root / "chromium-profile")
    try:
        now = datetime.now(TZ)
        orders = [dispatch("U1", "yuhu", now, 3), dispatch("U2", "yuhu", now, 4), dispatch("U3", "police", now, 3)]
        _send(settings, root, orders)
        found = wait_for_alerts(settings, lambda f: sum(a["type"] == "alert.overdue" for a in f) == 3)
        overdue = [a for a in found if a["type"] == "alert.overdue"]
        yuhu = sorted((a for a in overdue if a["unit_id"] == "yuhu"), key=lambda a: a["order_id"])
        police = next(a for a in overdue if a["unit_id"] == "police")
        driver.get(f"{settings.web_url}/units/yuhu?token=tok-yuhu")
        wait = WebDriverWait(driver, 30, poll_frequency=0.1)
        before = wait.until(lambda d: _listed(d, lambda ids: len(ids) == 2))
        signed = yuhu[0]
        driver.find_element(By.CSS_SELECTOR, f'#open li[data-alert="{signed["alert_id"]}"] button').click()
        after = wait.until(lambda d: _listed(d, lambda ids: signed["alert_id"] not in ids))
        yield Pressed(settings, yuhu, police, signed, before, after, driver.current_url, driver)
    finally:
        driver.quit()
        shutil.rmtree(root / "chromium-profile", ignore_errors=True)
        worker.stop()


def _call(settings: Settings, method: str, path: str, token: str) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, settings.web_url + path, headers=headers, allow_redirects=False) as r,
        ):
            text = await r.text()
            return r.status, json.loads(text) if "json" in r.headers.get("Content-Type", "") else text

    return asyncio.run(go())


def test_the_token_link_leaves_the_address_bar(pressed: Pressed) -> None:
    assert pressed.address == f"{pressed.settings.web_url}/units/yuhu"


def test_the_page_listed_the_units_open_alerts_newest_first(pressed: Pressed) -> None:
    assert pressed.listed_before == [a["alert_id"] for a in reversed(pressed.yuhu)]


def test_pressing_sign_puts_the_acknowledgement_on_the_alerts_topic(pressed: Pressed) -> None:
    aid = pressed.signed["alert_id"]
    (ack,) = [a for a in alerts(pressed.settings) if a["type"] == "alert.acknowledged"]
    assert (ack["event_id"], ack["alert_id"], ack["unit_id"], ack["_key"]) == (ack_event_id(aid), aid, "yuhu", "yuhu")


def test_the_signed_alert_leaves_the_pages_open_list(pressed: Pressed) -> None:
    assert pressed.listed_after == [pressed.yuhu[1]["alert_id"]]


def test_the_screen_counts_the_units_alerts_sent_acknowledged_and_waiting(pressed: Pressed) -> None:
    status, snapshot = _call(pressed.settings, "GET", "/monitor/snapshot", "tok-office")
    by_unit = {u["unit_id"]: u["alerts"] for u in snapshot["units"]}
    assert status == 200
    assert by_unit["yuhu"] == {"sent": 2, "acknowledged": 1, "waiting": 1}
    assert by_unit["police"] == {"sent": 1, "acknowledged": 0, "waiting": 1}


def test_a_unit_token_sees_only_its_own_units_counts(pressed: Pressed) -> None:
    _, snapshot = _call(pressed.settings, "GET", "/monitor/snapshot", "tok-police")
    assert [(u["unit_id"], u["alerts"]["waiting"]) for u in snapshot["units"]] == [("police", 1)]


def test_another_units_token_may_neither_open_the_page_nor_sign(pressed: Pressed) -> None:
    page, _ = _call(pressed.settings, "GET", "/units/yuhu", "tok-police")
    sign, _ = _call(pressed.settings, "POST", f"/units/yuhu/ack/{pressed.yuhu[1]['alert_id']}", "tok-police")
    assert (page, sign) == (403, 403)


def test_a_units_token_may_not_sign_another_units_alert(pressed: Pressed) -> None:
    status, _ = _call(pressed.settings, "POST", f"/units/yuhu/ack/{pressed.police['alert_id']}", "tok-yuhu")
    assert status == 403


def test_the_supervisors_screen_shows_the_units_alert_counts(pressed: Pressed) -> None:
    driver = pressed.driver
    driver.get(f"{pressed.settings.web_url}/monitor?token=tok-office")
    script = "const c = document.querySelector(arguments[0]); return c ? c.textContent : null;"

    def cells(d: webdriver.Chrome) -> list[str] | None:
        found = [d.execute_script(script, f'#units tbody td[data-unit="yuhu"][data-col="alerts.{k}"]') for k in KEYS]
        return found if None not in found else None

    assert WebDriverWait(driver, 30, poll_frequency=0.1).until(cells) == ["2", "1", "1"]
    assert "待签收" in driver.find_element(By.CSS_SELECTOR, "#units thead").text
