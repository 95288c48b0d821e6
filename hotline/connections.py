"""Connections per client, capped: one client cannot hold every descriptor of a worker or the store.

A thousand idle connections from one address ran the store out of file descriptors and stalled
the workers' writes behind them. Each HTTP server (the worker's pages, ``hotline store``) counts
its open connections per peer address and closes one past the cap as soon as it is accepted;
idle ones are closed by the servers' keep-alive timeout. The cap is per address, so a busy office
behind one NAT address keeps room for its screens while a single client cannot take everything.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

# An idle connection is closed after this (aiohttp's default: 75 s), counted from the connection's
# start, so one that never sends a request is closed too: the worker's pages and the store alike.
IDLE_TIMEOUT_S = 15.0


def _host(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "?"


class ConnectionCap:
    """Open connections per peer address, for one server; a connection past ``per_client`` is closed."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self.open: Counter[str] = Counter()
        self.refused = 0
        self._hosts: dict[RequestHandler, str] = {}

    def attach(self, server: web.Server) -> None:
        """Count ``server``'s connections (its connection hooks, which every request handler calls)."""
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            made(handler, transport)
            host = _host(transport)
            if self.open[host] >= self.per_client:
                self.refused += 1
                log.warning("connection from %s closed: it holds %d, the most one client may", host, self.per_client)
                transport.close()
                return
            self.open[host] += 1
            self._hosts[handler] = host

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            host = self._hosts.pop(handler, None)
            if host is not None:
                self.open[host] -= 1
                if not self.open[host]:
                    del self.open[host]
            lost(handler, exc)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]


class CappedRunner(web.AppRunner):
    """An aiohttp runner whose server caps the connections of each client (:class:`ConnectionCap`)."""

    def __init__(self, app: web.Application, cap: ConnectionCap, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.cap = cap

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        self.cap.attach(server)
        return server
