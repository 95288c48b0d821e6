"""HTTP pages of the running worker: the one process that holds the chDB directory.

Other processes (``hotline bulletin``, ``hotline replay --wait``) ask the worker
here instead of opening the on-disk chDB themselves, which only one process may.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from reports.bulletin import build_bulletin, month_key
from reports.render import FORMATS, MEDIA_TYPES, render

if TYPE_CHECKING:
    from streams.app import Pipeline


def register(pipeline: Pipeline) -> None:
    app = pipeline.app

    @app.page("/bulletin/{month}")
    async def bulletin(self: View, request: Request, month: str) -> Response:
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

    @app.page("/status")
    async def status(self: View, request: Request) -> Response:
        return self.json(await pipeline.in_sink_thread(_status, pipeline))


def _render_bulletin(pipeline: Pipeline, month: str, fmt: str) -> bytes:
    return render(build_bulletin(pipeline.sink, month, pipeline.registry), fmt)


def _status(pipeline: Pipeline) -> dict[str, Any]:
    sink = pipeline.sink
    return {
        "counts": sink.counts(),
        "offsets": [[t, p, o] for (t, p), o in sorted(sink.sunk_offsets().items())],
    }
