"""The supervisors' live screen on the worker: every unit's figures, pushed as they change.

Routes (all need a token; a unit token sees its own unit only, filtered here on the
server, so another unit's figures are never sent to it):

* ``GET /monitor``           the page (``hotline/static/monitor.html``), in Chinese;
* ``GET /monitor/stream``    server-sent events: ``snapshot`` (the figures) and ``alert``;
* ``GET /monitor/snapshot``  the same figures once, as JSON, for scripts;
* ``GET /monitor/trend?unit=<id>&days=30``  one unit's (a supervisor: any unit's, or every
  unit summed without ``unit``) screen counts per day over the last ``days``, from the agents'
  day windows, for the page's chart: a unit token may ask for its own unit only (403);
* ``GET /monitor/static/echarts.min.js``  Apache ECharts, shipped in the package
  (``hotline/static/vendor/echarts/``): the page must work on an offline network, so no CDN.
  It needs the token or the cookie like the page: the monitor's routes answer no one without
  one, and the page's ``<script>`` request (same origin) carries the cookie anyway.

The link people are given is ``/monitor?token=…``: the page checks the token, sets a
signed sign-in ticket as an HttpOnly, SameSite=Strict cookie and redirects (303) to
``/monitor`` without it, so the token does not stay in the address bar, the history or
any URL the page requests; the stream and the bulletin links then go by the cookie.

``?date=YYYY-MM-DD`` views another day (2000-01-01 to 2099-12-31; anything else is a
400); without it the view follows today (the office's local day) across midnight.

Today's figures are the agents' tables in memory (``reports/live.py``): a :class:`Board`
per viewed day recomputes its snapshot when this worker's sunk positions moved (checked
every tick, for free), when an order crosses a deadline, or when the day changes; at most
once per ``min_interval_s``, and only while someone watches. A past day is read from
ClickHouse's day windows once, then again only when the positions move. A snapshot is pushed only when
its figures differ from the last one pushed, and a slow client gets the latest one,
never a backlog.

With ``hotline store`` (``HOTLINE_STORE_URL``: N workers, each reading some partitions), one
worker's agents hold its partitions' units only, so the screen reads everyone's from the store
instead (:class:`StoreWide`): the same day windows, open orders and orders awaiting supervision
the agents load on assignment, for every partition, read again when the store's ledger has moved
(checked at most once per ``min_interval_s``, and only while someone watches). Any worker's
screen then shows every unit, whichever worker holds it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web as aioweb
from faust.web import Request, Response, View

from hotline.reports.live import (
    TREND_DAYS,
    TREND_MAX_DAYS,
    LiveFigures,
    Snapshot,
    build_live_snapshot,
    build_snapshot,
    build_trend,
    today,
)
from hotline.streams import history
from hotline.streams.access import SUPERVISOR, TICKET_COOKIE, Access, Denied, credential
from hotline.streams.deadlines import TZ
from hotline.streams.gauges import AgentFigures, AwaitingSupervision, OpenOrders
from hotline.streams.processing import state_of
from hotline.streams.tally import AlertTally, with_counts
from hotline.streams.windows import Windows

if TYPE_CHECKING:
    from hotline.streams.app import Pipeline

log = logging.getLogger(__name__)

PAGE = Path(__file__).parent / "static" / "monitor.html"
ECHARTS = Path(__file__).parent / "static" / "vendor" / "echarts" / "echarts.min.js"
TICK_S = 0.1  # how often the cheap local change check runs
MIN_INTERVAL_S = 0.5  # at most two recomputes a second per viewed day
SAFETY_REFRESH_S = 60.0  # recompute anyway now and then: nothing is missed for long
RECENT_ALERTS = 50
KEEPALIVE_S = 15.0

FIRST_DAY = date(2000, 1, 1)  # the views a hotline can have data for; beyond, date arithmetic
LAST_DAY = date(2099, 12, 31)  # (the day after, the month after) would overflow into a 500

Payload = dict[str, Any]


def parse_day(raw: str | None) -> date | None:
    """``?date=`` as a date; None (follow today) when absent; ValueError (a 400) when malformed,
    impossible (2019-02-30) or outside 2000-01-01..2099-12-31."""
    if raw is None or raw == "":
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise ValueError(f"date must look like 2019-11-04, got {raw!r}")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"no such day: {raw} (the month has fewer days)") from None  # Python's words stay inside
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"date must be between {FIRST_DAY} and {LAST_DAY}, got {raw!r}")
    return day


def visible_units(granted: str) -> set[str] | None:
    """What a token's scope lets through: every unit (None) for a supervisor, else its own."""
    return None if granted == SUPERVISOR else {granted}


