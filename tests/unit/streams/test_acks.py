"""签收 through the signed link, against the notifier's pages on a local server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hotline.schemas.events import AlertAcknowledged, parse_event
from hotline.streams.acks import ACKNOWLEDGED, Acknowledgements, ack_event_id
from hotline.streams.channels import ack_links
from hotline.streams.delivery import MemoryLog
from tests.unit.streams.test_channels import alert

SECRET = "ack-secret"


class Kafka:
    """What the acknowledgements produce; down when asked to be."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.down = False

    async def produce(self, key: str, value: bytes) -> None:
        if self.down:
            raise ConnectionError("no broker")
        self.sent.append((key, value))


@pytest.fixture
async def pages() -> AsyncIterator[tuple[TestServer, Kafka, MemoryLog]]:
    kafka, log = Kafka(), MemoryLog()
    app = web.Application()
    Acknowledgements(SECRET, kafka.produce, log).routes(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, kafka, log
    await server.close()


def link_of(server: TestServer, a: dict[str, Any]) -> str:
    return ack_links(str(server.make_url("")).rstrip("/"), SECRET)(a)


async def call(method: str, url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.request(method, url) as response:
        return response.status, await response.text()


async def test_pressing_a_signed_link_puts_one_acknowledgement_on_kafka_and_stores_it(
    pages: tuple[TestServer, Kafka, MemoryLog],
) -> None:
    server, kafka, log = pages
    status, page = await call("POST", link_of(server, alert(1)))
    assert status == 200 and "已签收" in page
    ((key, value),) = kafka.sent
    event = parse_event(value)
    assert key == "yuhu" and isinstance(event, AlertAcknowledged)
    aid = alert(1)["alert_id"]
    assert (event.alert_id, event.unit_id, event.event_id) == (aid, "yuhu", ack_event_id(aid))
    (row,) = log.load(0)
    assert (row.destination, row.alert_id, row.status) == ("yuhu/ack", aid, ACKNOWLEDGED)


async def test_opening_the_link_shows_a_button_and_acknowledges_nothing(
    pages: tuple[TestServer, Kafka, MemoryLog],
) -> None:
    server, kafka, log = pages
    status, page = await call("GET", link_of(server, alert(1)))
    assert status == 200 and 'id="ack"' in page and kafka.sent == [] and log.rows == []


@pytest.mark.parametrize("forge", ["another unit", "another alert", "no signature"])
async def test_a_forged_link_is_refused_and_acknowledges_nothing(
    pages: tuple[TestServer, Kafka, MemoryLog], forge: str
) -> None:
    server, kafka, log = pages
    url = link_of(server, alert(1))
    forged = {
        "another unit": url.replace("unit=yuhu", "unit=police"),
        "another alert": url.replace(alert(1)["alert_id"], alert(2)["alert_id"]),
        "no signature": url.split("&sig=")[0],
    }[forge]
    status, _ = await call("POST", forged)
    assert status == 403 and kafka.sent == [] and log.rows == []


async def test_with_kafka_down_the_press_is_refused_for_now_and_nothing_stored(
    pages: tuple[TestServer, Kafka, MemoryLog],
) -> None:
    server, kafka, log = pages
    kafka.down = True
    status, page = await call("POST", link_of(server, alert(1)))
    assert status == 503 and "稍后再试" in page and log.rows == []
