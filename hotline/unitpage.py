"""A unit's page on the worker: its open alerts, each with a 签收 button.

Routes (a unit token opens its own unit only, a supervisor token any unit; the token is taken
from ``?token=`` once and swapped for the monitor's signed HttpOnly, SameSite=Strict cookie):

* ``GET /units/{unit_id}``                       the page, in Chinese;
* ``GET /units/{unit_id}/open``                  the same open alerts as JSON, for scripts;
* ``POST /units/{unit_id}/ack/{alert_id}``       签收: puts ``alert.acknowledged`` on the alerts topic.

*Open* is sent to the unit and not acknowledged (by this page or the notifier's signed link),
as the worker's alert feed has read the topic (:class:`~hotline.streams.tally.AlertTally`):
nothing here asks ClickHouse. A press produces the acknowledgement with the event id the signed
link uses (:func:`~hotline.streams.acks.ack_event_id`), keyed by unit, through a producer of its
own, then waits a moment for the feed to read it back, so the page it returns to no longer lists
the alert. Pressing twice is harmless: the same event again, or nothing once the feed has it.
The page follows the unit's alert stream and re-reads itself, so new alerts appear and
acknowledgements made elsewhere disappear without a reload. The cookie is SameSite=Strict, so
another site cannot make a browser press the button.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web as aioweb
from aiokafka import AIOKafkaProducer
from faust.web import Request, View

from hotline.monitor import signed_in
from hotline.schemas.events import dump_event
from hotline.schemas.registry import Registry
from hotline.settings import Settings
from hotline.streams.access import Access, Denied, credential
from hotline.streams.acks import ack_event_id, acknowledgement
from hotline.streams.alerts import AlertFeed
from hotline.streams.channels import KIND_LABELS
from hotline.streams.deadlines import TZ
from hotline.streams.tally import counts_of

if TYPE_CHECKING:
    from hotline.streams.app import Pipeline

log = logging.getLogger(__name__)

Produce = Callable[[str, bytes], Awaitable[None]]  # (unit key, event) onto the alerts topic
READ_BACK_S = 5.0  # how long a press waits for the feed to read its acknowledgement back
PRODUCE_TIMEOUT_S = 10.0  # Kafka unreachable for this long: the press is refused (503)
KAFKA_DOWN = "暂时无法签收：消息队列（Kafka）不可用，签收未记录，请稍后再试。"
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class AckProducer:
    """The page's own producer onto the alerts topic, started at the first press (and again after
    a failed start), so a worker whose Kafka is away still serves the page and answers 503."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None
        self.lock = asyncio.Lock()

    async def produce(self, key: str, value: bytes) -> None:
        """Once every in-sync replica has it (``acks=all``), or an exception within the timeout."""
        producer = await self._started()
        await asyncio.wait_for(
            producer.send_and_wait(self.settings.alerts_topic, value, key=key.encode()), PRODUCE_TIMEOUT_S
        )

    async def _started(self) -> AIOKafkaProducer:
        async with self.lock:
            if self.producer is None:
                producer = AIOKafkaProducer(**self.settings.producer_options(), **self.settings.kafka_client_options())
                try:
                    await asyncio.wait_for(producer.start(), PRODUCE_TIMEOUT_S)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self.producer = producer
            return self.producer

    async def run(self) -> None:
        """A task of the worker's: nothing to do but stop the producer when the worker stops."""
        try:
            await asyncio.Event().wait()
        finally:
            if self.producer is not None:
                await self.producer.stop()


def due_text(iso: str) -> str:
    """A deadline as the office reads it: its own time zone, to the minute."""
    return datetime.fromisoformat(iso).astimezone(TZ).strftime("%Y-%m-%d %H:%M")


def alert_item(unit_id: str, alert: Mapping[str, Any]) -> str:
    """One open alert as a list item: order, kind in Chinese, deadline, and its 签收 form (escaped)."""
    aid, order = html.escape(str(alert["alert_id"])), html.escape(str(alert["order_id"]))
    kind = html.escape(KIND_LABELS.get(str(alert["type"]), str(alert["type"])))
    action = f"/units/{html.escape(unit_id)}/ack/{aid}"
    return (
        f'<li data-alert="{aid}"><span class="order">{order}</span> <span class="kind">{kind}</span> '
        f'<span class="due">期限 {html.escape(due_text(str(alert["due_at"])))}</span> '
        f'<form method="post" action="{action}"><button type="submit" class="ack">签收</button></form></li>'
    )


def render(unit_id: str, name: str, alerts: Sequence[Mapping[str, Any]]) -> str:
    """The whole page: the list, or a line saying there is nothing open."""
    items = "".join(alert_item(unit_id, a) for a in alerts) or '<li class="none">暂无待签收提醒</li>'
    return PAGE.format(
        unit=html.escape(unit_id),
        name=html.escape(name),
        count=len(alerts),
        items=items,
        script=SCRIPT,
    )