def alert_visible(granted: str, alert: Payload) -> bool:
    return granted in (SUPERVISOR, alert.get("unit_id"))


def trend_request(query: Any, granted: str, known: Container[str]) -> tuple[str | None, int]:
    """``?unit=&days=`` of a trend as (unit, days): ValueError (a 400) for an unknown unit or days
    not a whole number 1..TREND_MAX_DAYS; Denied (403) for a unit token asking for another unit.

    Without ``unit`` a unit token gets its own unit and a supervisor every unit summed.
    """
    raw_days = query.get("days") or str(TREND_DAYS)
    if not re.fullmatch(r"\d{1,3}", raw_days) or not 1 <= int(raw_days) <= TREND_MAX_DAYS:
        raise ValueError(f"days must be a whole number from 1 to {TREND_MAX_DAYS}, got {raw_days!r}")
    unit = query.get("unit") or (None if granted == SUPERVISOR else granted)
    if unit is not None and unit not in known:
        raise ValueError(f"no such unit: {unit!r}")
    if granted != SUPERVISOR and unit != granted:
        raise Denied(403, f"this token may see unit {granted!r} only")
    return unit, int(raw_days)


def trend_answer(
    pipeline: Pipeline,
    granted: str,
    query: Any,
    now: datetime | None = None,
    figures: LiveFigures | None = None,
) -> tuple[int, Payload]:
    """The trend endpoint's status and body for one caller (the token already checked): today's
    live data from the agents' day windows (or ``figures``: the store's, see :class:`StoreWide`),
    never a ClickHouse query here, so it runs on the event loop."""
    try:
        unit, days = trend_request(query, granted, pipeline.registry)
    except Denied as exc:
        return exc.status, {"error": exc.reason}
    except ValueError as exc:
        return 400, {"error": str(exc)}
    return 200, build_trend(figures or pipeline.figures, unit, days, now or datetime.now(TZ))


def figures_for(snapshot: Snapshot, granted: str, tally: AlertTally | None = None) -> Payload:
    """A snapshot as one scope may see it, with each unit's alerts sent, acknowledged and waiting
    (from the alert feed's ``tally``: the topic as read so far, whatever day is viewed).

    The bulletins are city-wide pages that need a supervisor once tokens exist (and the
    monitor is only reached with a token), so a unit's view carries no links it could
    not open, and ``bulletins_open`` tells the page to say why.
    """
    payload = with_counts(snapshot.to_json(visible_units(granted)), tally.counts() if tally else {})
    payload["bulletins_open"] = granted == SUPERVISOR
    if granted != SUPERVISOR:
        payload["bulletins"] = []
    return payload


def figures_key(payload: Payload) -> str:
    """What must differ for a push: the figures, not the instant they were read at."""
    return json.dumps({k: v for k, v in payload.items() if k != "as_of"}, sort_keys=True, ensure_ascii=False)


@dataclass(eq=False)
class Watcher:
    """One open stream: its scope and what is waiting to be written to it (latest snapshot only)."""

    granted: str
    snapshot: Payload | None = None
    alerts: deque[Payload] = field(default_factory=lambda: deque(maxlen=RECENT_ALERTS))
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_key: str | None = None

    def offer_snapshot(self, payload: Payload) -> None:
        """Only when this caller's own view changed: another unit's activity moves nothing here."""
        key = figures_key(payload)
        if key == self.last_key:
            return
        self.last_key = key
        self.snapshot = payload
        self.wake.set()

    def offer_alert(self, alert: Payload) -> None:
        if alert_visible(self.granted, alert):
            self.alerts.append(alert)
            self.wake.set()

    def take(self) -> list[tuple[str, Payload]]:
        """The latest figures first (what the screen is for), then alerts oldest first (each goes on top)."""
        out: list[tuple[str, Payload]] = []
        if self.snapshot is not None:
            out.append(("snapshot", self.snapshot))
            self.snapshot = None
        out += [("alert", a) for a in self.alerts]
        self.alerts.clear()
        self.wake.clear()
        return out


