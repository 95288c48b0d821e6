"""Event-to-screen delay of the live monitor: Kafka ack → the figure on the page.

One isolated worker process (own topics, app id, var dir, port) on the local broker,
and Debian's headless Chromium showing ``/monitor`` with a supervisor token. The
benchmark produces ``order.dispatched`` events one at a time (acks=all, random gaps
of ``--gap-min-s``..``--gap-max-s`` so some share a sink batch and some do not), each
to a random unit, each already overdue. In the page, a MutationObserver stamps
``Date.now()`` when the 今日交办 total changes, and again at the next animation frame
(the frame that paints it); the delay of event *k* is the first stamp showing at
least *k* events minus the wall time the benchmark began sending it (so the delay
includes the produce itself, acks=all: stricter than from the broker's ack, which is
reported too). Browser and benchmark read the same system clock.

Baselines, from the same events in the same run:

* the worker's existing alert path: each event makes the worker send an overdue alert
  at once (consume, batch, sink, schedule, alerts topic, feed), read from ``/alerts``
  over SSE by this process: how fast the pipeline already reaches a screen;
* a bare Kafka produce → consume round trip (a plain consumer on the orders topic):
  the floor no stage after Kafka can beat.

    python -m bench.screen_delay [--events 60] [--gap-min-s 0.1] [--gap-max-s 1.0] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from bench.common import (
    Summary,
    broker,
    interrupt_on_sigterm,
    isolated,
    machine,
    ms,
    publish,
    ratio,
    run_dir,
    say,
    worker_process,
)
from hotline.schemas.events import OrderDispatched, dump_event
from hotline.schemas.registry import default_registry
from hotline.settings import Settings
from hotline.streams.deadlines import TZ

TOKEN = "bench-office"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1200",
)

# Stamps each new value of the 今日交办 total: [value, DOM time, painted-frame time].
OBSERVER = """
window.__stamps = [];
let last = Number(document.getElementById('card-dispatched').textContent);
new MutationObserver(() => {
  const el = document.getElementById('card-dispatched');
  const value = el ? Number(el.textContent) : last;
  if (value === last) return;
  last = value;
  const stamp = [value, Date.now(), null];
  window.__stamps.push(stamp);
  requestAnimationFrame(() => { stamp[2] = Date.now(); });
}).observe(document.getElementById('cards'), {childList: true, subtree: true, characterData: true});
return last;
"""


@dataclass
class Figures:
    events: int
    machine: str
    started: str
    delays: dict[str, dict[str, float]] = field(default_factory=dict)
    ratios: dict[str, dict[str, str]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    target_p99_s: float = 2.0
    ok: bool = False


@contextlib.contextmanager
def chromium() -> Iterator[WebDriver]:
    """Debian's Chromium and chromedriver, a fresh profile, never a downloaded browser."""
    profile = Path(tempfile.mkdtemp(prefix="screen-delay-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver: WebDriver, settings: Settings) -> int:
    """Load the monitor, wait for its first figures, arm the observer; return the total shown."""
    driver.get(f"{settings.web_url}/monitor?token={TOKEN}")
    WebDriverWait(driver, 60, poll_frequency=0.05).until(
        lambda d: int(d.execute_script("return Number(document.body.dataset.snapshots)")) > 0
    )
    return int(driver.execute_script(OBSERVER))


def shown_total(driver: WebDriver) -> int:
    return int(driver.execute_script("return Number(document.getElementById('card-dispatched').textContent)"))


def dispatch(settings: Settings, order_id: str, unit_id: str) -> tuple[str, bytes, bytes]:
    """An order dispatched now and already due a second ago: it counts today and alerts at once."""
    now = datetime.now(TZ)
    ev = OrderDispatched(
        event_id=f"ev-{order_id}",
        occurred_at=now,
        order_id=order_id,
        unit_id=unit_id,
        order_type="complaint",
        category="城市管理",
        due_at=now - timedelta(seconds=1),
    )
    return settings.orders_topic, order_id.encode(), dump_event(ev)


class Baselines:
    """The two reference paths, stamped by order id on arrival."""

    def __init__(self, settings: Settings, prefix: str) -> None:
        self.settings = settings
        self.prefix = prefix
        self.kafka: dict[str, float] = {}
        self.alerts: dict[str, float] = {}
        self.ready = asyncio.Event()
        self.sse_open = asyncio.Event()

    async def follow_kafka(self) -> None:
        consumer = AIOKafkaConsumer(enable_auto_commit=False, **self.settings.kafka_client_options())
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(self.settings.orders_topic)
            while not partitions:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(self.settings.orders_topic)
            tps = [TopicPartition(self.settings.orders_topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:
                await consumer.position(tp)
            self.ready.set()
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                arrived = time.time()
                for records in batch.values():
                    for record in records:
                        key = (record.key or b"").decode()
                        if key.startswith(self.prefix):
                            self.kafka.setdefault(key, arrived)
        finally:
            await consumer.stop()

    async def follow_alerts(self) -> None:
        url = f"{self.settings.web_url}/alerts"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as response,
        ):
            response.raise_for_status()
            self.sse_open.set()
            async for line in response.content:
                if line.startswith(b"data: "):
                    arrived = time.time()
                    alert = json.loads(line[6:])
                    if alert.get("type") == "alert.overdue" and alert["order_id"].startswith(self.prefix):
                        self.alerts.setdefault(alert["order_id"], arrived)


def screen_times(stamps: list[list[Any]], base: int, sent: list[float], painted: bool) -> list[float | None]:
    """For event k (1-based), the first stamp whose total reaches base + k."""
    times: list[float | None] = []
    for k in range(1, len(sent) + 1):
        hit = next((s for s in stamps if int(s[0]) >= base + k and s[2 if painted else 1] is not None), None)
        times.append(None if hit is None else float(hit[2 if painted else 1]) / 1000)
    return times


def delays(arrivals: Sequence[float | None], sent: Sequence[float]) -> tuple[list[float], int]:
    got = [a - t for a, t in zip(arrivals, sent, strict=True) if a is not None]
    return got, sum(1 for a in arrivals if a is None)


def _row(s: Summary) -> dict[str, float]:
    return {"count": s.count, "p50": s.p50, "p99": s.p99, "max": s.max, "min": s.min}


async def produce_all(
    settings: Settings, driver: WebDriver, args: argparse.Namespace
) -> tuple[Baselines, list[float], list[float], int]:
    """Warm up, then send the events one by one; return the baselines, send and ack times, and the base total."""
    prefix = f"SD{uuid.uuid4().hex[:6]}-"
    baselines = Baselines(settings, prefix)
    followers = [asyncio.create_task(baselines.follow_kafka()), asyncio.create_task(baselines.follow_alerts())]
    rng = random.Random(args.seed)
    units = [u.id for u in default_registry()]
    producer = AIOKafkaProducer(linger_ms=0, **settings.producer_options(), **settings.kafka_client_options())
    await producer.start()
    try:
        await asyncio.wait_for(asyncio.gather(baselines.ready.wait(), baselines.sse_open.wait()), 60)
        # Warm-up: the worker may still be joining its group; measure only once an event got through.
        base = await asyncio.to_thread(shown_total, driver)
        topic, key, value = dispatch(settings, f"warmup-{prefix}", rng.choice(units))
        await producer.send_and_wait(topic, value, key=key)
        await asyncio.to_thread(WebDriverWait(driver, 120, poll_frequency=0.1).until, lambda d: shown_total(d) > base)
        base = await asyncio.to_thread(shown_total, driver)
        await asyncio.sleep(1.0)
        say(f"warm-up event on screen; producing {args.events} events ...")
        sent: list[float] = []
        acked: list[float] = []
        for i in range(args.events):
            topic, key, value = dispatch(settings, f"{prefix}{i:05d}", rng.choice(units))
            sent.append(time.time())
            await producer.send_and_wait(topic, value, key=key)
            acked.append(time.time())
            await asyncio.sleep(rng.uniform(args.gap_min_s, args.gap_max_s))
        deadline = time.monotonic() + args.timeout_s
        while time.monotonic() < deadline:
            shown = await asyncio.to_thread(shown_total, driver)
            if shown >= base + args.events and len(baselines.alerts) >= args.events:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # the last animation frame
        return baselines, sent, acked, base
    finally:
        await producer.stop()
        for task in followers:
            task.cancel()
        for task in followers:
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await task


def measure(settings: Settings, args: argparse.Namespace) -> Figures:
    started = datetime.now(TZ).isoformat(timespec="seconds")
    with chromium() as driver:
        open_page(driver, settings)
        baselines, sent, acked, base = asyncio.run(produce_all(settings, driver, args))
        stamps: list[list[Any]] = list(driver.execute_script("return window.__stamps"))
    keys = [f"{baselines.prefix}{i:05d}" for i in range(len(sent))]
    series = {
        "screen_painted": delays(screen_times(stamps, base, sent, painted=True), sent),
        "screen_dom": delays(screen_times(stamps, base, sent, painted=False), sent),
        "baseline_alerts_sse": delays([baselines.alerts.get(k) for k in keys], sent),
        "baseline_kafka_roundtrip": delays([baselines.kafka.get(k) for k in keys], sent),
        "produce_ack": delays(acked, sent),
    }
    figures = Figures(events=len(sent), machine=machine(), started=started, target_p99_s=args.target_p99_s)
    summaries = {name: Summary.of(values) for name, (values, _) in series.items()}
    figures.delays = {name: _row(s) for name, s in summaries.items()}
    figures.missing = {name: missing for name, (_, missing) in series.items()}
    for name in ("screen_painted", "screen_dom"):
        for base_name in ("baseline_alerts_sse", "baseline_kafka_roundtrip"):
            s, b = summaries[name], summaries[base_name]
            figures.ratios[f"{name} / {base_name}"] = {q: ratio(getattr(s, q), getattr(b, q)) for q in ("p50", "p99")}
    p99 = summaries["screen_painted"].p99
    figures.ok = figures.missing["screen_painted"] == 0 and math.isfinite(p99) and p99 < args.target_p99_s
    return figures


def report(f: Figures) -> str:
    labels = {
        "screen_painted": "produce → monitor page (painted)",
        "screen_dom": "produce → monitor page (DOM)",
        "baseline_alerts_sse": "baseline: produce → /alerts SSE",
        "baseline_kafka_roundtrip": "baseline: produce → plain consumer",
        "produce_ack": "of which: produce → broker ack",
    }
    lines = [
        f"event-to-screen delay: {f.events} events (run started {f.started})",
        f"machine: {f.machine}",
        "",
        f"{'path':40} {'count':>6} {'missing':>8} {'p50':>11} {'p99':>11} {'max':>11}",
    ]
    for key, label in labels.items():
        row = f.delays[key]
        lines.append(
            f"{label:40} {int(row['count']):>6} {f.missing[key]:>8} {ms(row['p50']):>11} {ms(row['p99']):>11}"
            f" {ms(row['max']):>11}"
        )
    lines += ["", f"{'ratio (p50, p99)':60} {'p50':>8} {'p99':>8}"]
    for name, r in f.ratios.items():
        lines.append(f"{name:60} {r['p50']:>8} {r['p99']:>8}")
    verdict = "met" if f.ok else "NOT MET"
    lines += ["", f"target: p99 (painted) < {f.target_p99_s:g} s, nothing missing: {verdict}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screen_delay", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60, help="dispatch events, one at a time (default 60)")
    parser.add_argument("--gap-min-s", type=float, default=0.1, help="shortest pause between two events")
    parser.add_argument("--gap-max-s", type=float, default=1.0, help="longest pause between two events")
    parser.add_argument("--timeout-s", type=float, default=30.0, help="wait this long after the last event")
    parser.add_argument("--target-p99-s", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the run's var dir (worker.log, chDB)")
    args = parser.parse_args(argv)
    if args.events < 1 or not 0 <= args.gap_min_s <= args.gap_max_s:
        parser.error("--events must be >= 1 and 0 <= --gap-min-s <= --gap-max-s")
    interrupt_on_sigterm()
    settings = isolated(broker(), "screen", access_tokens={TOKEN: "*"}, api_token=TOKEN)
    try:
        with run_dir(settings, args.keep), worker_process(settings):
            figures = measure(settings, args)
    except KeyboardInterrupt:
        say("interrupted: browser, worker and topics cleaned up")
        return 130
    publish(report(figures), figures, args.json)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
