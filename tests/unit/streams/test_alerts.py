"""The alert scheduler with a fake clock: what fires, when, once, to whom."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from hotline.schemas.events import dump_event
from hotline.streams.alerts import AlertFeed, AlertScheduler, alert_id, make_alert, pending_alerts
from hotline.streams.deadlines import TZ
from tests.doubles import FlakyProducer, settle
from tests.factories import event, raw

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=TZ).timestamp()


def state(unit: str = "yuhu", due_in: float = 10.0, completed: bool | None = None) -> dict[str, Any]:
    return {
        "unit": unit,
        "due": datetime.fromtimestamp(T0 + due_in, TZ).isoformat(),
        "completed_on_time": completed,
        "cohort_day": "2026-11-26",
    }


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world() -> dict[str, Any]:
    orders: dict[str, dict[str, Any]] = {}
    sent: list[tuple[str, bytes]] = []
    clock = Clock()

    async def send(unit: str, value: bytes) -> None:
        sent.append((unit, value))

    scheduler = AlertScheduler(
        AlertFeed("alerts", {}), orders.get, lambda order_id: True, send, leads_s=[5.0], horizon_s=60.0, clock=clock
    )
    return {"orders": orders, "sent": sent, "clock": clock, "scheduler": scheduler}


def test_ids_are_deterministic_and_distinct_per_kind() -> None:
    a = alert_id("O1", "yuhu", "2026-11-26T10:00:00+08:00", "overdue")
    assert a == alert_id("O1", "yuhu", "2026-11-26T10:00:00+08:00", "overdue")
    assert a != alert_id("O1", "yuhu", "2026-11-26T10:00:00+08:00", "due_soon:7200")
    assert a != alert_id("O1", "police", "2026-11-26T10:00:00+08:00", "overdue")


def test_closed_orders_owe_nothing() -> None:
    assert pending_alerts("O1", state(completed=True), [60.0]) == []
    assert [p.kind for p in pending_alerts("O1", state(), [60.0, 5.0])] == ["due_soon:60", "due_soon:5", "overdue"]


async def test_due_soon_then_overdue_each_once(world: dict[str, Any]) -> None:
    world["orders"]["O1"] = state(due_in=10)
    world["scheduler"].schedule("O1", world["orders"]["O1"])
    world["scheduler"].schedule("O1", world["orders"]["O1"])  # scheduled twice: still one alert each
    sched, clock, sent = world["scheduler"], world["clock"], world["sent"]
    assert await sched.fire_due() == 0
    clock.now = T0 + 5
    assert await sched.fire_due() == 1
    clock.now = T0 + 10
    assert await sched.fire_due() == 1
    clock.now = T0 + 100
    assert await sched.fire_due() == 0
    assert [b'"alert.due_soon"' in v for _, v in sent] == [True, False]
    assert all(unit == "yuhu" for unit, _ in sent)


async def test_completion_and_redispatch_are_seen_when_the_alert_falls_due(world: dict[str, Any]) -> None:
    orders, sched, clock, sent = world["orders"], world["scheduler"], world["clock"], world["sent"]
    orders["A"] = state(due_in=3)
    orders["B"] = state(due_in=3)
    sched.schedule("A", orders["A"])
    sched.schedule("B", orders["B"])
    orders["A"] = state(due_in=3, completed=True)  # completed before the deadline
    orders["B"] = state(unit="police", due_in=8)  # moved to another unit with a new deadline
    sched.schedule("B", orders["B"])
    clock.now = T0 + 8
    await sched.fire_due()
    assert {unit for unit, _ in sent} == {"police"}
    assert sum(b'"alert.overdue"' in v for _, v in sent) == 1


async def test_alerts_older_than_the_horizon_are_not_delivered(world: dict[str, Any]) -> None:
    orders, sched, sent = world["orders"], world["scheduler"], world["sent"]
    orders["OLD"] = state(due_in=-3600)  # a replayed order, due an hour ago
    sched.schedule("OLD", orders["OLD"])
    await sched.fire_due()
    assert sent == [] and sched.suppressed == 1  # the overdue alert; the due-soon one is moot


async def test_alerts_already_on_the_topic_are_not_sent_again(world: dict[str, Any]) -> None:
    orders, sched, clock, sent = world["orders"], world["scheduler"], world["clock"], world["sent"]
    orders["O1"] = state(due_in=10)
    sched.feed.sent.add(alert_id("O1", "yuhu", orders["O1"]["due"], "due_soon:5"))  # seen on the topic after a restart
    sched.rebuild([("O1", orders["O1"])])
    clock.now = T0 + 6
    assert await sched.fire_due() == 0
    clock.now = T0 + 10
    assert await sched.fire_due() == 1
    assert [b'"alert.overdue"' in v for _, v in sent] == [True]


async def test_no_due_soon_alert_once_the_deadline_has_passed(world: dict[str, Any]) -> None:
    """A worker back after the deadline sends the overdue alert alone, not a stale 'due soon' first."""
    orders, sched, clock, sent = world["orders"], world["scheduler"], world["clock"], world["sent"]
    orders["O1"] = state(due_in=10)
    sched.schedule("O1", orders["O1"])
    clock.now = T0 + 12
    assert await sched.fire_due() == 1
    assert [b'"alert.overdue"' in v for _, v in sent] == [True]


def _alert_record(n: int) -> bytes:
    from hotline.schemas.events import AlertOverdue, dump_event

    alert = AlertOverdue(
        event_id=f"a{n}",
        type="alert.overdue",
        occurred_at=datetime(2019, 11, 11, 9, tzinfo=TZ),
        order_id=f"O{n}",
        unit_id="yuhu",
        due_at=datetime(2019, 11, 11, 9, tzinfo=TZ),
        emitted_at=datetime(2019, 11, 11, 9, tzinfo=TZ),
        alert_id=f"id{n}",
        schema_version=1,
    )
    return dump_event(alert)


def test_a_week_of_alerts_read_at_once_does_not_overflow_a_subscriber() -> None:
    """12,000 alerts noted before a subscriber reads any: it keeps the newest, the feed goes on."""
    feed = AlertFeed("alerts", {})
    queue = feed.subscribe()
    for n in range(12_000):
        feed._read(_alert_record(n), f"alerts[0]@{n}")
    assert len(feed.sent) == 12_000
    assert queue.qsize() == queue.maxsize and feed.overflowed == 2_000
    assert queue.get_nowait()["alert_id"] == "id2000"


def test_a_foreign_or_malformed_record_on_the_alerts_topic_is_skipped_and_counted() -> None:
    feed = AlertFeed("alerts", {})
    feed._read(raw(event("order.dispatched")), "alerts[0]@0")
    feed._read(b"not json", "alerts[0]@1")
    feed._read(None, "alerts[0]@2")
    feed._read(_alert_record(1), "alerts[0]@3")
    assert feed.skipped == 3 and feed.sent == {"id1"}


def test_an_acknowledgement_on_the_alerts_topic_is_remembered_not_fanned_out_as_an_alert() -> None:
    from hotline.schemas.events import AlertAcknowledged, dump_event

    feed = AlertFeed("alerts", {})
    queue = feed.subscribe()
    at = datetime(2019, 11, 11, 10, tzinfo=TZ)
    ack = AlertAcknowledged(event_id="ack1", occurred_at=at, alert_id="id1", unit_id="yuhu")
    feed._read(dump_event(ack), "alerts[0]@0")
    assert feed.acknowledged == {"id1"} and feed.sent == set() and queue.empty() and feed.skipped == 0


@pytest.fixture
def escalating(world: dict[str, Any]) -> dict[str, Any]:
    """The world with escalation after 60 s and a horizon long enough not to suppress it."""

    async def send(unit: str, value: bytes) -> None:
        world["sent"].append((unit, value))

    world["scheduler"] = AlertScheduler(
        AlertFeed("alerts", {}),
        world["orders"].get,
        lambda order_id: True,
        send,
        leads_s=[],
        horizon_s=3600.0,
        clock=world["clock"],
        escalate_after_s=60.0,
    )
    return world


def _types(sent: list[tuple[str, bytes]]) -> list[str]:
    import json

    return [json.loads(v)["type"] for _, v in sent]


async def _overdue(w: dict[str, Any]) -> dict[str, Any]:
    """O1 of yuhu due at T0 + 10, its overdue alert sent then."""
    import json

    w["orders"]["O1"] = state(due_in=10)
    w["scheduler"].schedule("O1", w["orders"]["O1"])
    w["clock"].now = T0 + 10
    assert await w["scheduler"].fire_due() == 1
    return dict(json.loads(w["sent"][-1][1]))


async def test_an_overdue_alert_not_acknowledged_in_time_is_escalated_once(escalating: dict[str, Any]) -> None:
    import json

    overdue = await _overdue(escalating)
    sched, clock = escalating["scheduler"], escalating["clock"]
    clock.now = T0 + 69
    assert await sched.fire_due() == 0
    clock.now = T0 + 70
    assert await sched.fire_due() == 1
    clock.now = T0 + 500
    assert await sched.fire_due() == 0
    escalated = json.loads(escalating["sent"][-1][1])
    assert _types(escalating["sent"]) == ["alert.overdue", "alert.escalated"]
    assert escalated["overdue_alert_id"] == overdue["alert_id"] and escalated["unit_id"] == "yuhu"


async def test_an_acknowledged_overdue_alert_is_not_escalated(escalating: dict[str, Any]) -> None:
    from hotline.schemas.events import AlertAcknowledged, dump_event

    overdue = await _overdue(escalating)
    at = datetime.fromtimestamp(T0 + 30, TZ)
    ack = AlertAcknowledged(event_id="ack", occurred_at=at, alert_id=overdue["alert_id"], unit_id="yuhu")
    escalating["scheduler"].feed._read(dump_event(ack), "alerts[0]@9")
    escalating["clock"].now = T0 + 100
    assert await escalating["scheduler"].fire_due() == 0 and _types(escalating["sent"]) == ["alert.overdue"]


async def test_a_completed_order_is_not_escalated(escalating: dict[str, Any]) -> None:
    await _overdue(escalating)
    escalating["orders"]["O1"] = state(due_in=10, completed=False)  # completed late, before the escalation
    escalating["clock"].now = T0 + 100
    assert await escalating["scheduler"].fire_due() == 0


@pytest.mark.parametrize("escalated_before_the_crash", [True, False])
async def test_a_restarted_worker_escalates_exactly_once_from_the_topic(
    escalating: dict[str, Any], escalated_before_the_crash: bool
) -> None:
    """A new worker reads the alerts topic from its start (its feed), then owns the order again."""
    await _overdue(escalating)
    clock, sent = escalating["clock"], escalating["sent"]
    if escalated_before_the_crash:
        clock.now = T0 + 70
        assert await escalating["scheduler"].fire_due() == 1
    on_topic = [v for _, v in sent]

    async def send(unit: str, value: bytes) -> None:
        sent.append((unit, value))

    again = AlertScheduler(
        AlertFeed("alerts", {}),
        escalating["orders"].get,
        lambda o: True,
        send,
        [],
        3600.0,
        clock=clock,
        escalate_after_s=60.0,
    )
    for n, value in enumerate(on_topic):
        again.feed._read(value, f"alerts[0]@{n}")
    again.rebuild([("O1", escalating["orders"]["O1"])])
    clock.now = T0 + 200
    await again.fire_due()
    assert _types(sent).count("alert.escalated") == 1


def _flaky(world: dict[str, Any], producer: FlakyProducer) -> AlertScheduler:
    """The world's scheduler sending through ``producer`` (back-off 1 s doubling to 4 s)."""
    return AlertScheduler(
        AlertFeed("alerts", {}),
        world["orders"].get,
        lambda order_id: True,
        producer.send_alert,
        leads_s=[],
        horizon_s=60.0,
        clock=world["clock"],
        retry_s=(1.0, 4.0),
    )


