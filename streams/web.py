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
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from reports.bulletin import build_bulletin, month_key
from reports.render import FORMATS, MEDIA_TYPES, render
from streams.access import SUPERVISOR, Denied, bearer, require_supervisor, require_unit, scope

if TYPE_CHECKING:
    from streams.app import Pipeline


def register(pipeline: Pipeline) -> None:
    app = pipeline.app

    @app.page("/bulletin/{month}")
    async def bulletin(self: View, request: Request, month: str) -> Response:
        if denied := _office_only(self, request, pipeline):
            return denied
        fmt = request.query.get("format", "json")
        if fmt not in FORMATS:
            return self.error(400, f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        try:
            month_key(month)
        except ValueError as exc:
            return self.error(400, str(exc))
        body = await pipeline.in_sink_thread(_render_bulletin, pipeline, month, fmt)
        # aiohttp refuses a charset inside content_type: pass the whole header instead.
        headers = {"Content-Type": MEDIA_TYPES[fmt]}
        if fmt in ("xlsx", "docx", "csv", "md"):
            headers["Content-Disposition"] = f'attachment; filename="bulletin-{month}.{fmt}"'
        return self.bytes(body, content_type=None, headers=headers)

    @app.page("/units/{unit_id}/alerts")
    async def unit_alerts(self: View, request: Request, unit_id: str) -> Any:
        try:
            require_unit(pipeline.settings.access_tokens, bearer(request.headers, request.query), unit_id)
        except Denied as exc:
            return self.json({"error": exc.reason}, status=exc.status)
        return await event_stream(request, pipeline, lambda alert: alert["unit_id"] == unit_id)

    @app.page("/alerts")
    async def all_alerts(self: View, request: Request) -> Any:
        try:
            granted = scope(pipeline.settings.access_tokens, bearer(request.headers, request.query))
        except Denied as exc:
            return self.json({"error": exc.reason}, status=exc.status)
        return await event_stream(request, pipeline, lambda alert: granted in (SUPERVISOR, alert["unit_id"]))

    @app.page("/metrics")
    async def metrics(self: View, request: Request) -> Response:
        return self.bytes(
            generate_latest(pipeline.metrics.registry), content_type=None, headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    @app.page("/offsets")
    async def offsets(self: View, request: Request) -> Response:
        """What ``replay --wait`` polls: cheap, unlike the counts of /status."""
        if denied := _office_only(self, request, pipeline):
            return denied
        sunk = await pipeline.in_sink_thread(pipeline.sink.sunk_offsets)
        return self.json({"offsets": [[t, p, o] for (t, p), o in sorted(sunk.items())]})

    @app.page("/status")
    async def status(self: View, request: Request) -> Response:
        if denied := _office_only(self, request, pipeline):
            return denied
        return self.json(await pipeline.in_sink_thread(_status, pipeline))

    from streams import monitor

    monitor.register(pipeline)


def _office_only(view: View, request: Request, pipeline: Pipeline) -> Response | None:
    try:
        require_supervisor(pipeline.settings.access_tokens, bearer(request.headers, request.query))
    except Denied as exc:
        return view.json({"error": exc.reason}, status=exc.status)
    return None


def _render_bulletin(pipeline: Pipeline, month: str, fmt: str) -> bytes:
    return render(build_bulletin(pipeline.sink, month, pipeline.registry), fmt)


def _status(pipeline: Pipeline) -> dict[str, Any]:
    sink = pipeline.sink
    return {
        "counts": sink.counts(),
        "offsets": [[t, p, o] for (t, p), o in sorted(sink.sunk_offsets().items())],
        "recent_deadletters": sink.deadletters(limit=20),  # what `hotline status` shows an operator
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