def open_json(alert: Mapping[str, Any]) -> dict[str, Any]:
    """What ``/units/{unit_id}/open`` says of an alert: the page's fields, the kind in Chinese."""
    return {
        "alert_id": alert["alert_id"],
        "order_id": alert["order_id"],
        "type": alert["type"],
        "kind": KIND_LABELS.get(str(alert["type"]), str(alert["type"])),
        "due_at": alert["due_at"],
        "due": due_text(str(alert["due_at"])),
        "emitted_at": alert["emitted_at"],
    }


class UnitPage:
    """The page's answers; the worker's routes call these with the request (aiohttp's)."""

    def __init__(
        self,
        feed: AlertFeed,
        access: Access,
        produce: Produce,
        registry: Callable[[], Registry],
        clock: Callable[[], float] = time.time,
        read_back_s: float = READ_BACK_S,
    ) -> None:
        self.feed = feed
        self.access = access
        self.produce = produce
        self.registry = registry
        self.clock = clock
        self.read_back_s = read_back_s

    def _known(self, unit_id: str) -> bool:
        return unit_id in self.registry() or unit_id in self.feed.tally.sent

    async def show(self, request: aioweb.Request, unit_id: str) -> aioweb.Response:
        """The page; with ``?token=`` a 303 to itself without it, the sign-in cookie set."""
        try:
            granted = self.access.require_unit(credential(request), unit_id)
        except Denied as exc:
            return _message(exc.status, "需要本单位的有效令牌：请用发给您的带 ?token=… 的链接打开。")
        if not self._known(unit_id):
            return _message(404, f"没有这个单位：{unit_id}")
        if "token" in request.query:  # the token leaves the address bar: a ticket takes its place
            return signed_in(self.access, granted, f"/units/{unit_id}", request.url.scheme == "https")
        unit = self.registry().by_id.get(unit_id)
        body = render(unit_id, unit.name if unit else unit_id, self.feed.tally.open_alerts(unit_id))
        return aioweb.Response(text=body, content_type="text/html", headers=HEADERS)

    async def listing(self, request: aioweb.Request, unit_id: str) -> aioweb.Response:
        """The open alerts as JSON, newest first."""
        try:
            self.access.require_unit(credential(request), unit_id)
        except Denied as exc:
            return aioweb.json_response({"error": exc.reason}, status=exc.status)
        alerts = [open_json(a) for a in self.feed.tally.open_alerts(unit_id)]
        counts = self.feed.tally.counts({unit_id}).get(unit_id, counts_of(0, 0))
        return aioweb.json_response({"unit_id": unit_id, "open": alerts, "counts": counts}, headers=HEADERS)

    async def press(self, request: aioweb.Request, unit_id: str, alert_id: str) -> aioweb.Response:
        """签收: 401/403 for a caller not of this unit, 404 for an alert the feed never read, 403 for
        another unit's alert, 503 when Kafka does not take it (nothing is claimed then); else the
        acknowledgement is on the topic, and JSON says so (a form post goes back to the page)."""
        try:
            self.access.require_unit(credential(request), unit_id)
        except Denied as exc:
            return _refused(exc.status, exc.reason)
        owner = self.feed.tally.unit_of.get(alert_id)
        if owner is None:
            return _refused(404, f"没有这条提醒：{alert_id}")
        if owner != unit_id:
            return _refused(403, "这条提醒不属于本单位，不能签收。")
        read_back = alert_id in self.feed.acknowledged
        if not read_back:  # acknowledged already (pressed twice, or by the link): nothing to add
            try:
                await self._acknowledge(alert_id, unit_id)
            except Exception as exc:
                log.error(
                    "acknowledgement of alert %s by unit %s not produced: %s", alert_id, unit_id, type(exc).__name__
                )
                return _refused(503, KAFKA_DOWN)
            read_back = await self.feed.read_back(alert_id, self.read_back_s)
        if "application/json" not in request.headers.get("Accept", ""):
            return aioweb.Response(status=303, headers={"Location": f"/units/{unit_id}", **HEADERS})
        return aioweb.json_response(
            {"acknowledged": True, "alert_id": alert_id, "event_id": ack_event_id(alert_id), "read_back": read_back}
        )

    async def _acknowledge(self, alert_id: str, unit_id: str) -> None:
        event = acknowledgement(alert_id, unit_id, self.clock())
        await self.produce(unit_id, dump_event(event))
        log.info("alert %s acknowledged on the page of unit %s", alert_id, unit_id)

    def routes(self, app: aioweb.Application) -> None:
        """The same routes on a plain aiohttp application (the tests')."""

        async def show(r: aioweb.Request) -> aioweb.Response:
            return await self.show(r, r.match_info["unit_id"])

        async def listing(r: aioweb.Request) -> aioweb.Response:
            return await self.listing(r, r.match_info["unit_id"])

        async def press(r: aioweb.Request) -> aioweb.Response:
            return await self.press(r, r.match_info["unit_id"], r.match_info["alert_id"])

        app.router.add_get("/units/{unit_id}", show)
        app.router.add_get("/units/{unit_id}/open", listing)
        app.router.add_post("/units/{unit_id}/ack/{alert_id}", press)