async def _fire(sched: AlertScheduler) -> int:
    """One tick, and the deliveries it queued settled."""
    queued = await sched.fire_due()
    await settle()
    return queued


async def test_a_refused_alert_is_owed_again_and_sent_on_a_later_tick(world: dict[str, Any]) -> None:
    producer = FlakyProducer(refusals=1)
    sched = _flaky(world, producer)
    world["orders"]["O1"] = state(due_in=10)
    sched.schedule("O1", world["orders"]["O1"])
    world["clock"].now = T0 + 10
    await _fire(sched)
    assert producer.taken == [] and sched.feed.sent == set()
    world["clock"].now = T0 + 11
    await _fire(sched)
    assert [json.loads(v)["type"] for _, v in producer.taken] == ["alert.overdue"]


async def test_a_refused_alert_waits_for_its_back_off(world: dict[str, Any]) -> None:
    """A dead broker is asked again after 1 s, 2 s, 4 s (the cap), 4 s: not at every tick."""
    producer = FlakyProducer(refusals=10)
    sched = _flaky(world, producer)
    world["orders"]["O1"] = state(due_in=10)
    sched.schedule("O1", world["orders"]["O1"])
    tries = []
    for tick in range(0, 120):  # 12 s of 0.1 s ticks from the deadline on
        world["clock"].now = T0 + 10 + tick / 10
        before = producer.refused
        await _fire(sched)
        if producer.refused > before:
            tries.append(tick / 10)
    assert tries == [0.0, 1.0, 3.0, 7.0, 11.0]


