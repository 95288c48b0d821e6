"""The delivery engine against local receivers on a simulated clock: outages, bursts past the rate
limit, restarts from the delivery log, alerts that stop mattering."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.streams.channels import Channel, Destination
from hotline.streams.delivery import (
    DELIVERED,
    EXPIRED,
    PENDING,
    Deliveries,
    LogRow,
    MemoryLog,
    Window,
    digest_size,
    http_post,
)
from tests.robots import SECRET, Robot
from tests.unit.streams.test_channels import alert


class SimClock:
    """Simulated time: a sleep moves it on at once (the receivers read the same clock)."""

    def __init__(self) -> None:
        self.now = time.time()
        self.on_tick: Callable[[float], None] = lambda now: None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)
        self.on_tick(self.now)
        await asyncio.sleep(0)


def stamped(n: int, now: float, unit: str = "yuhu") -> dict[str, Any]:
    from datetime import datetime

    from hotline.schemas.events import TZ

    a = alert(n, unit)
    a["emitted_at"] = datetime.fromtimestamp(now, TZ).isoformat()
    return a


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
async def robot(clock: SimClock) -> AsyncIterator[Robot]:
    r = await Robot(clock=clock).start()
    yield r
    await r.close()


@contextlib.asynccontextmanager
async def running(engine: Deliveries) -> AsyncIterator[Deliveries]:
    task = asyncio.create_task(engine.run())
    try:
        yield engine
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Wait (real time) for a condition, yielding to the engine and the receivers meanwhile."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def engine_for(
    dests: list[Destination], session: aiohttp.ClientSession, clock: SimClock, log: MemoryLog | None = None, **kw: Any
) -> Deliveries:
    return Deliveries(dests, log or MemoryLog(), http_post(session), clock=clock, sleep=clock.sleep, **kw)


def dest(robot: Robot, channel: Channel = "wecom", unit: str = "yuhu", per_minute: int = 20) -> Destination:
    return Destination(unit, channel, robot.url(channel), secret=SECRET, phones=("13800000000",), per_minute=per_minute)


async def test_a_receiver_down_ten_minutes_loses_nothing(robot: Robot, clock: SimClock) -> None:
    up_at = clock.now + 600
    robot.down = True
    clock.on_tick = lambda now: setattr(robot, "down", now < up_at)
    log = MemoryLog()
    async with aiohttp.ClientSession() as session:
        engine = engine_for([dest(robot, "webhook")], session, clock, log)
        ids = []
        for n in range(30):
            a = stamped(n, clock.now)
            ids.append(a["alert_id"])
            log.record(engine.offer(a))
        async with running(engine):
            await until(lambda: engine.queued() == 0 and engine.written())
    assert sorted(robot.delivered_ids()) == sorted(ids) and clock.now >= up_at
    rows = log.load(0)
    assert {r.status for r in rows} == {DELIVERED} and all(r.delivered_at and r.delivered_at >= up_at for r in rows)
    assert {r.last_error for r in rows if r.attempts > 1} == {"HTTP 503"}


async def test_a_burst_past_the_rate_limit_goes_out_in_digests_never_refused(robot: Robot, clock: SimClock) -> None:
    async with aiohttp.ClientSession() as session:
        engine = engine_for([dest(robot, "wecom", per_minute=20)], session, clock)
        ids = [engine.offer(stamped(n, clock.now)) and f"a{n:031d}" for n in range(1000)]
        started = clock.now
        async with running(engine):
            await until(lambda: engine.queued() == 0 and engine.written())
    assert robot.refused == []
    assert Counter(robot.delivered_ids()) == Counter(ids)  # every id, each once
    assert len(robot.messages) <= 2 * 20 and clock.now - started < 2 * 60  # two minutes of the limit


async def test_one_dead_receiver_delays_no_other_unit(robot: Robot, clock: SimClock) -> None:
    dead = Destination("police", "webhook", "http://127.0.0.1:9/none", secret=SECRET)
    log = MemoryLog()
    async with aiohttp.ClientSession() as session:
        # the dead one's backoffs move the shared simulated clock on: no TTL may end meanwhile
        engine = engine_for([dead, dest(robot, "dingtalk")], session, clock, log, ttl_s=1e9)
        for n in range(5):
            engine.offer(stamped(n, clock.now, unit="police"))
            engine.offer(stamped(100 + n, clock.now))
        async with running(engine):
            await until(lambda: sum(r.status == DELIVERED for r in log.load(0)) == 5)
            assert len(engine.outboxes[dead.name].queue) == 5  # still retrying its own
    delivered = [r for r in log.load(0) if r.status == DELIVERED]
    assert len(delivered) == 5 and all(r.unit_id == "yuhu" and r.attempts == 1 for r in delivered)


async def test_a_restart_resumes_pending_and_skips_what_was_delivered(robot: Robot, clock: SimClock) -> None:
    log = MemoryLog()
    async with aiohttp.ClientSession() as session:
        first = engine_for([dest(robot, "feishu")], session, clock, log)
        log.record(first.offer(stamped(1, clock.now)))
        async with running(first):
            await until(lambda: first.queued() == 0 and first.written())
        log.record(first.offer(stamped(2, clock.now)))  # recorded pending, never sent: then a "crash"
        second = engine_for([dest(robot, "feishu")], session, clock, log)
        assert second.resume() == 1
        assert second.offer(stamped(1, clock.now)) == [] and second.offer(stamped(2, clock.now)) == []
        async with running(second):
            await until(lambda: second.queued() == 0 and second.written())
    assert sorted(robot.delivered_ids()) == [alert(1)["alert_id"], alert(2)["alert_id"]]


async def test_an_alert_that_stops_mattering_is_written_off_with_its_last_error(clock: SimClock) -> None:
    log = MemoryLog()
    dead = Destination("police", "sms", "http://127.0.0.1:9/none", secret=SECRET, phones=("13800000000",))
    async with aiohttp.ClientSession() as session:
        engine = engine_for([dead], session, clock, log, ttl_s=3600)
        log.record(engine.offer(stamped(1, clock.now, unit="police")))
        async with running(engine):
            await until(lambda: engine.queued() == 0 and engine.written())
    (row,) = log.load(0)
    assert row.status == EXPIRED and row.last_error == "ClientConnectorError" and row.attempts > 3


def test_an_alert_older_than_the_ttl_when_read_is_recorded_expired_never_sent() -> None:
    dest = Destination("yuhu", "wecom", "http://x")
    engine = Deliveries([dest], MemoryLog(), http_post(None), ttl_s=3600)  # type: ignore[arg-type]
    (row,) = engine.offer(stamped(1, time.time() - 3601))
    assert (row.status, row.last_error) == (EXPIRED, "older than the TTL when read") and engine.queued() == 0


def test_a_restart_reads_back_only_the_rows_of_one_ttl() -> None:
    dest, log = Destination("yuhu", "wecom", "http://x"), MemoryLog()
    log.record(Deliveries([dest], log, http_post(None), ttl_s=3600).offer(alert(1)))  # type: ignore[arg-type]
    later = Deliveries([dest], log, http_post(None), ttl_s=3600, clock=lambda: time.time() + 7200)  # type: ignore[arg-type]
    assert later.resume() == 0 and later.known == {}


def test_only_the_units_destinations_of_that_kind_queue_an_alert() -> None:
    sms = Destination("yuhu", "sms", "http://x", kinds=frozenset({"overdue"}))
    other = Destination("police", "sms", "http://x")
    engine = Deliveries([sms, other], MemoryLog(), http_post(None))  # type: ignore[arg-type]
    rows = engine.offer(alert(1)) + engine.offer(alert(2, kind="alert.due_soon"))
    assert [(r.destination, r.alert_id, r.status) for r in rows] == [(sms.name, alert(1)["alert_id"], PENDING)]


def test_escalations_go_to_the_supervisors_channels_and_a_units_alerts_to_the_unit() -> None:
    unit, office = Destination("yuhu", "wecom", "http://x"), Destination("*", "dingtalk", "http://y")
    engine = Deliveries([unit, office], MemoryLog(), http_post(None))  # type: ignore[arg-type]
    overdue = engine.offer(alert(1))
    escalated = engine.offer({**alert(2, kind="alert.escalated"), "overdue_alert_id": alert(1)["alert_id"]})
    assert [r.destination for r in overdue] == [unit.name] and [r.destination for r in escalated] == [office.name]


def test_the_log_never_holds_an_address_secret_or_phone() -> None:
    dest = Destination("yuhu", "sms", "http://gw/send?key=K9", secret="S3CR3T", phones=("13912345678",))
    (row,) = Deliveries([dest], MemoryLog(), http_post(None)).offer(alert(1))  # type: ignore[arg-type]
    assert not any(s in repr(row) for s in ("K9", "S3CR3T", "13912345678"))


@given(st.integers(1, 5000), st.integers(1, 20), st.integers(1, 200))
def test_a_digest_fits_the_queue_into_the_window_when_it_can(queued: int, available: int, per_message: int) -> None:
    size = digest_size(queued, available, per_message)
    assert 1 <= size <= max(1, per_message)
    assert size == 1 if queued <= available else (size * available >= queued or size == per_message)


@given(st.lists(st.floats(0, 600), min_size=1, max_size=100))
def test_the_window_never_allows_more_than_its_limit_in_any_minute(gaps: list[float]) -> None:
    window, now, sent = Window(20), 0.0, []
    for gap in gaps:
        now += gap
        if window.available(now) > 0:
            window.take(now)
            sent.append(now)
    assert all(sum(1 for t in sent if s <= t < s + 60) <= 20 for s in sent)


class FlakyLog(MemoryLog):
    """A delivery log that is down for its first ``failures`` writes (ClickHouse restarting)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def record(self, rows: list[LogRow]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("ClickHouse is restarting")
        super().record(rows)


async def test_a_log_outage_holds_the_writes_back_and_loses_none(clock: SimClock) -> None:
    log = FlakyLog(failures=3)
    dest = Destination("yuhu", "wecom", "http://x")
    engine = Deliveries([dest], log, http_post(None), clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    up: list[float | None] = []
    clock.on_tick = lambda now: up.append(engine.metrics.registry.get_sample_value("hotline_notify_log_up"))
    await engine.record(engine.offer(alert(1)))
    assert [r.alert_id for r in log.load(0)] == [alert(1)["alert_id"]]
    assert up == [0, 0, 0] and engine.metrics.registry.get_sample_value("hotline_notify_log_up") == 1


@given(st.permutations([1, 2, 3, 4, 5, 1, 3, 5]))
def test_each_alert_is_queued_once_per_destination_whatever_the_order_read(order: list[int]) -> None:
    dests = [Destination("yuhu", "wecom", "http://x"), Destination("yuhu", "sms", "http://y", index=1)]
    engine = Deliveries(dests, MemoryLog(), http_post(None))  # type: ignore[arg-type]
    rows = [row for n in order for row in engine.offer(alert(n))]
    assert sorted((r.destination, r.alert_id) for r in rows) == sorted(
        (d.name, alert(n)["alert_id"]) for d in dests for n in {1, 2, 3, 4, 5}
    )
