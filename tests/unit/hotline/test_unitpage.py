"""A unit's page of open alerts and its 签收 button, on a local server with a Kafka double that the
feed reads back from (the worker's wiring, with the real broker and a browser, is in
tests/integration/test_unitpage.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hotline.schemas.events import AlertAcknowledged, parse_event
from hotline.schemas.registry import default_registry
from hotline.streams.access import TICKET_COOKIE, Access
from hotline.streams.acks import ack_event_id
from hotline.streams.alerts import AlertFeed
from hotline.unitpage import KAFKA_DOWN, UnitPage, render

TOKENS = {"tok-yuhu": "yuhu", "tok-police": "police", "tok-office": "*"}


def alert(n: int, unit: str = "yuhu", minute: int = 0, order: str = "") -> dict[str, Any]:
    return {
        "type": "alert.overdue",
        "alert_id": f"{n:032x}",
        "order_id": order or f"XT201911{n:04d}",
        "unit_id": unit,
        "due_at": "2019-11-04T02:00:00+00:00",  # 10:00 in the office's time zone
        "emitted_at": f"2019-11-04T10:{minute:02d}:00+08:00",
    }


@dataclass
class Kafka:
    """The alerts topic as the page sees it: what it produced, read back by the feed; down when asked."""

    feed: AlertFeed
    sent: list[tuple[str, bytes]] = field(default_factory=list)
    down: bool = False

    async def produce(self, key: str, value: bytes) -> None:
        if self.down:
            raise ConnectionError("no broker")
        self.sent.append((key, value))
        self.feed._read(value)


@pytest.fixture
async def page() -> AsyncIterator[tuple[str, Kafka]]:
    feed = AlertFeed("alerts", {})
    for a in (alert(1, minute=1), alert(2, minute=2), alert(3, "police")):
        feed.note(a)
    kafka = Kafka(feed)
    app = web.Application()
    UnitPage(feed, Access.configure(TOKENS), kafka.produce, default_registry, read_back_s=1.0).routes(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), kafka
    await server.close()


async def call(method: str, url: str, token: str | None = "tok-yuhu", json_: bool = True) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if json_:
        headers["Accept"] = "application/json"
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers, allow_redirects=False) as response,
    ):
        text = await response.text()
        is_json = response.content_type == "application/json"
        return response.status, json.loads(text) if is_json else (text, dict(response.headers))


async def test_the_token_link_sets_the_sign_in_cookie_and_redirects_without_it(page: tuple[str, Kafka]) -> None:
    base, _ = page
    status, (_, headers) = await call("GET", f"{base}/units/yuhu?token=tok-yuhu", token=None, json_=False)
    cookie = headers["Set-Cookie"]
    assert status == 303 and headers["Location"] == "/units/yuhu"
    assert cookie.startswith(f"{TICKET_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie


async def test_the_page_lists_the_units_open_alerts_newest_first_with_kind_and_due_time(
    page: tuple[str, Kafka],
) -> None:
    base, _ = page
    status, (body, _) = await call("GET", f"{base}/units/yuhu", json_=False)
    assert status == 200 and "雨湖区" in body and "已逾期" in body and "期限 2019-11-04 10:00" in body
    assert body.index("XT2019110002") < body.index("XT2019110001") and "XT2019110003" not in body


def test_the_page_escapes_what_an_alert_says() -> None:
    body = render("yuhu", "雨湖区", [alert(1, order="<script>x</script>")])
    assert "<script>x</script>" not in body and "&lt;script&gt;x&lt;/script&gt;" in body


async def test_pressing_sign_produces_the_acknowledgement_and_the_alert_leaves_the_open_list(
    page: tuple[str, Kafka],
) -> None:
    base, kafka = page
    aid = alert(1)["alert_id"]
    status, answer = await call("POST", f"{base}/units/yuhu/ack/{aid}")
    ((key, value),) = kafka.sent
    event = parse_event(value)
    assert status == 200 and answer["read_back"] is True and key == "yuhu"
    assert isinstance(event, AlertAcknowledged)
    assert (event.event_id, event.alert_id, event.unit_id) == (ack_event_id(aid), aid, "yuhu")
    _, listed = await call("GET", f"{base}/units/yuhu/open")
    assert [a["alert_id"] for a in listed["open"]] == [alert(2)["alert_id"]]
    assert listed["counts"] == {"sent": 2, "acknowledged": 1, "waiting": 1}


async def test_pressing_twice_produces_nothing_more(page: tuple[str, Kafka]) -> None:
    base, kafka = page
    url = f"{base}/units/yuhu/ack/{alert(1)['alert_id']}"
    first, second = await call("POST", url), await call("POST", url)
    assert first[0] == second[0] == 200 and len(kafka.sent) == 1


async def test_a_form_post_without_script_goes_back_to_the_page(page: tuple[str, Kafka]) -> None:
    base, _ = page
    status, (_, headers) = await call("POST", f"{base}/units/yuhu/ack/{alert(1)['alert_id']}", json_=False)
    assert status == 303 and headers["Location"] == "/units/yuhu"


@pytest.mark.parametrize(
    ("path", "token", "expected"),
    [
        ("/units/police/ack/{police}", "tok-yuhu", 403),  # another unit's page
        ("/units/yuhu/ack/{police}", "tok-yuhu", 403),  # another unit's alert through one's own
        ("/units/yuhu/ack/{unknown}", "tok-yuhu", 404),
        ("/units/yuhu/ack/{mine}", None, 401),
    ],
)
async def test_acknowledging_what_is_not_the_callers_is_refused_and_produces_nothing(
    page: tuple[str, Kafka], path: str, token: str | None, expected: int
) -> None:
    base, kafka = page
    ids = {"police": alert(3)["alert_id"], "unknown": "f" * 32, "mine": alert(1)["alert_id"]}
    status, _ = await call("POST", base + path.format(**ids), token=token)
    assert status == expected and kafka.sent == []


async def test_another_units_token_does_not_open_the_page(page: tuple[str, Kafka]) -> None:
    base, _ = page
    status, (body, _) = await call("GET", f"{base}/units/police", json_=False)
    assert status == 403 and "XT2019110003" not in body


async def test_a_supervisor_may_sign_for_any_unit(page: tuple[str, Kafka]) -> None:
    base, kafka = page
    status, _ = await call("POST", f"{base}/units/police/ack/{alert(3)['alert_id']}", token="tok-office")
    assert status == 200 and [key for key, _ in kafka.sent] == ["police"]


async def test_kafka_down_is_a_503_that_says_so_and_the_alert_stays_open(page: tuple[str, Kafka]) -> None:
    base, kafka = page
    kafka.down = True
    status, answer = await call("POST", f"{base}/units/yuhu/ack/{alert(1)['alert_id']}")
    _, listed = await call("GET", f"{base}/units/yuhu/open")
    assert status == 503 and answer["error"] == KAFKA_DOWN
    assert alert(1)["alert_id"] in [a["alert_id"] for a in listed["open"]]
