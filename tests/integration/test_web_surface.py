"""The worker's HTTP surface, closed: one real worker with tokens configured, asked over HTTP.

Faust's own views (``/table/…`` would read the order table) answer 404; the worker listens on
``web_host`` only; a ``?token=`` link to the monitor is swapped for an HttpOnly sign-in cookie
that opens the page, its stream and (for a supervisor) the bulletin links; a forged or
expired ticket is a 401; a bad ``?date=`` is a 400.

The tests share one worker (module scope): they only read, and a worker takes a while to
start. Its settings are made as ``conftest.isolated`` makes them, with tokens.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hotline.replay import Record, produce
from hotline.settings import Settings
from hotline.streams.access import TICKET_COOKIE, Access
from tests.factories import event
from tests.integration.conftest import Worker, isolated_settings

pytestmark = pytest.mark.integration

TOKENS = {"tok-office": "*", "tok-yuhu": "yuhu"}
ORDER = f"W{uuid.uuid4().hex[:8]}"  # an order in the table that Faust's /table view would show
BAD_DATES = ["2019-02-30", "9999-12-31", "1999-12-31", "2100-01-01", "2019-11-4", "tomorrow"]
MONITOR_ROUTES = ["/monitor", "/monitor/snapshot", "/monitor/stream"]


@pytest.fixture(scope="module")
def guarded(broker: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(
        broker, Path(tmp_path_factory.mktemp("surface")), access_tokens=TOKENS, api_token="tok-office"
    )


@pytest.fixture(scope="module")
def surface(guarded: Settings) -> Iterator[Settings]:
    """The worker, with one order of November 2019 sunk: in its table, and a closed month to link."""
    worker = Worker(guarded).start()
    try:
        dispatched = event(
            "order.dispatched", order_id=ORDER, unit_id="police", occurred_at="2019-11-04T09:31:00+08:00"
        )
        asyncio.run(produce([Record(guarded.orders_topic, ORDER.encode(), json.dumps(dispatched).encode())], guarded))
        deadline = time.monotonic() + 60
        while not sunk(guarded):
            assert time.monotonic() < deadline, "the order was never sunk"
            time.sleep(0.3)
        yield guarded
    finally:
        worker.stop()


def sunk(settings: Settings) -> bool:
    """Whether the worker has written anything of the orders topic to ClickHouse."""
    offsets = get(settings, "/offsets", "tok-office")[2]["offsets"]
    return any(topic == settings.orders_topic for topic, _, _ in offsets)


def get(
    settings: Settings, path: str, token: str | None = None, ticket: str | None = None
) -> tuple[int, dict[str, str], Any]:
    """One GET without following redirects: status, headers, body (JSON decoded when it is JSON)."""

    async def go() -> tuple[int, dict[str, str], Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if ticket:
            headers["Cookie"] = f"{TICKET_COOKIE}={ticket}"
        async with (
            aiohttp.ClientSession() as session,
            session.get(settings.web_url + path, headers=headers, allow_redirects=False) as r,
        ):
            if r.headers.get("Content-Type", "").startswith("text/event-stream"):
                return r.status, dict(r.headers), await _first_event(r)
            body = await r.read()
            is_json = "json" in r.headers.get("Content-Type", "")
            return r.status, dict(r.headers), json.loads(body) if is_json else body

    return asyncio.run(go())


async def _first_event(response: aiohttp.ClientResponse) -> bytes:
    """The stream up to its first complete event (a stream never ends by itself)."""
    body = b""
    async with asyncio.timeout(30):
        async for chunk in response.content.iter_any():
            body += chunk
            if b"event: snapshot" in body and body.endswith(b"\n\n"):
                return body
    return body


def sign_in(settings: Settings, token: str, query: str = "") -> aiohttp.ClientResponse:
    """Open the monitor link as it is handed out; return the raw response (status, headers, cookie)."""

    async def go() -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{settings.web_url}/monitor?token={token}{query}", allow_redirects=False) as r,
        ):
            await r.read()
            return r

    return asyncio.run(go())


def ticket_of(settings: Settings, token: str) -> str:
    response = sign_in(settings, token)
    assert response.status == 303, response.status
    return str(response.cookies[TICKET_COOKIE].value)


# -- Faust's own views ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/table/",
        f"/table/order-state/{ORDER}/",
        "/router/",
        f"/router/order-state/{ORDER}/",
    ],
)
@pytest.mark.parametrize("token", [None, "tok-office"])
def test_faust_built_in_views_do_not_answer(surface: Settings, path: str, token: str | None) -> None:
    """Not even to a supervisor: the order table is read through the project's pages only."""
    status, _, body = get(surface, path, token)
    assert status == 404
    assert ORDER not in json.dumps(body, default=str) and "police" not in json.dumps(body, default=str)


