"""A client cannot hold every connection of a server (hotline/connections.py), on a real aiohttp server."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hotline.connections import CappedRunner, ConnectionCap


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _closed_by_server(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    """Whether the server closes the connection (end of stream) before ``timeout``."""
    try:
        return await asyncio.wait_for(reader.read(), timeout) == b""
    except TimeoutError:
        return False


async def test_a_connection_past_the_clients_cap_is_closed_and_the_others_still_answer() -> None:
    app = web.Application()
    app.router.add_get("/", _ok)
    cap = ConnectionCap(per_client=3)
    runner = CappedRunner(app, cap)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    try:
        for _ in range(100):  # until the server has accepted the three
            if cap.open.get("127.0.0.1") == 3:
                break
            await asyncio.sleep(0.01)
        assert cap.open["127.0.0.1"] == 3
        reader, extra = await asyncio.open_connection("127.0.0.1", port)
        held.append((reader, extra))
        assert await _closed_by_server(reader)
        assert cap.refused == 1
        first_reader, first_writer = held[0]
        first_writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(first_reader.read(), 5)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    finally:
        for _, w in held:
            w.close()
        await runner.cleanup()
    assert cap.open == {}