async def test_a_send_raising_holds_back_the_other_due_alerts(world: dict[str, Any]) -> None:
    """Kafka refusing at once (no metadata in time): the tick stops, not one timeout per alert."""
    producer = FlakyProducer(refusals=1, at_once=True)
    sched = _flaky(world, producer)
    for order in ("O1", "O2"):
        world["orders"][order] = state(due_in=10)
        sched.schedule(order, world["orders"][order])
    world["clock"].now = T0 + 10
    assert await _fire(sched) == 0 and producer.refused == 1 and producer.taken == []
    world["clock"].now = T0 + 11
    assert await _fire(sched) == 2


async def test_a_retried_alert_is_fanned_out_and_tallied_once(world: dict[str, Any]) -> None:
    producer = FlakyProducer(refusals=2)
    sched = _flaky(world, producer)
    queue = sched.feed.subscribe()
    world["orders"]["O1"] = state(due_in=10)
    sched.schedule("O1", world["orders"]["O1"])
    for at in (10, 11, 13, 20):
        world["clock"].now = T0 + at
        await _fire(sched)
    assert queue.qsize() == 1 and len(producer.taken) == 1
    assert sched.feed.tally.counts() == {"yuhu": {"sent": 1, "acknowledged": 0, "waiting": 1}}


async def test_a_refused_alert_the_feed_reads_back_is_not_sent_again(world: dict[str, Any]) -> None:
    """Kafka wrote it but its acknowledgement was lost: once the feed has read it, it is not owed."""
    producer = FlakyProducer(refusals=1)
    sched = _flaky(world, producer)
    world["orders"]["O1"] = state(due_in=10)
    sched.schedule("O1", world["orders"]["O1"])
    world["clock"].now = T0 + 10
    await _fire(sched)
    written = make_alert(sched.heap[0], T0 + 10)
    sched.feed._read(dump_event(written), "alerts[0]@0")
    world["clock"].now = T0 + 11
    assert await _fire(sched) == 0 and producer.taken == []


