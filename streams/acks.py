"""签收: a unit signs for an alert through the link its message carried, served by ``hotline notify``.

The link is signed (:func:`~hotline.streams.channels.ack_signature`, ``HOTLINE_ACK_SECRET``) over the
alert id and the unit, so it needs no sign-in: whoever the unit's robot or SMS reached may sign,
and no one can sign for another unit's alert. Opening it shows the alert and a 签收 button (a
GET never acknowledges: link previews and scanners open links); pressing it puts an
``alert.acknowledged`` event on the alerts topic (keyed by unit, as the alerts are) and records
it in the delivery log (destination ``<unit>/ack``, status ``acknowledged``). The event's id is
derived from the alert's, so a second press is the same event again, recognisable downstream.
``hotline notify`` also records the acknowledgements it reads on the topic (:func:`topic_ack_row`),
so one made on a unit's page on a worker is in the log too.
Kafka unavailable: the page says to try again (503) and nothing is recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web

from hotline.schemas.events import TZ, AlertAcknowledged, dump_event
from hotline.streams.channels import ack_signature
from hotline.streams.delivery import DeliveryLog, LogRow, next_version

log = logging.getLogger(__name__)

ACKNOWLEDGED = "acknowledged"  # the delivery log's status of a 签收
Produce = Callable[[str, bytes], Awaitable[None]]  # (unit key, event) onto the alerts topic

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>12345 工单提醒 · 签收</title></head>
<body><h1>12345 工单提醒 · 签收</h1><p id="what">{what}</p>{form}</body></html>
"""
FORM = '<form method="post"><button type="submit" id="ack">签收</button></form>'


def ack_event_id(alert_id: str) -> str:
    """The same alert acknowledged twice: the same event id."""
    return hashlib.sha1(f"ack|{alert_id}".encode()).hexdigest()[:32]


def acknowledgement(alert_id: str, unit_id: str, now: float) -> AlertAcknowledged:
    """A unit's 签收 of an alert at ``now`` (a signed link or the unit's page: the same event)."""
    return AlertAcknowledged(
        event_id=ack_event_id(alert_id), occurred_at=datetime.fromtimestamp(now, TZ), alert_id=alert_id, unit_id=unit_id
    )


def ack_row(event: AlertAcknowledged, version: int) -> LogRow:
    """The delivery log's record of a 签收: destination ``<unit>/ack``, status ``acknowledged``, its
    times the acknowledgement's own, the event's JSON as the row's content."""
    at = event.occurred_at.timestamp()
    return LogRow(
        destination=f"{event.unit_id}/ack",
        alert_id=event.alert_id,
        unit_id=event.unit_id,
        channel="ack",
        status=ACKNOWLEDGED,
        attempts=1,
        first_try=at,
        last_try=at,
        delivered_at=at,
        last_error="",
        alert=json.dumps(event.model_dump(mode="json"), ensure_ascii=False, sort_keys=True),
        version=version,
    )


def topic_ack_row(event: AlertAcknowledged) -> LogRow:
    """The row ``hotline notify`` records for an acknowledgement it reads on the alerts topic,
    whichever page made it (the signed link, or a unit's page on a worker).

    The log keeps the latest ``version`` per destination and alert id. This row's version is the
    acknowledgement's own instant in µs, not the time it is read: read again (offsets not yet
    committed when the notifier died) it is the identical row, which the table collapses; it never
    outranks the row the signed link's page wrote at the press (:func:`next_version` then, at or
    after that instant); and, versions being µs times, a restart's read of one TTL finds it."""
    return ack_row(event, int(event.occurred_at.timestamp() * 1_000_000))


class Acknowledgements:
    """Checks 签收 links and turns a press into an ``alert.acknowledged`` event, stored."""

    def __init__(
        self, secret: str, produce: Produce, delivery_log: DeliveryLog, clock: Callable[[], float] = time.time
    ) -> None:
        self.secret = secret
        self.produce = produce
        self.log = delivery_log
        self.clock = clock

    def valid(self, alert_id: str, unit_id: str, signature: str) -> bool:
        return bool(unit_id) and hmac.compare_digest(signature, ack_signature(self.secret, alert_id, unit_id))

    async def acknowledge(self, alert_id: str, unit_id: str) -> AlertAcknowledged:
        event = acknowledgement(alert_id, unit_id, self.clock())
        await self.produce(unit_id, dump_event(event))
        await asyncio.to_thread(self.log.record, [ack_row(event, next_version())])
        log.info("alert %s acknowledged by unit %s", alert_id, unit_id)
        return event

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/ack/{alert_id}", self._show)
        app.router.add_post("/ack/{alert_id}", self._press)

    def _signed(self, request: web.Request) -> tuple[str, str] | None:
        alert_id, unit_id = request.match_info["alert_id"], request.query.get("unit", "")
        if not self.valid(alert_id, unit_id, request.query.get("sig", "")):
            return None
        return alert_id, unit_id

    async def _show(self, request: web.Request) -> web.Response:
        signed = self._signed(request)
        if signed is None:
            return _page("链接无效或已被改动。", status=403)
        alert_id, unit_id = signed
        return _page(f"{unit_id}：提醒 {alert_id}", form=True)

    async def _press(self, request: web.Request) -> web.Response:
        signed = self._signed(request)
        if signed is None:
            return _page("链接无效或已被改动。", status=403)
        try:
            event = await self.acknowledge(*signed)
        except Exception as exc:  # Kafka or the log unavailable: the unit's press is not lost silently
            log.error("acknowledgement of alert %s not recorded: %s", signed[0], type(exc).__name__)
            return _page("暂时无法签收，请稍后再试。", status=503)
        return _page(f"已签收：{event.unit_id}，提醒 {event.alert_id}，{event.occurred_at:%Y-%m-%d %H:%M:%S}")


def _page(what: str, form: bool = False, status: int = 200) -> web.Response:
    body = PAGE.format(what=html.escape(what), form=FORM if form else "")
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