def test_the_worker_listens_on_its_web_host_only(surface: Settings) -> None:
    """web_host is 127.0.0.1: another address of this machine (127.0.0.2 is loopback too) is refused."""
    assert surface.web_host == "127.0.0.1"
    with socket.create_connection((surface.web_host, surface.web_port), timeout=5):
        pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", surface.web_port), timeout=5).close()


# -- the sign-in ticket ---------------------------------------------------------------------


def test_a_token_link_is_exchanged_for_a_cookie_and_a_clean_address(surface: Settings) -> None:
    response = sign_in(surface, "tok-office", "&date=2019-11-04")
    assert response.status == 303
    assert response.headers["Location"] == "/monitor?date=2019-11-04"
    cookie = response.cookies[TICKET_COOKIE]
    assert cookie.value and "tok-office" not in cookie.value
    assert cookie["httponly"] is True and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert int(cookie["max-age"]) == int(surface.ticket_ttl_s)


def test_a_bearer_header_on_the_page_gets_the_page_and_a_cookie_for_its_stream(surface: Settings) -> None:
    """No token in the address to strip (so no redirect, which would loop): the page, and a ticket for its stream."""
    status, headers, body = get(surface, "/monitor", "tok-office")
    assert status == 200 and "实时监测".encode() in body
    assert headers["Set-Cookie"].startswith(f"{TICKET_COOKIE}=") and "HttpOnly" in headers["Set-Cookie"]


def test_an_unknown_token_link_gets_401_and_no_cookie(surface: Settings) -> None:
    response = sign_in(surface, "tok-guess")
    assert response.status == 401 and TICKET_COOKIE not in response.cookies


@pytest.mark.parametrize("path", MONITOR_ROUTES)
def test_the_cookie_alone_opens_the_page_and_its_streams(surface: Settings, path: str) -> None:
    status, _, body = get(surface, path, ticket=ticket_of(surface, "tok-yuhu"))
    assert status == 200
    if path == "/monitor":
        assert "实时监测".encode() in body and b"token" not in body.split(b"<script>")[1]
    elif path == "/monitor/snapshot":
        assert [u["unit_id"] for u in body["units"]] == ["yuhu"]  # still the unit's scope
    else:
        assert b"event: snapshot" in body and b"police" not in body


@pytest.mark.parametrize("path", MONITOR_ROUTES)
def test_a_forged_ticket_is_401(surface: Settings, path: str) -> None:
    version, _, expiry, mac = ticket_of(surface, "tok-yuhu").split(".")
    forged = ".".join([version, "Kg", expiry, mac])  # the unit's ticket with the scope "*"
    assert get(surface, path, ticket=forged)[0] == 401


@pytest.mark.parametrize("path", MONITOR_ROUTES)
def test_an_expired_ticket_is_401(surface: Settings, path: str) -> None:
    """Signed as the worker signs (same tokens, same key), but issued 13 hours ago with a 12-hour lifetime."""
    then = time.time() - 13 * 3600
    old = Access.configure(TOKENS, surface.ticket_secret, surface.ticket_ttl_s, clock=lambda: then).issue("*")
    status, _, body = get(surface, path, ticket=old)
    assert status == 401
    if path != "/monitor":
        assert "expired" in body["error"]


@pytest.mark.parametrize("path", ["/monitor/trend", "/monitor/static/echarts.min.js"])
def test_the_trend_and_its_chart_library_need_the_token_or_cookie(surface: Settings, path: str) -> None:
    assert get(surface, path)[0] == 401
    status, headers, body = get(surface, path, ticket=ticket_of(surface, "tok-yuhu"))
    assert status == 200
    if path == "/monitor/trend":
        assert body["unit_id"] == "yuhu" and len(body["days"]) == 30  # a unit's own, by default
    else:
        assert headers["Content-Type"].startswith("application/javascript") and b"Apache" in body[:2000]


