"""A ``hotline store`` served in the test process, over a temporary chDB, for RemoteStore and its workers;
and a stand-in for a worker's ``/metrics``, as the store scrapes it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hotline.settings import Settings
from hotline.sinks.server import StoreServer, serve
from hotline.streams.metrics import Metrics
from tests.doubles import free_port

TOKEN = "store-secret"


def store_settings(root: Path, **extra: object) -> Settings:
    """A store over ``root/ch`` on a free port, and the URL and token its workers use."""
    port = free_port()
    return Settings(
        clickhouse_dsn=f"chdb://{root / 'ch'}",
        var_dir=root / "var",
        store_token=TOKEN,
        store_port=port,
        store_url=f"http://127.0.0.1:{port}",
        store_timeout_s=30,
        **extra,  # type: ignore[arg-type]
    )


class Served:
    """A store's HTTP on a loop of its own thread: the test's calls block, as a worker's store thread's do."""

    def __init__(self, service: StoreServer, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner: web.AppRunner = asyncio.run_coroutine_threadsafe(
            serve(service, "127.0.0.1", port), self.loop
        ).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def serving(settings: Settings) -> Iterator[StoreServer]:
    """A store opened and served on ``settings.store_port`` for the test, then closed
    (chDB holds one path per process): the body of a fixture."""
    service = StoreServer(settings)
    service.open()
    try:
        served = Served(service, settings.store_port)
        try:
            yield service
        finally:
            served.stop()
    finally:
        service.close()  # even when the HTTP side failed to stop: a path left open fails every later test


class StandIn:
    """A worker's ``/metrics`` (its real registry) on a free port, on a loop of its own thread."""

    def __init__(self) -> None:
        self.metrics = Metrics()
        self.port = free_port()
        self.hanging = False
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_get("/metrics", self._page)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = web.AppRunner(app, access_log=None)
        self._run(self._start())

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)  # type: ignore[arg-type]

    async def _start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _page(self, request: web.Request) -> web.Response:
        if self.hanging:
            await self._release.wait()
        return web.Response(body=generate_latest(self.metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def stop_answering(self) -> None:
        """Its port closes, as when the worker is killed."""
        self._run(self.runner.cleanup())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._release.set)
        self._run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
