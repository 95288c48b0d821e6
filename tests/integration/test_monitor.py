"""The live monitor on the real broker, a real worker and Debian's headless Chromium.

The browser test opens the page as a supervisor (the ``?token=`` link, which the worker
swaps for an HttpOnly sign-in cookie), produces events stamped now (so they count for
today), and waits until the cells show the expected figures; then it checks the
highlights, the alert ticker, sorting and the group filter, and saves a screenshot
under ``test-artifacts/``. Two more browser tests follow the bulletin links through the
cookie. The access test reads the JSON snapshot and the SSE stream with unit tokens and
without one.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from hotline.replay import Record, produce
from hotline.settings import Settings
from hotline.streams.access import TICKET_COOKIE
from hotline.streams.deadlines import TZ
from tests.factories import event
from tests.integration.conftest import REPO, Worker

pytestmark = pytest.mark.integration

TOKENS = {"tok-office": "*", "tok-yuhu": "yuhu", "tok-police": "police"}
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def monitored(isolated: Settings) -> Settings:
    return isolated.model_copy(update={"access_tokens": TOKENS})


@pytest.fixture
def monitor_worker(monitored: Settings) -> Iterator[Worker]:
    w = Worker(monitored)
    yield w.start()
    w.stop()


def _now() -> datetime:
    return datetime.now(TZ)


def _iso(dt: datetime) -> str:
    return dt.astimezone(TZ).isoformat()


def send(settings: Settings, events: list[dict[str, Any]]) -> float:
    """Produce order events (keyed by order id, acks=all); return the wall time Kafka had them all."""
    records = [
        Record(settings.orders_topic, e["order_id"].encode(), json.dumps(e, ensure_ascii=False).encode())
        for e in events
    ]
    asyncio.run(produce(records, settings))
    return time.time()


def js(driver: WebDriver, script: str, *args: Any) -> Any:
    """Read the page in one step: the table is redrawn on every push, so element handles go stale."""
    return driver.execute_script(script, *args)


def cell(driver: WebDriver, unit_id: str, col: str) -> str:
    selector = f'#units tbody td[data-unit="{unit_id}"][data-col="{col}"]'
    return str(js(driver, "const c = document.querySelector(arguments[0]); return c ? c.textContent : '';", selector))


def rows(driver: WebDriver) -> list[dict[str, str]]:
    """Each body row's unit, group, classes and text, in display order."""
    script = """return [...document.querySelectorAll('#units tbody tr')].map(r => ({
        unit: r.dataset.unit || '', group: r.dataset.group || '', cls: r.className, text: r.innerText}));"""
    return list(js(driver, script))


def text_of(driver: WebDriver, selector: str) -> str:
    return str(js(driver, "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';", selector))


def wait_for_cells(driver: WebDriver, expected: dict[tuple[str, str], str], timeout: float = 45) -> float:
    """Wait until every (unit, column) cell reads as expected; return the wall time it did."""
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.05).until(
            lambda d: all(cell(d, unit, col) == want for (unit, col), want in expected.items())
        )
    except TimeoutException:
        actual = {f"{u}/{c}": cell(driver, u, c) for u, c in expected}
        raise AssertionError(f"the page never showed {expected}; it shows {actual}") from None
    return time.time()


def first_wave(now: datetime) -> list[dict[str, Any]]:
    """雨湖区: one order due within 24 h, one overdue, one completed and visited three times, one
    returned and re-dispatched to 市公安局; plus supervision by phone and in writing."""
    at = _iso(now)
    return [
        event("order.dispatched", order_id="M1", unit_id="yuhu", occurred_at=at, due_at=_iso(now + timedelta(hours=2))),
        event("order.dispatched", order_id="M2", unit_id="yuhu", occurred_at=at, due_at=_iso(now - timedelta(hours=1))),
        event("order.dispatched", order_id="M3", unit_id="yuhu", occurred_at=at, due_at=_iso(now + timedelta(days=3))),
        event("order.completed", order_id="M3", unit_id="yuhu", occurred_at=at),
        event("order.visited", order_id="M3", unit_id="yuhu", occurred_at=at, outcome="satisfied"),
        event("order.visited", order_id="M3", unit_id="yuhu", occurred_at=at, outcome="unsatisfied"),
        event(
            "order.visited", order_id="M3", unit_id="yuhu", occurred_at=at, outcome="unsatisfied", citizen_replied=False
        ),
        event("order.supervised", order_id="M3", unit_id="yuhu", occurred_at=at, method="phone"),
        event("order.supervised", order_id="M3", unit_id="yuhu", occurred_at=at, method="written"),
        event("order.dispatched", order_id="M4", unit_id="yuhu", occurred_at=at, due_at=_iso(now + timedelta(days=3))),
        event("order.returned", order_id="M4", unit_id="yuhu", occurred_at=at),
        event(
            "order.dispatched",
            order_id="M4",
            unit_id="police",
            occurred_at=_iso(now + timedelta(seconds=1)),
            due_at=_iso(now + timedelta(days=3)),
        ),
    ]


