"""HTTP pages of the running worker: the one process that holds the chDB directory.

Other processes (``hotline bulletin``, ``hotline replay --wait``) ask the worker
here instead of opening the on-disk chDB themselves, which only one process may.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web as aioweb
from aiohttp.typedefs import Handler, Middleware
from faust.types import AppT
from faust.types.web import PageArg
from faust.web import Request, Response, View
from faust.web.drivers.aiohttp import Web as AiohttpWeb
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hotline.connections import IDLE_TIMEOUT_S, CappedRunner, ConnectionCap
from hotline.reports.edition import assemble
from hotline.reports.periods import parse
from hotline.reports.render import FORMATS, MEDIA_TYPES, render
from hotline.schemas.escaping import printable
from hotline.sinks import backup
from hotline.sinks.backup import FINGERPRINT_HEADER, LEDGER_HEADER, ROWS_HEADER
from hotline.sinks.store import owned
from hotline.streams.access import SUPERVISOR, Access, Denied, credential

if TYPE_CHECKING:
    from hotline.streams.app import Pipeline


class Surface:
    """The worker's routes: the project's pages and nothing else.

    Faust adds views of its own (``/table/…`` reads any key of the order table, ``/router``
    shows the cluster, ``/`` answers): they are switched off in ``streams/faustapp.py``, and this
    gate answers 404 to any route not registered through :meth:`page`, so a built-in view
    that a later Faust adds, or turns on by default, is closed too.
    """

    def __init__(self, app: AppT) -> None:
        self.app = app
        self.paths: set[str] = set()

    def page(self, path: str) -> Callable[[PageArg], type[View]]:
        """``app.page``, remembering the path as one the gate lets through."""
        self.paths.add(path)
        return self.app.page(path)

    def close(self) -> None:
        """Install the gate; before the server starts, when aiohttp still accepts middlewares."""
        web = self.app.web
        if not isinstance(web, AiohttpWeb):
            raise RuntimeError("the worker's pages need Faust's aiohttp web driver")
        web.web_app.middlewares.append(_gate(frozenset(self.paths)))


def _gate(paths: frozenset[str]) -> Middleware:
    @aioweb.middleware
    async def gate(request: aioweb.Request, handler: Handler) -> aioweb.StreamResponse:
        info = request.match_info
        if info.http_exception is None:  # a route matched: is it one of ours?
            resource = info.route.resource
            if resource is None or resource.canonical not in paths:
                return aioweb.json_response({"error": "not found"}, status=404)
        return await handler(request)

    return gate


def access_of(pipeline: Pipeline) -> Access:
    """Tokens and ticket signing from the settings: the same on every worker of one configuration."""
    s = pipeline.settings
    return Access.configure(s.access_tokens, s.ticket_secret, s.ticket_ttl_s)


def bound_connections(app: Any, per_client: int) -> None:
    """Faust's web server closes idle connections after :data:`IDLE_TIMEOUT_S` (from the connection's
    start: one that never sends a request too) and holds at most ``per_client`` per client address.

    Faust builds its aiohttp runner without handler options, so the runner is rebuilt with them
    before the server starts (a private attribute of Faust's aiohttp driver): two hundred idle
    clients must not hold the worker's descriptors for a minute and more."""
    web = app.web
    cap = ConnectionCap(per_client)
    web._runner = CappedRunner(web.web_app, cap, access_log=None, keepalive_timeout=IDLE_TIMEOUT_S)


def register(pipeline: Pipeline) -> None:
    bound_connections(pipeline.app, pipeline.settings.max_connections_per_client)
    surface = Surface(pipeline.app)
    access = access_of(pipeline)

    @surface.page("/bulletin/{period}")
    async def bulletin(self: View, request: Request, period: str) -> Response:
        """Any period's bulletin: ``/bulletin/2019-11``, ``/bulletin/2019-W47``, ``/bulletin/2019-Q4``,
        ``/bulletin/2019``, ``/bulletin/2019-11-04..2019-11-10``."""
        if denied := _office_only(self, request, access):
            return denied
        fmt = request.query.get("format", "json")
        if fmt not in FORMATS:
            return self.error(400, f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        try:
            month = parse(period).key
        except ValueError as exc:
            return self.error(400, str(exc))
        body = await pipeline.in_store_thread(_render_bulletin, pipeline, month, fmt)
        # aiohttp refuses a charset inside content_type: pass the whole header instead.
        headers = {"Content-Type": MEDIA_TYPES[fmt]}
        if fmt in ("xlsx", "docx", "csv", "md"):
            headers["Content-Disposition"] = f'attachment; filename="bulletin-{month}.{fmt}"'
        return self.bytes(body, content_type=None, headers=headers)

    @surface.page("/units/{unit_id}/alerts")
    async def unit_alerts(self: View, request: Request, unit_id: str) -> Any:
        try:
            access.require_unit(credential(request), unit_id)
        except Denied as exc:
            return self.json({"error": exc.reason}, status=exc.status)
        return await event_stream(request, pipeline, lambda alert: alert["unit_id"] == unit_id)

    @surface.page("/alerts")
    async def all_alerts(self: View, request: Request) -> Any:
        try:
            granted = access.scope(credential(request))
        except Denied as exc:
            return self.json({"error": exc.reason}, status=exc.status)
        return await event_stream(request, pipeline, lambda alert: granted in (SUPERVISOR, alert["unit_id"]))

    @surface.page("/metrics")
    async def metrics(self: View, request: Request) -> Response:
        return self.bytes(
            generate_latest(pipeline.metrics.registry), content_type=None, headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    @surface.page("/offsets")
    async def offsets(self: View, request: Request) -> Response:
        """What ``replay --wait`` polls: cheap, unlike the counts of /status."""
        if denied := _office_only(self, request, access):
            return denied
        sunk = await pipeline.in_store_thread(pipeline.store.progress)
        return self.json({"offsets": [[t, p, o] for (t, p), o in sorted(sunk.items())]})

    @surface.page("/status")
    async def status(self: View, request: Request) -> Response:
        if denied := _office_only(self, request, access):
            return denied
        # The store's health comes from the event loop: during an outage the store thread is
        # the thing that hangs, and this page must still say what is wrong.
        body: dict[str, Any] = {"store": pipeline.health.as_json()}
        if pipeline.claims.fenced:  # holds partitions, reads none of them: said, not hidden behind a lag of 0
            body["reading"] = {"ok": False, "fenced_since": pipeline.claims.fenced_since, "why": FENCED}
        try:
            body.update(await asyncio.wait_for(pipeline.in_store_thread(_status, pipeline), STATUS_TIMEOUT_S))
        except Exception as exc:
            body["error"] = printable(f"ClickHouse did not answer: {type(exc).__name__}: {exc}", 500)
        return self.json(body)

    register_deadletters(pipeline, access, surface)

    @surface.page("/backup/{table}")
    async def backup_table(self: View, request: Request, table: str) -> Response:
        """``hotline backup`` while this worker holds ClickHouse: a table's partitions, or with
        ``?partition=`` its rows as Native bytes (``hotline.sinks.backup``)."""
        if denied := _office_only(self, request, access):
            return denied
        return await _backup_page(self, request, pipeline, table)

    from hotline import monitor

    monitor.register(pipeline, access, surface.page)
    from hotline import unitpage

    unitpage.register(pipeline, access, surface.page)
    surface.close()


def register_deadletters(pipeline: Pipeline, access: Access, surface: Surface) -> None:
    """``hotline deadletters`` over HTTP, for supervisors: GET lists (``?reason=&source=&since=&until=
    &unit=&redriven=&limit=&id=``), GET ``/deadletters/{id}`` shows one, POST redrives
    (``{"select": [[name, value], ...], "again": false}``). Redacted, as the CLI prints them."""
    from hotline.streams import redrive as rd
    from hotline.streams.redrive import listing

    @surface.page("/deadletters")
    class DeadLetters(View):
        async def get(self, request: Request) -> Response:
            if denied := _office_only(self, request, access):
                return denied
            try:
                selection = rd.Selection.from_params(request.query.items())
            except rd.BadSelection as exc:
                return self.json({"error": str(exc)}, status=400)
            return self.json(await pipeline.in_store_thread(listing, pipeline.store, selection))

        async def post(self, request: Request) -> Response:
            if denied := _office_only(self, request, access):
                return denied
            try:
                body = await request.json()
                selection = rd.Selection.from_params([(str(k), str(v)) for k, v in body.get("select", [])])
                result = await rd.redrive(
                    pipeline.store, selection, pipeline.settings, bool(body.get("again")), pipeline.in_store_thread
                )
            except (rd.BadSelection, ValueError, AttributeError, TypeError) as exc:
                return self.json({"error": str(exc)}, status=400)
            return self.json(result.view())

    @surface.page("/deadletters/{letter_id}")
    async def deadletter(self: View, request: Request, letter_id: str) -> Response:
        if denied := _office_only(self, request, access):
            return denied
        try:
            rd.LetterId.parse(letter_id)
        except rd.BadSelection as exc:
            return self.json({"error": str(exc)}, status=400)
        found = await pipeline.in_store_thread(rd.show, pipeline.store, letter_id)
        if found is None:
            return self.json({"error": f"no dead letter {letter_id}"}, status=404)
        return self.json(found)


def _office_only(view: View, request: Request, access: Access) -> Response | None:
    try:
        access.require_supervisor(credential(request))
    except Denied as exc:
        return view.json({"error": exc.reason}, status=exc.status)
    return None


async def _backup_page(view: View, request: Request, pipeline: Pipeline, table: str) -> Response:
    """On the worker's store thread, like every write: each copy is a table between two batches."""
    store = pipeline.store
    if not owned(store):
        return view.error(409, "this worker stores through `hotline store`: back up from there (HOTLINE_STORE_URL)")
    try:
        if "partition" not in request.query:
            found = await pipeline.in_store_thread(backup.partitions, store, table)
            return view.json({"schema_version": store.schema_version, "partitions": found})
        exported = await pipeline.in_store_thread(backup.export, store, table, request.query["partition"])
    except backup.BackupError as exc:
        return view.error(400, str(exc))
    headers = {"Content-Type": "application/octet-stream", ROWS_HEADER: str(exported.rows)}
    if exported.ledger is not None:
        headers[LEDGER_HEADER] = json.dumps(exported.ledger)
    if exported.fingerprint:
        headers[FINGERPRINT_HEADER] = exported.fingerprint
    return view.bytes(exported.native, content_type=None, headers=headers)


def _render_bulletin(pipeline: Pipeline, month: str, fmt: str) -> bytes:
    """The office's edition of the period ``month`` (环比 and 同比 when complete, 补录, charts),
    as ``hotline bulletin`` prints it."""
    return render(assemble(pipeline.store, month, pipeline.registry), fmt)


STATUS_TIMEOUT_S = 5.0
FENCED = (
    "the store refused this worker's claim of its partitions (another claim holds them): it reads nothing "
    "until the next assignment, or until that claim lapses and its own is taken again"
)


def _status(pipeline: Pipeline) -> dict[str, Any]:
    store = pipeline.store
    return {
        "schema_version": store.schema_version,
        "counts": store.counts(),
        "offsets": [[t, p, o] for (t, p), o in sorted(store.progress().items())],
        "recent_deadletters": store.deadletters(limit=20),  # what `hotline status` shows an operator
    }


async def event_stream(
    request: Any, pipeline: Pipeline, visible: Callable[[dict[str, Any]], bool], keepalive_s: float = 15.0
) -> aioweb.StreamResponse:
    """Server-sent events: the recent alerts this caller may see, then each new one as it is sent."""
    response = aioweb.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    queue = pipeline.feed.subscribe()
    try:
        for alert in list(pipeline.feed.recent):
            if visible(alert):
                await response.write(_sse(alert))
        while True:
            try:
                alert = await asyncio.wait_for(queue.get(), timeout=keepalive_s)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if visible(alert):
                await response.write(_sse(alert))
    except ConnectionResetError:
        pass  # the client went away
    finally:
        pipeline.feed.unsubscribe(queue)
    return response


def _sse(alert: dict[str, Any]) -> bytes:
    data = json.dumps(alert, ensure_ascii=False, separators=(",", ":"))
    return f"id: {alert['alert_id']}\nevent: {alert['type']}\ndata: {data}\n\n".encode()