async def test_a_refused_alert_stays_owed_through_a_rebuild(world: dict[str, Any]) -> None:
    """A rebalance rebuilds the schedule from the order table, long after the deadline: the retry
    goes out, and its deadline's first firing is not counted suppressed as history."""
    producer = FlakyProducer(refusals=1)
    sched = _flaky(world, producer)
    world["orders"]["O1"] = state(due_in=10)
    sched.schedule("O1", world["orders"]["O1"])
    world["clock"].now = T0 + 10
    await _fire(sched)
    world["clock"].now = T0 + 100  # past the 60 s horizon
    sched.rebuild([("O1", world["orders"]["O1"])])
    assert await _fire(sched) == 1 and sched.suppressed == 0 and len(producer.taken) == 1


async def test_a_broker_down_longer_than_the_horizon_delays_the_alert_but_does_not_drop_it(
    world: dict[str, Any],
) -> None:
    producer = FlakyProducer(refusals=20)
    sched = _flaky(world, producer)
    world["orders"]["O1"] = state(due_in=10)
    sched.schedule("O1", world["orders"]["O1"])
    for at in range(10, 200):  # a tick a second; the refusals end some 80 s after the deadline
        world["clock"].now = T0 + at
        await _fire(sched)
    assert producer.refused == 20 and len(producer.taken) == 1 and sched.suppressed == 0
