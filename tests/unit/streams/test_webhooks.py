"""Webhook delivery against a local HTTP server that fails before it succeeds."""

from __future__ import annotations

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from hotline.streams.webhooks import WebhookDelivery

ALERT = {"alert_id": "a1", "unit_id": "yuhu", "type": "alert.overdue", "order_id": "O1"}


async def _server(fail_first: int) -> tuple[TestServer, list[dict]]:
    received: list[dict] = []
    calls = {"n": 0}

    async def hook(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] <= fail_first:
            return web.Response(status=503)
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, received


async def test_retries_with_backoff_until_delivered() -> None:
    server, received = await _server(fail_first=2)
    delivery = WebhookDelivery({"yuhu": str(server.make_url("/hook"))}, attempts=4, first_delay_s=0.01)
    async with aiohttp.ClientSession() as session:
        assert await delivery.deliver(session, ALERT)
    await server.close()
    assert received == [ALERT] and delivery.delivered == 1


async def test_gives_up_after_the_last_attempt() -> None:
    server, received = await _server(fail_first=10)
    delivery = WebhookDelivery({"yuhu": str(server.make_url("/hook"))}, attempts=3, first_delay_s=0.01)
    async with aiohttp.ClientSession() as session:
        assert not await delivery.deliver(session, ALERT)
    await server.close()
    assert received == [] and delivery.failed == 1


def test_only_units_with_a_webhook_are_queued() -> None:
    delivery = WebhookDelivery({"yuhu": "http://127.0.0.1:1/hook"})
    delivery.offer(ALERT)
    delivery.offer({**ALERT, "unit_id": "police"})
    assert delivery.queue.qsize() == 1