FIRST_WAVE_CELLS = {
    ("yuhu", "today.dispatched"): "3",
    ("yuhu", "month.dispatched"): "3",
    ("yuhu", "open"): "2",
    ("yuhu", "due_soon"): "1",
    ("yuhu", "overdue"): "1",
    ("yuhu", "today.returned"): "1",
    ("yuhu", "today.visits"): "3",
    ("yuhu", "today.satisfaction"): "33.33%",
    ("yuhu", "month.satisfaction"): "33.33%",
    ("yuhu", "today.not_replied"): "1",
    ("yuhu", "today.supervised"): "2",
    ("police", "today.dispatched"): "1",
    ("police", "open"): "1",
    ("police", "overdue"): "0",
}


def test_the_page_shows_every_unit_and_follows_the_events(
    monitored: Settings, monitor_worker: Worker, browser: WebDriver
) -> None:
    browser.get(f"{monitored.web_url}/monitor?token=tok-office")
    wait_for_cells(browser, {("yuhu", "today.dispatched"): "0", ("police", "open"): "0"})
    assert browser.current_url == f"{monitored.web_url}/monitor"  # the token left the address bar
    assert "实时监测" in browser.title
    header = text_of(browser, "#units thead")
    labels = "单位 交办 在办 即将到期 已逾期 退单 回访 满意率 未答复当事人 督办 今日 本月"
    assert all(label in header for label in labels.split())
    listed = rows(browser)
    assert len(listed) == 54 and "雨湖区人民政府" in listed[0]["text"]

    produced = send(monitored, first_wave(_now()))
    shown = wait_for_cells(browser, FIRST_WAVE_CELLS)
    print(f"first wave on screen {shown - produced:.2f}s after Kafka acked it (includes consumer warm-up)")

    by_unit = {r["unit"]: r for r in rows(browser)}
    assert {"flag-overdue", "flag-lowsat"} <= set(by_unit["yuhu"]["cls"].split())
    assert "逾期" in by_unit["yuhu"]["text"] and "满意率<50%" in by_unit["yuhu"]["text"]
    assert "flag-overdue" not in by_unit["police"]["cls"]

    # The overdue alert of M2 reaches the ticker, named in Chinese, newest first.
    script = "return [...document.querySelectorAll('#ticker li')].map(li => li.innerText);"
    WebDriverWait(browser, 30).until(lambda d: any("已逾期" in t and "M2" in t for t in js(d, script)))
    assert any("雨湖区人民政府" in t and "M2" in t for t in js(browser, script))

    # A second wave while the page is open: pushed, not polled by the page.
    before = int(browser.execute_script("return document.body.dataset.snapshots"))
    produced = send(
        monitored,
        [event("order.dispatched", order_id="M5", unit_id="yuhu", occurred_at=_iso(_now()), due_at=_iso(_now()))],
    )
    shown = wait_for_cells(browser, {("yuhu", "today.dispatched"): "4", ("yuhu", "overdue"): "2"}, timeout=20)
    print(f"second wave on screen {shown - produced:.2f}s after Kafka acked it")
    assert shown - produced < 10
    assert int(browser.execute_script("return document.body.dataset.snapshots")) > before

    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "monitor.png"))

    # Sort by 已逾期 (descending first): 雨湖区 is the only unit with overdue orders.
    browser.find_element(By.CSS_SELECTOR, '#units thead th[data-sort="overdue"]').click()
    assert rows(browser)[0]["unit"] == "yuhu"

    # Filter by group: 市直部门 only; the total row sums what is shown.
    browser.find_element(By.CSS_SELECTOR, '#groups button[data-group="市直部门"]').click()
    assert {r["group"] for r in rows(browser)} == {"市直部门"}
    assert cell(browser, "police", "today.dispatched") == "1" and cell(browser, "yuhu", "open") == ""
    assert text_of(browser, "#units tfoot").startswith("合计")
    assert str(js(browser, "return document.querySelector('tfoot td[data-col=\"open\"]').textContent")) == "1"