def _message(status: int, text: str) -> aioweb.Response:
    body = MESSAGE.format(text=html.escape(text))
    return aioweb.Response(text=body, status=status, content_type="text/html", headers=HEADERS)


def _refused(status: int, reason: str) -> aioweb.Response:
    return aioweb.json_response({"error": reason}, status=status)


def register(pipeline: Pipeline, access: Access, page: Callable[[str], Callable[[Any], Any]]) -> UnitPage:
    """Add the page's routes (through ``page``, which lets them past the worker's gate) and the task
    that stops its producer."""
    producer = AckProducer(pipeline.settings)
    pipeline.app.task(producer.run)
    unit_page = UnitPage(pipeline.feed, access, producer.produce, lambda: pipeline.registry)

    @page("/units/{unit_id}")
    async def show(self: View, request: Request, unit_id: str) -> Any:
        """The unit's open alerts with their 签收 buttons (the sign-in redirect with ``?token=``)."""
        return await unit_page.show(request, unit_id)  # type: ignore[arg-type]

    @page("/units/{unit_id}/open")
    async def listing(self: View, request: Request, unit_id: str) -> Any:
        """The unit's open alerts and its counts (sent, acknowledged, waiting) as JSON."""
        return await unit_page.listing(request, unit_id)  # type: ignore[arg-type]

    @page("/units/{unit_id}/ack/{alert_id}")
    class Acknowledge(View):
        async def post(self, request: Request, unit_id: str, alert_id: str) -> Any:
            """签收 of one of the unit's alerts (see :meth:`UnitPage.press`)."""
            return await unit_page.press(request, unit_id, alert_id)  # type: ignore[arg-type]

    return unit_page


MESSAGE = '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>12345 单位提醒</title><p>{text}</p></html>'

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>12345 工单提醒 · {name}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
#open li {{ margin: .5em 0; }} #open form {{ display: inline; }}
.kind {{ font-weight: bold; }} .order {{ font-family: monospace; }} #message {{ color: #b00; }}
</style></head>
<body data-unit="{unit}">
<h1>{name} · 待签收提醒（<span id="count">{count}</span>）</h1>
<p>已发送至本单位、尚未签收的提醒，最新的在前；期限为本市时间。签收后提醒即从列表移除。</p>
<p id="message" role="status"></p>
<ul id="open">{items}</ul>
<script>{script}</script>
</body></html>
"""

# Presses go by fetch (the page stays; a form post without script works too), and the list is
# re-read from the page itself: the server's escaped HTML is the only rendering.
SCRIPT = """
(() => {
  const unit = document.body.dataset.unit;
  const message = document.getElementById("message");
  let pending = null;
  async function refresh() {
    const response = await fetch(location.pathname, { headers: { Accept: "text/html" }, cache: "no-store" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    document.getElementById("open").replaceChildren(...fresh.getElementById("open").childNodes);
    document.getElementById("count").textContent = fresh.getElementById("count").textContent;
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  }
  function soon() { clearTimeout(pending); pending = setTimeout(refresh, 300); }
  document.getElementById("open").addEventListener("submit", async (e) => {
    e.preventDefault();
    const button = e.target.querySelector("button");
    button.disabled = true;
    message.textContent = "";
    try {
      const response = await fetch(e.target.action, { method: "POST", headers: { Accept: "application/json" } });
      const body = await response.json();
      if (!response.ok) {
        message.textContent = body.error || ("签收失败：" + response.status);
        button.disabled = false;
        return;
      }
      message.textContent = "已签收。";
    } catch (err) {
      message.textContent = "签收失败：网络不可用，请稍后再试。";
      button.disabled = false;
      return;
    }
    refresh();
  });
  const stream = new EventSource("/units/" + encodeURIComponent(unit) + "/alerts");
  ["alert.due_soon", "alert.overdue", "alert.supervision_due"].forEach((t) => stream.addEventListener(t, soon));
  setInterval(refresh, 10000);  // acknowledgements made elsewhere (the message's link)
})();
"""
