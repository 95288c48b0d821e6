"""Alert lateness: how late do due-soon and overdue alerts leave the worker, and arrive?

One isolated worker process (own topics, app id, var dir, port) on the local broker.
The benchmark produces one ``order.dispatched`` per order, each with a ``due_at``
a few minutes ahead (spread uniformly over ``--start-s`` .. ``--start-s + --spread-s``),
and short lead times (``--leads``), so every order owes ``len(leads)`` due-soon alerts
and one overdue alert within the run. It follows the alerts topic until every
expected alert has arrived (or ``--timeout-s`` after the last one was due), then reports:

* emitted lateness: the alert's ``emitted_at`` − the time it was due
  (``due_at − lead`` for due-soon, ``due_at`` for overdue);
* arrival lateness: the wall time this process received it − the time it was due;
* receiver lateness: the wall time a local webhook receiver got it from ``hotline notify``
  (run beside the worker, one webhook per unit, no rate limit in the way) − the time it was due:
  deadline to the people, target p99 under 1 s;
* duplicates (an alert id seen twice), missing, unexpected alerts, wrong key or due_at.

Baseline, in the same run and process: the same schedule fired by bare
``loop.call_at`` timers, i.e. the timer jitter of an idle asyncio loop under the
same machine load; every figure is also given as a ratio to it.

    python -m bench.alert_lateness [--orders 10000] [--leads 30] [--start-s 60] [--spread-s 120]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import (
    Summary,
    WorkerProcess,
    broker,
    free_port,
    interrupt_on_sigterm,
    isolated,
    machine,
    ms,
    publish,
    ratio,
    run_dir,
    say,
    wait_sunk_async,
    worker_process,
)
from hotline.deploy.worker import NotifyProcess
from hotline.replay import Record, produce
from hotline.schemas.events import OrderDispatched, dump_event
from hotline.schemas.registry import default_registry
from hotline.settings import AlertChannel, Settings
from hotline.streams.alerts import OVERDUE, alert_id
from hotline.streams.deadlines import TZ

DUE_SOON = "alert.due_soon"
OVERDUE_TYPE = "alert.overdue"


@dataclass(frozen=True)
class Expected:
    """One alert the worker owes: when it is due (wall clock, s) and what it must say."""

    alert_id: str
    order_id: str
    unit_id: str
    type: str
    due_iso: str
    fire_at: float


@dataclass
class Plan:
    records: list[Record]
    expected: dict[str, Expected]
    first_fire: float
    last_fire: float


def plan(settings: Settings, orders: int, leads: list[float], start_s: float, spread_s: float, seed: int) -> Plan:
    """Dispatch events with deadlines ``start_s`` .. ``start_s + spread_s`` from now, and the alerts they owe."""
    rng = random.Random(seed)
    units = [u.id for u in default_registry().units]
    run = uuid.uuid4().hex[:6]
    now = time.time()
    occurred = datetime.fromtimestamp(now, TZ)
    records: list[Record] = []
    expected: dict[str, Expected] = {}
    for i in range(orders):
        order_id = f"bench-{run}-{i:06d}"
        unit_id = rng.choice(units)
        due = datetime.fromtimestamp(round(now + start_s + rng.uniform(0, spread_s), 6), TZ)
        event = OrderDispatched(
            event_id=f"{order_id}-d",
            occurred_at=occurred,
            order_id=order_id,
            unit_id=unit_id,
            order_type="complaint",
            category="环境保护",
            due_at=due,
        )
        value = dump_event(event)
        records.append(Record(settings.orders_topic, order_id.encode(), value))
        # The due string exactly as the worker keeps it in the order's state (parsed back from JSON).
        due_iso = OrderDispatched.model_validate_json(value).due_at.isoformat()  # type: ignore[union-attr]
        due_ts = datetime.fromisoformat(due_iso).timestamp()
        owed = [(f"due_soon:{int(lead)}", DUE_SOON, due_ts - lead) for lead in leads]
        owed.append((OVERDUE, OVERDUE_TYPE, due_ts))
        for kind, type_, fire_at in owed:
            aid = alert_id(order_id, unit_id, due_iso, kind)
            expected[aid] = Expected(aid, order_id, unit_id, type_, due_iso, fire_at)
    fires = [e.fire_at for e in expected.values()]
    return Plan(records, expected, min(fires), max(fires))


@dataclass
class Received:
    at: float  # wall clock when getmany returned it
    key: str
    alert: dict[str, Any]


@dataclass
class Collector:
    """Everything seen on the alerts topic, with receive times; and the baseline timers' firings."""

    received: list[Received] = field(default_factory=list)
    ids: Counter[str] = field(default_factory=Counter)
    baseline: dict[str, float] = field(default_factory=dict)  # alert id -> lateness of the bare timer

    async def follow(self, settings: Settings, ready: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.kafka_client_options())
        await consumer.start()
        try:
            partitions: set[int] = set()
            while not partitions:
                partitions = consumer.partitions_for_topic(settings.alerts_topic) or set()
                if not partitions:
                    await consumer._client.force_metadata_update()
                    await asyncio.sleep(0.1)
            tps = [TopicPartition(settings.alerts_topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ready.set()
            while True:
                batch = await consumer.getmany(timeout_ms=100, max_records=5000)
                now = time.time()
                for records in batch.values():
                    for r in records:
                        alert = json.loads(r.value or b"{}")
                        self.ids[str(alert.get("alert_id"))] += 1
                        self.received.append(Received(now, (r.key or b"").decode(), alert))
        finally:
            await consumer.stop()

    def arm_baseline(self, expected: dict[str, Expected]) -> list[asyncio.TimerHandle]:
        """One ``loop.call_at`` per expected alert, at its due time: what a bare timer achieves."""
        loop = asyncio.get_running_loop()
        offset = time.time() - loop.time()

        def fired(aid: str, fire_at: float) -> None:
            self.baseline[aid] = time.time() - fire_at

        return [loop.call_at(e.fire_at - offset, fired, e.alert_id, e.fire_at) for e in expected.values()]


@dataclass
class Receiver:
    """A webhook receiver on this machine: when each alert id first reached it, and how often."""

    port: int
    at: dict[str, float] = field(default_factory=dict)
    ids: Counter[str] = field(default_factory=Counter)

    async def start(self) -> web.AppRunner:
        async def hook(request: web.Request) -> web.Response:
            now = time.time()
            for alert in (await request.json())["alerts"]:
                self.ids[alert["alert_id"]] += 1
                self.at.setdefault(alert["alert_id"], now)
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner

    def channels(self, units: list[str]) -> dict[str, list[AlertChannel]]:
        """Every unit's alerts to this receiver, with no rate limit in the way."""
        url = f"http://127.0.0.1:{self.port}/hook"
        return {u: [AlertChannel(channel="webhook", url=url, per_minute=1_000_000)] for u in units}


@dataclass
class Figures:
    """The results, as printed and as written by ``--json``."""

    orders: int
    leads_s: list[float]
    window_s: list[float]
    machine: str
    started: str
    produce_s: float
    scheduled_after_s: float
    first_due_after_s: float
    expected: int
    received: int
    unique: int
    duplicates: int
    missing: int
    unexpected: int
    wrong_key: int
    wrong_due: int
    receiver_missing: int
    receiver_duplicates: int
    lateness: dict[str, dict[str, float]]
    ratios: dict[str, dict[str, str]]
    worker: dict[str, float | None]
    target_p99_s: float
    ok: bool


def _row(s: Summary) -> dict[str, float]:
    return {"count": s.count, "p50": s.p50, "p99": s.p99, "max": s.max, "min": s.min}


def analyse(collector: Collector, plan_: Plan, receiver: Receiver) -> dict[str, Any]:
    emitted: dict[str, list[float]] = {"all": [], "due_soon": [], "overdue": []}
    arrival: list[float] = []
    wrong_key = wrong_due = unexpected = 0
    seen: set[str] = set()
    for r in collector.received:
        aid = str(r.alert.get("alert_id"))
        exp = plan_.expected.get(aid)
        if exp is None:
            unexpected += 1
            continue
        if aid in seen:
            continue  # a duplicate: counted apart, measured once
        seen.add(aid)
        if r.key != exp.unit_id or r.alert.get("unit_id") != exp.unit_id:
            wrong_key += 1
        if datetime.fromisoformat(r.alert["due_at"]).timestamp() != datetime.fromisoformat(exp.due_iso).timestamp():
            wrong_due += 1
        late = datetime.fromisoformat(r.alert["emitted_at"]).timestamp() - exp.fire_at
        emitted["all"].append(late)
        emitted["overdue" if exp.type == OVERDUE_TYPE else "due_soon"].append(late)
        arrival.append(r.at - exp.fire_at)
    delivered = [at - plan_.expected[aid].fire_at for aid, at in receiver.at.items() if aid in plan_.expected]
    return {
        "emitted": {k: Summary.of(v) for k, v in emitted.items()},
        "arrival": Summary.of(arrival),
        "receiver": Summary.of(delivered),
        "receiver_missing": len(plan_.expected) - len(delivered),
        "receiver_duplicates": sum(n - 1 for aid, n in receiver.ids.items() if n > 1 and aid in plan_.expected),
        "baseline": Summary.of(list(collector.baseline.values())),
        "unique": len(seen),
        "duplicates": sum(n - 1 for aid, n in collector.ids.items() if n > 1 and aid in plan_.expected),
        "missing": len(plan_.expected) - len(seen),
        "unexpected": unexpected,
        "wrong_key": wrong_key,
        "wrong_due": wrong_due,
    }


async def _worker_figures(worker: WorkerProcess) -> dict[str, float | None]:
    try:
        samples = await asyncio.to_thread(worker.metrics)
    except OSError as exc:
        say(f"no /metrics from the worker: {exc}")
        samples = {}
    return {
        "sent_overdue": samples.get('hotline_alerts_sent_total{type="alert.overdue"}'),
        "sent_due_soon": samples.get('hotline_alerts_sent_total{type="alert.due_soon"}'),
        "suppressed": samples.get("hotline_alerts_suppressed_total"),
        "lateness_count": samples.get("hotline_alert_lateness_seconds_count"),
        "lateness_mean_s": (
            samples["hotline_alert_lateness_seconds_sum"] / samples["hotline_alert_lateness_seconds_count"]
            if samples.get("hotline_alert_lateness_seconds_count")
            else None
        ),
        "peak_rss_mib": (kib / 1024 if (kib := worker.status_kib("VmHWM")) else None),
    }


async def measure(settings: Settings, worker: WorkerProcess, receiver: Receiver, args: argparse.Namespace) -> Figures:
    collector = Collector()
    ready = asyncio.Event()
    follower = asyncio.create_task(collector.follow(settings, ready))
    timers: list[asyncio.TimerHandle] = []
    receiving = await receiver.start()
    try:
        await asyncio.wait_for(ready.wait(), 60)
        say(f"planning {args.orders} orders ...")
        p = plan(settings, args.orders, args.leads, args.start_s, args.spread_s, args.seed)
        t0 = time.time()
        started = datetime.fromtimestamp(t0, TZ).isoformat(timespec="seconds")
        timers = collector.arm_baseline(p.expected)
        say(f"{len(p.expected)} alerts expected, due from +{p.first_fire - t0:.1f}s to +{p.last_fire - t0:.1f}s")
        last = await produce(p.records, settings)
        produced = time.time() - t0
        say(f"produced {len(p.records)} dispatch events in {produced:.1f}s")
        await wait_sunk_async(last, settings, timeout=max(60.0, p.first_fire - time.time() + 60))
        scheduled = time.time() - t0
        first_due = p.first_fire - t0
        say(f"worker has sunk and scheduled every order at +{scheduled:.1f}s (first alert due at +{first_due:.1f}s)")
        if scheduled > first_due:
            say("WARNING: ingestion ended after the first alerts were due; their lateness includes ingestion")
        cpu0 = worker.cpu_seconds()
        wall0 = time.monotonic()
        deadline = p.last_fire + args.timeout_s
        next_report = 0.0
        while True:
            now = time.time()
            have = sum(1 for aid in collector.ids if aid in p.expected)
            reached = sum(1 for aid in receiver.at if aid in p.expected)
            if (have >= len(p.expected) and reached >= len(p.expected)) or now > deadline:
                break
            if time.monotonic() >= next_report:
                due = sum(1 for e in p.expected.values() if e.fire_at <= now)
                recent = [
                    datetime.fromisoformat(r.alert["emitted_at"]).timestamp() - p.expected[aid].fire_at
                    for r in collector.received[-2000:]
                    if (aid := str(r.alert.get("alert_id"))) in p.expected
                ]
                s = Summary.of(recent)
                say(
                    f"+{now - t0:5.0f}s  alerts {have}/{len(p.expected)} (due so far {due}, received {reached}), "
                    f"baseline timers fired {len(collector.baseline)}; last 2000: p50 {ms(s.p50)} p99 {ms(s.p99)} "
                    f"max {ms(s.max)}"
                )
                next_report = time.monotonic() + args.progress_s
            await asyncio.sleep(0.2)
        if args.settle_s > 0:
            say(f"waiting {args.settle_s:g}s more for duplicates ...")
            await asyncio.sleep(args.settle_s)
        cpu1 = worker.cpu_seconds()
        wf = await _worker_figures(worker)
        if cpu0 is not None and cpu1 is not None:
            wf["cpu_share_while_alerting"] = (cpu1 - cpu0) / max(1e-9, time.monotonic() - wall0)
    finally:
        for handle in timers:
            handle.cancel()
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await receiving.cleanup()

    a = analyse(collector, p, receiver)
    base: Summary = a["baseline"]
    lateness = {f"emitted_{k}": _row(v) for k, v in a["emitted"].items()}
    lateness["arrival_all"] = _row(a["arrival"])
    lateness["receiver_all"] = _row(a["receiver"])
    lateness["baseline_call_at"] = _row(base)
    ratios = {
        name: {q: ratio(row[q], getattr(base, q)) for q in ("p50", "p99", "max")}
        for name, row in lateness.items()
        if name != "baseline_call_at"
    }
    worst_p99 = max(a["emitted"]["all"].p99, a["arrival"].p99, a["receiver"].p99)
    ok = (
        a["duplicates"] == 0
        and a["missing"] == 0
        and a["unexpected"] == 0
        and a["wrong_key"] == 0
        and a["wrong_due"] == 0
        and a["receiver_missing"] == 0
        and math.isfinite(worst_p99)
        and worst_p99 < args.target_p99_s
    )
    return Figures(
        orders=args.orders,
        leads_s=list(args.leads),
        window_s=[args.start_s, args.start_s + args.spread_s],
        machine=machine(),
        started=started,
        produce_s=produced,
        scheduled_after_s=scheduled,
        first_due_after_s=first_due,
        expected=len(p.expected),
        received=len(collector.received),
        unique=a["unique"],
        duplicates=a["duplicates"],
        missing=a["missing"],
        unexpected=a["unexpected"],
        wrong_key=a["wrong_key"],
        wrong_due=a["wrong_due"],
        receiver_missing=a["receiver_missing"],
        receiver_duplicates=a["receiver_duplicates"],
        lateness=lateness,
        ratios=ratios,
        worker=wf,
        target_p99_s=args.target_p99_s,
        ok=ok,
    )


def _num(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.3g}"


def report(f: Figures) -> str:
    lines = [
        f"alert lateness: {f.orders} orders, leads {f.leads_s} s, deadlines +{f.window_s[0]:g}..+{f.window_s[1]:g} s"
        f" (run started {f.started})",
        f"machine: {f.machine}",
        f"ingestion: produced in {f.produce_s:.1f}s, all orders scheduled at +{f.scheduled_after_s:.1f}s,"
        f" first alert due at +{f.first_due_after_s:.1f}s",
        "",
        f"{'lateness (s = wall clock)':34} {'count':>7} {'p50':>11} {'p99':>11} {'max':>11}"
        f"   {'ratio to baseline p50/p99/max':>30}",
    ]
    names = {
        "emitted_all": "emitted_at − due, all",
        "emitted_due_soon": "  due-soon",
        "emitted_overdue": "  overdue",
        "arrival_all": "received − due, all",
        "receiver_all": "at the receiver − due (notify)",
        "baseline_call_at": "baseline: loop.call_at − due",
    }
    for key, label in names.items():
        row = f.lateness[key]
        rr = f.ratios.get(key)
        rtxt = f"{rr['p50']:>9} {rr['p99']:>9} {rr['max']:>9}" if rr else ""
        lines.append(
            f"{label:34} {int(row['count']):>7} {ms(row['p50']):>11} {ms(row['p99']):>11} {ms(row['max']):>11}   {rtxt}"
        )
    lines += [
        "",
        f"alerts: expected {f.expected}, received {f.received} ({f.unique} distinct), duplicates {f.duplicates},"
        f" missing {f.missing}, unexpected {f.unexpected}, wrong key {f.wrong_key}, wrong due_at {f.wrong_due}",
        f"receiver (hotline notify): missing {f.receiver_missing}, repeated {f.receiver_duplicates} (same alert id)",
        "worker: " + ", ".join(f"{k} {_num(v)}" for k, v in f.worker.items()),
        f"target p99 < {f.target_p99_s:g} s (emitted, received, at the receiver): "
        f"{'met' if f.ok else 'NOT MET (or alerts wrong)'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.alert_lateness", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000, help="dispatched orders (default 10000)")
    parser.add_argument(
        "--leads", type=float, nargs="+", default=[30.0], help="due-soon lead times in s (HOTLINE_ALERT_LEADS_S)"
    )
    parser.add_argument("--start-s", type=float, default=60.0, help="earliest deadline, s from now (default 60)")
    parser.add_argument("--spread-s", type=float, default=120.0, help="deadlines spread over this many s (120)")
    parser.add_argument("--timeout-s", type=float, default=60.0, help="give up this long after the last alert was due")
    parser.add_argument("--settle-s", type=float, default=3.0, help="keep listening for duplicates after the last one")
    parser.add_argument("--progress-s", type=float, default=10.0, help="progress line every N s")
    parser.add_argument("--target-p99-s", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the run's var dir (worker.log, chDB)")
    args = parser.parse_args(argv)
    if min(args.leads) <= 0 or args.start_s - max(args.leads) < 5:
        parser.error("leads must be > 0 and the first due-soon alert at least 5 s away (--start-s > lead + 5)")
    interrupt_on_sigterm()
    base = broker()
    receiver = Receiver(free_port())
    units = [u.id for u in default_registry().units]
    settings = isolated(
        base, "alerts", alert_leads_s=list(args.leads), alert_channels=receiver.channels(units), notify_port=free_port()
    )
    try:
        with run_dir(settings, args.keep), worker_process(settings) as worker:
            notifier = NotifyProcess(settings).start()
            try:
                figures = asyncio.run(measure(settings, worker, receiver, args))
            finally:
                notifier.stop()
    except KeyboardInterrupt:
        say("interrupted: worker and topics cleaned up")
        return 130
    publish(report(figures), figures, args.json)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