def closed_month_order(settings: Settings) -> None:
    """One order of November 2019, dispatched and completed: a closed month whose bulletin the screen links."""
    at = "2019-11-04T09:31:00+08:00"
    send(
        settings,
        [
            event("order.dispatched", order_id="B2019", unit_id="yuhu", occurred_at=at),
            event("order.completed", order_id="B2019", unit_id="yuhu", occurred_at=at),
        ],
    )


def bulletin_panel(driver: WebDriver) -> list[dict[str, str]]:
    script = (
        """return [...document.querySelectorAll('#bulletins a')].map(a => ({text: a.textContent, href: a.href}));"""
    )
    return list(js(driver, script))


def test_the_bulletin_links_download_through_the_sign_in_cookie(
    monitored: Settings, monitor_worker: Worker, browser: WebDriver
) -> None:
    """What a supervisor clicks: the links carry no token, the HttpOnly cookie opens them."""
    closed_month_order(monitored)
    browser.get(f"{monitored.web_url}/monitor?token=tok-office&date=2019-11-04")
    WebDriverWait(browser, 45, poll_frequency=0.1).until(lambda d: len(bulletin_panel(d)) == 2)
    links = bulletin_panel(browser)
    assert [link["text"] for link in links] == ["Word", "CSV"]
    assert all("token" not in link["href"] for link in links)
    ticket = browser.get_cookie(TICKET_COOKIE)
    assert ticket is not None and ticket["httpOnly"] is True and ticket["sameSite"] == "Strict"
    assert TICKET_COOKIE not in str(js(browser, "return document.cookie"))  # no script on the page can read it
    script = """const done = arguments[arguments.length - 1];
        Promise.all([...document.querySelectorAll('#bulletins a')].map(a => fetch(a.href).then(
            r => ({status: r.status, disposition: r.headers.get('Content-Disposition') || ''})))).then(done);"""
    downloads = browser.execute_async_script(script)
    assert [d["status"] for d in downloads] == [200, 200]
    assert "bulletin-2019-11.docx" in downloads[0]["disposition"]
    assert "bulletin-2019-11.csv" in downloads[1]["disposition"]


def test_a_unit_screen_shows_no_bulletin_links(monitored: Settings, monitor_worker: Worker, browser: WebDriver) -> None:
    """The bulletins are city-wide, a supervisor's: a unit's screen says so instead of links that answer 403."""
    closed_month_order(monitored)
    browser.get(f"{monitored.web_url}/monitor?token=tok-yuhu&date=2019-11-04")
    WebDriverWait(browser, 45, poll_frequency=0.1).until(
        lambda d: "仅市级督办账号可查看" in text_of(d, "#bulletins") and cell(d, "yuhu", "today.dispatched") == "1"
    )
    assert bulletin_panel(browser) == []


async def _read_stream(url: str, headers: dict[str, str], seconds: float) -> tuple[int, bytes]:
    """The raw SSE bytes a caller receives in ``seconds`` (or the error status)."""
    body = b""
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        if response.status != 200:
            return response.status, await response.read()
        try:
            async with asyncio.timeout(seconds):
                async for chunk in response.content.iter_any():
                    body += chunk
        except TimeoutError:
            pass
        return response.status, body


def sse_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for block in body.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in lines and "data" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def _get(settings: Settings, path: str, token: str | None) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession() as session, session.get(settings.web_url + path, headers=headers) as r:
            text = await r.text()
            return r.status, json.loads(text) if "json" in r.headers.get("Content-Type", "") else text

    return asyncio.run(go())