def test_a_unit_token_gets_its_own_trend_only(surface: Settings) -> None:
    assert get(surface, "/monitor/trend?unit=police&days=30", "tok-yuhu")[0] == 403
    assert get(surface, "/monitor/trend?unit=nowhere", "tok-office")[0] == 400
    status, _, body = get(surface, "/monitor/trend?unit=police&days=7", "tok-office")
    assert status == 200 and body["unit_id"] == "police" and len(body["days"]) == 7


# -- bulletin links -------------------------------------------------------------------------


def test_a_supervisor_cookie_opens_the_bulletin_links(surface: Settings) -> None:
    ticket = ticket_of(surface, "tok-office")
    _, _, figures = get(surface, "/monitor/snapshot?date=2019-11-04", ticket=ticket)
    links = figures["bulletins"][0]
    assert figures["bulletins_open"] is True and links["month"] == "2019-11"
    for fmt in ("docx", "csv"):
        status, headers, body = get(surface, links[fmt], ticket=ticket)
        assert status == 200 and f"bulletin-2019-11.{fmt}" in headers["Content-Disposition"] and body


def test_a_unit_screen_gets_no_bulletin_links(surface: Settings) -> None:
    _, _, figures = get(surface, "/monitor/snapshot?date=2019-11-04", ticket=ticket_of(surface, "tok-yuhu"))
    assert figures["closed_months"] == ["2019-11"]
    assert figures["bulletins"] == [] and figures["bulletins_open"] is False


def test_a_unit_cookie_on_a_bulletin_is_403_with_the_reason(surface: Settings) -> None:
    status, _, body = get(surface, "/bulletin/2019-11?format=csv", ticket=ticket_of(surface, "tok-yuhu"))
    assert status == 403 and "supervisor" in body["error"]


@pytest.mark.parametrize(
    ("period", "label"),
    [
        ("2019-W45", "2019年第45周"),
        ("2019-Q4", "2019年第四季度"),
        ("2019-11-04..2019-11-10", "2019年11月4日至11月10日"),
    ],
)
def test_any_periods_bulletin_over_http(surface: Settings, period: str, label: str) -> None:
    status, _, body = get(surface, f"/bulletin/{period}?format=json", "tok-office")
    assert status == 200 and (body["period"]["key"], body["period"]["label"]) == (period, label)
    assert body["counts"][0]["unit_id"] == "police" and body["counts"][0]["dispatched"] == 1


def test_a_period_that_cannot_be_is_a_400_with_the_reason(surface: Settings) -> None:
    status, _, body = get(surface, "/bulletin/2019-W53?format=json", "tok-office")
    assert status == 400 and "2019 has weeks 1 to 52" in body["error"]


# -- ?date= ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", MONITOR_ROUTES)
@pytest.mark.parametrize("day", BAD_DATES)
def test_a_bad_date_is_a_400_with_the_reason(surface: Settings, path: str, day: str) -> None:
    status, _, body = get(surface, f"{path}?date={day}", "tok-office")
    assert status == 400
    assert day in body["error"]


@pytest.mark.parametrize("day", ["2000-01-01", "2099-12-31"])
def test_the_first_and_last_viewable_days_answer(surface: Settings, day: str) -> None:
    status, _, figures = get(surface, f"/monitor/snapshot?date={day}", "tok-office")
    assert status == 200 and figures["date"] == day


def test_the_backup_pages_answer_the_office_token_only(surface: Settings) -> None:
    """A backup reads every table: no token is a 401, a unit's token a 403, the office's gets the rows."""
    assert get(surface, "/backup/events")[0] == 401
    assert get(surface, "/backup/events", "tok-yuhu")[0] == 403
    status, _, listed = get(surface, "/backup/events", "tok-office")
    assert status == 200 and [name for name, _ in listed["partitions"]] == ["201911"]
    status, headers, native = get(surface, "/backup/events?partition=201911", "tok-office")
    assert status == 200 and headers["X-Hotline-Rows"] == "1" and ORDER.encode() in native
    assert get(surface, "/backup/system.users", "tok-office")[0] == 400