@dataclass(eq=False)
class Board:
    """One viewed day (None: today, whatever day that is) and everyone watching it."""

    day: date | None
    watchers: set[Watcher] = field(default_factory=set)
    snapshot: Snapshot | None = None
    fingerprint: object = None
    computed_at: float = 0.0
    pushed_key: str | None = None
    alerts_version: int = -1  # the alert tally's version its watchers were last offered
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def stale(self, fingerprint: object, now: float) -> bool:
        """Whether the figures may have changed since the last recompute."""
        if self.snapshot is None or fingerprint != self.fingerprint:
            return True
        if self.snapshot.next_change_at is not None and now >= self.snapshot.next_change_at:
            return True
        if self.day is None and today(datetime.now(TZ)) != self.snapshot.day:
            return True
        return now - self.computed_at >= SAFETY_REFRESH_S

    def payload_for(self, granted: str, tally: AlertTally | None = None) -> Payload:
        assert self.snapshot is not None
        return figures_for(self.snapshot, granted, tally)


class StoreWide:
    """Every worker's live figures, from the store the workers share (``hotline store``).

    The same reads a worker makes on assignment (``WorkerState.load``), for every source
    partition: the day windows of the last ``LIVE_DAYS``, the open orders, the orders awaiting
    supervision, the months stored. Read again only when the store's ledger has moved, which
    it does once a batch of any worker is stored (its windows and order states with it)."""

    def __init__(self, pipeline: Pipeline, min_interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.pipeline = pipeline
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.ledger: tuple[Any, ...] = ()
        self.asked_at = -float("inf")
        self.figures: AgentFigures | None = None
        self.loaded_for: tuple[Any, ...] | None = None

    async def fingerprint(self, force: bool = False) -> tuple[Any, ...]:
        """The store's ledger: asked at most once per ``min_interval_s`` unless ``force``."""
        now = self.clock()
        if force or now - self.asked_at >= self.min_interval_s:
            sunk = await self.pipeline.in_store_thread(self.pipeline.store.progress)
            self.ledger, self.asked_at = tuple(sorted(sunk.items())), now
        return self.ledger

    async def current(self, force: bool = False) -> AgentFigures:
        ledger = await self.fingerprint(force)
        if self.figures is None or ledger != self.loaded_for:
            self.figures = await self.pipeline.in_store_thread(self._read)
            self.loaded_for = ledger
        return self.figures

    def _read(self) -> AgentFigures:
        """On the store thread: every partition's figures as the store holds them."""
        from hotline.streams.state import LIVE_DAYS

        store = self.pipeline.store
        gen = self.pipeline.generation.gen
        windows = Windows()
        windows.load(store.windows("day >= %(since)s", {"since": history.today() - timedelta(days=LIVE_DAYS)}))
        open_orders = OpenOrders()
        for row in store.open_orders():
            open_orders.update(row.order_id, row.unit_id, row.due)
        awaiting = AwaitingSupervision()
        for row in store.awaiting_supervision():
            awaiting.follow(row.order_id, state_of(row, gen))
        return AgentFigures(windows, open_orders, set(history.event_months(store)), awaiting)


class LiveMonitor:
    """Keeps one :class:`Board` per viewed day fresh while it has watchers, and fans out alerts."""

    def __init__(
        self,
        pipeline: Pipeline,
        min_interval_s: float = MIN_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        shared_store: bool = False,
    ) -> None:
        self.pipeline = pipeline
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.boards: dict[date | None, Board] = {}
        # Several workers through one store: the screen reads every worker's figures from it.
        self.store_wide = StoreWide(pipeline, min_interval_s) if shared_store else None

    async def figures(self, force: bool = False) -> LiveFigures:
        """Today's figures: this worker's agents', or every worker's from the store."""
        if self.store_wide is not None:
            return await self.store_wide.current(force)
        return self.pipeline.figures

    # -- watchers -------------------------------------------------------------------------
    def watch(self, day: date | None, granted: str) -> tuple[Board, Watcher]:
        board = self.boards.setdefault(day, Board(day))
        watcher = Watcher(granted)
        board.watchers.add(watcher)
        for alert in list(self.pipeline.feed.recent)[-RECENT_ALERTS:]:
            watcher.offer_alert(alert)
        return board, watcher

    def unwatch(self, board: Board, watcher: Watcher) -> None:
        board.watchers.discard(watcher)
        if not board.watchers and self.boards.get(board.day) is board:
            del self.boards[board.day]

    async def prime(self, board: Board, watcher: Watcher) -> None:
        """A new watcher gets the current figures at once, computed if the board has none yet."""
        async with board.lock:
            if board.snapshot is None:
                await self._recompute(board, await self._fingerprint(force_remote=True))
        watcher.offer_snapshot(board.payload_for(watcher.granted, self.pipeline.feed.tally))

    # -- one-off reads --------------------------------------------------------------------
    async def snapshot(self, day: date | None) -> Snapshot:
        """Today from the agents' tables, on the event loop (no ClickHouse, never the store's
        lock); another day from ClickHouse's day windows and order states."""
        now = datetime.now(TZ)
        if day is None or day == today(now):
            figures = await self.figures()
            return build_live_snapshot(figures, self.pipeline.registry, now)
        return await self.pipeline.in_store_thread(self._build, day)  # type: ignore[no-any-return]

    def _build(self, day: date | None) -> Snapshot:
        return build_snapshot(self.pipeline.store, self.pipeline.registry, day, datetime.now(TZ))

    # -- the loop -------------------------------------------------------------------------
    async def run(self) -> None:
        """Recompute what is watched when it may have changed; push what did change."""
        forward = asyncio.ensure_future(self._forward_alerts())
        try:
            while True:
                await asyncio.sleep(TICK_S)
                if self.boards:
                    try:
                        await self.tick()
                    except Exception:  # a failed read must not end live updates for good
                        log.exception("monitor refresh failed; retrying")
                        await asyncio.sleep(1.0)
        finally:
            forward.cancel()

    async def tick(self) -> None:
        fingerprint = await self._fingerprint()
        now = self.clock()
        for board in list(self.boards.values()):
            if now - board.computed_at < self.min_interval_s or not board.stale(fingerprint, now):
                if board.snapshot is not None and board.alerts_version != self.pipeline.feed.tally.version:
                    self._publish(board)  # an alert or a 签收: the counts moved, the figures need no read
                continue
            async with board.lock:
                await self._recompute(board, fingerprint)

    async def _fingerprint(self, force_remote: bool = False) -> tuple[Any, ...]:
        """What moves when a batch is sunk: this worker's positions, in memory (a read of them is free);
        with a shared store, its ledger (every worker's batches), asked at most once per interval."""
        if self.store_wide is not None:
            return await self.store_wide.fingerprint(force_remote)
        return tuple(sorted(self.pipeline.positions.items())), id(self.pipeline.figures.windows)

    async def _recompute(self, board: Board, fingerprint: object) -> None:
        board.snapshot = await self.snapshot(board.day)
        board.fingerprint = fingerprint
        board.computed_at = self.clock()
        key = figures_key(board.snapshot.to_json())
        if key != board.pushed_key or board.alerts_version != self.pipeline.feed.tally.version:
            board.pushed_key = key
            self._publish(board)

    def _publish(self, board: Board) -> None:
        """Each scope's view is built once per push, whatever the number of watchers."""
        tally = self.pipeline.feed.tally
        board.alerts_version = tally.version
        views: dict[str, Payload] = {}
        for watcher in list(board.watchers):
            if watcher.granted not in views:
                views[watcher.granted] = board.payload_for(watcher.granted, tally)
            watcher.offer_snapshot(views[watcher.granted])

    async def _forward_alerts(self) -> None:
        queue = self.pipeline.feed.subscribe()
        try:
            while True:
                alert = await queue.get()
                for board in list(self.boards.values()):
                    for watcher in list(board.watchers):
                        watcher.offer_alert(alert)
        finally:
            self.pipeline.feed.unsubscribe(queue)


def recent_alerts(alerts: Iterable[Payload], granted: str, limit: int = RECENT_ALERTS) -> list[Payload]:
    """Newest first, only those the caller may see."""
    return [a for a in reversed(list(alerts)) if alert_visible(granted, a)][:limit]


def _sse(kind: str, payload: Payload) -> bytes:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n".encode()


async def stream(request: Any, monitor: LiveMonitor, day: date | None, granted: str) -> aioweb.StreamResponse:
    """The SSE response: the recent alerts and the figures now, then every change."""
    response = aioweb.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    board, watcher = monitor.watch(day, granted)
    try:
        await response.write(b"retry: 1000\n\n")
        await monitor.prime(board, watcher)
        while True:
            try:
                await asyncio.wait_for(watcher.wake.wait(), timeout=KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            for kind, payload in watcher.take():
                await response.write(_sse(kind, payload))
    except ConnectionResetError:
        pass  # the browser went away
    finally:
        monitor.unwatch(board, watcher)
    return response


def _scope_and_day(view: View, request: Request, access: Access) -> tuple[str, date | None] | Response:
    """Who asks and for which day, or the JSON refusal (401/403 for the token first, then 400 for the date)."""
    try:
        return access.scope(credential(request)), parse_day(request.query.get("date"))
    except Denied as exc:
        return view.json({"error": exc.reason}, status=exc.status)
    except ValueError as exc:
        return view.json({"error": str(exc)}, status=400)


DENIED_PAGE = (
    '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>需要令牌</title>'
    "<p>访问实时监测需要有效令牌：请用发给您的带 <code>?token=…</code> 的链接打开。"
    "登录凭据有效期有限，过期或令牌更换后请重新打开该链接。</p></html>"
)


def monitor_address(day: date | None) -> str:
    """Where the sign-in redirect goes: the page, with its day but without the token."""
    return "/monitor" + (f"?date={day.isoformat()}" if day else "")


def signed_in(access: Access, granted: str, location: str, secure: bool) -> aioweb.Response:
    """303 to ``location`` with the sign-in ticket as a cookie no script can read and no other site can send.

    Path ``/`` so that the stream and the bulletin links carry it too; ``Secure`` when
    the request came over HTTPS (the worker itself serves plain HTTP on its host).
    """
    response = aioweb.Response(
        status=303,
        headers={"Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
    set_ticket(response, access, granted, secure)
    return response


def set_ticket(response: aioweb.StreamResponse, access: Access, granted: str, secure: bool) -> None:
    response.set_cookie(
        TICKET_COOKIE,
        access.issue(granted),
        max_age=int(access.ttl_s),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )


def register(pipeline: Pipeline, access: Access, page: Callable[[str], Callable[[Any], Any]]) -> LiveMonitor:
    """Add the monitor's routes (through ``page``, which lets them past the worker's gate) and its refresh task."""
    app = pipeline.app
    monitor = LiveMonitor(pipeline, shared_store=bool(pipeline.settings.store_url))
    app.task(monitor.run)

    @page("/monitor")
    async def monitor_page(self: View, request: Request) -> Any:
        presented = credential(request)
        try:
            granted = access.scope(presented)
        except Denied as exc:
            return self.html(DENIED_PAGE, status=exc.status)
        try:
            day = parse_day(request.query.get("date"))
        except ValueError as exc:
            return self.json({"error": str(exc)}, status=400)
        secure = request.url.scheme == "https"
        if "token" in request.query:  # the token leaves the address bar: a ticket takes its place
            return signed_in(access, granted, monitor_address(day), secure)
        html = aioweb.Response(
            text=PAGE.read_text(encoding="utf-8"),
            content_type="text/html",
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )
        if presented.token is not None:  # Authorization: Bearer (a script or proxy): the page's stream needs a ticket
            set_ticket(html, access, granted, secure)
        return html

    @page("/monitor/stream")
    async def live(self: View, request: Request) -> Any:
        asked = _scope_and_day(self, request, access)
        if not isinstance(asked, tuple):
            return asked  # the refusal
        granted, day = asked
        return await stream(request, monitor, day, granted)

    @page("/monitor/snapshot")
    async def snapshot(self: View, request: Request) -> Response:
        asked = _scope_and_day(self, request, access)
        if not isinstance(asked, tuple):
            return asked  # the refusal
        granted, day = asked
        figures = figures_for(await monitor.snapshot(day), granted, pipeline.feed.tally)
        figures["alerts"] = recent_alerts(pipeline.feed.recent, granted)
        return self.json(figures)

    @page("/monitor/trend")
    async def trend(self: View, request: Request) -> Response:
        try:
            granted = access.scope(credential(request))
        except Denied as exc:
            return self.json({"error": exc.reason}, status=exc.status)
        status, body = trend_answer(pipeline, granted, request.query, figures=await monitor.figures())
        return self.json(body, status=status)

    @page("/monitor/static/echarts.min.js")
    async def echarts(self: View, request: Request) -> Any:
        try:
            access.scope(credential(request))
        except Denied as exc:
            return self.json({"error": exc.reason}, status=exc.status)
        return aioweb.Response(
            body=ECHARTS.read_bytes(),
            content_type="application/javascript",
            charset="utf-8",
            headers={"Cache-Control": "private, max-age=86400"},
        )

    return monitor