def test_a_unit_token_reads_only_its_own_unit_and_no_token_reads_nothing(
    monitored: Settings, monitor_worker: Worker
) -> None:
    now = _now()
    tag = uuid.uuid4().hex[:6]
    events = [
        event("order.dispatched", order_id=f"P{tag}", unit_id="police", occurred_at=_iso(now), due_at=_iso(now)),
        event("order.dispatched", order_id=f"Y{tag}", unit_id="yuhu", occurred_at=_iso(now)),
        event("order.dispatched", order_id="H2019", unit_id="police", occurred_at="2019-11-04T09:31:00+08:00"),
    ]
    base = monitored.web_url

    async def watch_while_sending() -> list[tuple[int, bytes]]:
        reads = asyncio.gather(
            _read_stream(f"{base}/monitor/stream?token=tok-yuhu", {}, 12),
            _read_stream(f"{base}/monitor/stream", {"Authorization": "Bearer tok-office"}, 12),
            _read_stream(f"{base}/monitor/stream", {}, 2),
            _read_stream(f"{base}/monitor/stream?token=nope", {}, 2),
        )
        await asyncio.sleep(1.0)  # the streams are open before the events exist: the figures are pushed
        await produce(
            [Record(monitored.orders_topic, e["order_id"].encode(), json.dumps(e).encode()) for e in events], monitored
        )
        return list(await reads)

    (s_yuhu, yuhu), (s_office, office), (s_none, _), (s_bad, _) = asyncio.run(watch_while_sending())
    assert (s_yuhu, s_office, s_none, s_bad) == (200, 200, 401, 401)

    # The unit's stream: figures pushed as they changed, only its own unit, alerts only its own.
    snapshots = [d for kind, d in sse_events(yuhu) if kind == "snapshot"]
    assert len(snapshots) >= 2, "the figures were not pushed after the events"
    assert all([u["unit_id"] for u in s["units"]] == ["yuhu"] for s in snapshots)
    assert snapshots[-1]["units"][0]["today"]["dispatched"] == 1
    assert snapshots[-1]["total"]["today"]["dispatched"] == 1  # totals of what it may see, not of the city
    assert all(d["unit_id"] == "yuhu" for kind, d in sse_events(yuhu) if kind == "alert")
    assert b"police" not in yuhu and "市公安局".encode() not in yuhu
    # The supervisor's stream of the same moment sees both units, and the police overdue alert.
    last = [d for kind, d in sse_events(office) if kind == "snapshot"][-1]
    by_unit = {u["unit_id"]: u for u in last["units"]}
    assert len(by_unit) == 54 and by_unit["police"]["today"]["dispatched"] == 1
    # Overdue now: today's order due at once, and the 2019 order never completed.
    assert by_unit["police"]["overdue"] == 2 and by_unit["police"]["flags"]["overdue"] is True
    assert any(d["unit_id"] == "police" for kind, d in sse_events(office) if kind == "alert")

    # The JSON snapshot: the same rules.
    status, mine = _get(monitored, "/monitor/snapshot", "tok-yuhu")
    assert status == 200 and [u["unit_id"] for u in mine["units"]] == ["yuhu"]
    assert "police" not in json.dumps(mine) and all(a["unit_id"] == "yuhu" for a in mine["alerts"])
    status, theirs = _get(monitored, "/monitor/snapshot", "tok-police")
    assert status == 200 and [u["unit_id"] for u in theirs["units"]] == ["police"]
    assert theirs["units"][0]["overdue"] == 2
    for path in ("/monitor", "/monitor/snapshot", "/monitor/stream"):
        assert _get(monitored, path, None)[0] == 401
        assert _get(monitored, path, "forged")[0] == 401

    # Another day: 2019-11-04 as of its end; its month is closed, so its bulletins are linked.
    status, past = _get(monitored, "/monitor/snapshot?date=2019-11-04", "tok-office")
    assert status == 200 and past["date"] == "2019-11-04" and past["live"] is False
    police = next(u for u in past["units"] if u["unit_id"] == "police")
    assert police["today"]["dispatched"] == 1 and police["open"] == 1 and police["overdue"] == 0
    assert past["closed_months"] == ["2019-11"]
    assert past["bulletins"][0]["docx"] == "/bulletin/2019-11?format=docx"
    assert _get(monitored, "/monitor/snapshot?date=2019-13-45", "tok-office")[0] == 400
