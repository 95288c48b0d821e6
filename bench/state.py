"""The worker's memory and restart time against the length of its history.

For each history length (``--months``, default 1, 12 and 36), a fresh worker streams that many
months of the seed city in order (the seed month, copy k re-keyed with ``-k`` and moved 28·k
days later, so weekdays keep their pattern), at a pace it keeps up with (``--history-rate``: its
memory is then its state, not a backlog of unread records), with the order table's eviction on
as shipped (``HOTLINE_EVICT_AFTER_S``). Then the city keeps calling: the next month's first
records trickle in (``--trickle-rate``) for ``--compact-wait-s``, time in which Kafka's cleaner
compacts the changelog as it would have over the months a real history takes (a topic nobody
writes to is never cleaned again). Measured, each as a ratio against the one-month run of the
same invocation:

- the restart: SIGKILL, a new worker started and one new record produced; the time from the
  start to that record in the ledger (the group join, Faust's recovery of the order table from
  its changelog, the filters of stored ids, the assignment and the first batch), the median of
  ``--restarts``; the changelog's records and tombstones are counted before it;
- the running worker's peak RSS (``VmHWM``): the restarted worker's, over the rest of the next
  month produced at once (the same month for every history length);
- the streaming worker's peak RSS over the history itself.

Time is compressed (a month streams in seconds), so the periods are too: the eviction sweep runs
every ``--sweep-s`` (shipped: 30 s) and the changelog's compaction period is ``--segment-s``
(shipped: an hour, which would never close a segment within a run).

    python -m bench.state [--months 1,12,36] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.common import WorkerProcess, broker, isolated, machine, publish, run_dir, say, worker_process
from bench.peers import ID_FIELDS
from hotline.generate import generate, route
from hotline.replay import Record, produce, wait_until_sunk
from hotline.seed import HEADLINE, TABLE
from hotline.settings import Settings

SHIFT = timedelta(days=28)


def _shifted(value: object, by: timedelta) -> object:
    """An ISO time moved ``by`` later; anything else as it is."""
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return (datetime.fromisoformat(value) + by).isoformat()
        except ValueError:
            return value
    return value


def copy(month: list[bytes], k: int) -> list[tuple[str, bytes, bytes]]:
    """Copy k of the month: re-keyed with ``-k`` and 28·k days later."""
    out = []
    for raw in month:
        event = json.loads(raw)
        for name in ID_FIELDS:
            if event.get(name) is not None:
                event[name] = f"{event[name]}-{k}"
        event = {name: _shifted(value, SHIFT * k) for name, value in event.items()}
        value = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        topic, key = route(value)
        out.append((topic, key.encode(), value))
    return out


def history(month: list[bytes], months: int) -> list[tuple[str, bytes, bytes]]:
    """``months`` copies of the month, in order."""
    return [row for k in range(months) for row in copy(month, k)]


async def changelog_census(settings: Settings) -> tuple[int, int]:
    """The order table's changelog as a restart reads it: (records, of which tombstones)."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.kafka_client_options())
    await consumer.start()
    try:
        topic = f"{settings.app_id}-order-state-changelog"
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records = tombstones = 0
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                records += len(batch)
                tombstones += sum(r.value is None for r in batch)
        return records, tombstones
    finally:
        await consumer.stop()


def _records(rows: list[tuple[str, bytes, bytes]], settings: Settings) -> list[Record]:
    topics = {"calls": settings.calls_topic, "orders": settings.orders_topic}
    return [Record(topics[t], k, v) for t, k, v in rows]


@dataclass
class Point:
    months: int
    records: int
    peak_rss_mib: float
    restart_s: float
    evicted: float
    changelog: int = 0  # records a restart replays
    tombstones: int = 0
    running_rss_mib: float = 0.0  # the restarted worker's peak over one more month of traffic


@dataclass
class Figures:
    machine: str
    points: list[Point] = field(default_factory=list)


def _one_record(settings: Settings, tag: str) -> list[Record]:
    call_id = f"bench-restart-{tag}"
    call = {
        "event_id": call_id,
        "type": "call.received",
        "occurred_at": "2026-01-05T09:00:00+08:00",
        "schema_version": 1,
        "call_id": call_id,
        "answered": True,
    }
    return [Record(settings.calls_topic, call_id.encode(), json.dumps(call).encode())]


def _restart(worker: WorkerProcess, settings: Settings, tag: str) -> float:
    """SIGKILL (but the first time: already killed), start, one record: seconds to it in the ledger."""
    if worker.alive():
        worker.kill()
    started = time.monotonic()
    worker.start()
    last = asyncio.run(produce(_one_record(settings, tag), settings))
    wait_until_sunk(last, settings, timeout=1800)
    return time.monotonic() - started


def run_one(base: Settings, month: list[bytes], months: int, args: argparse.Namespace) -> Point:
    settings = isolated(base, f"state{months}", changelog_segment_s=args.segment_s, evict_sweep_s=args.sweep_s)
    rows = history(month, months)
    with run_dir(settings, args.keep), worker_process(settings) as worker:
        say(f"{months} month(s): producing {len(rows):,} records")
        if args.history_rate:  # at a pace the worker keeps up with: its memory is its state, not a backlog
            asyncio.run(trickle(_records(rows, settings), settings, len(rows) / args.history_rate))
            last = asyncio.run(produce(_one_record(settings, f"{months}-history"), settings))
        else:
            last = asyncio.run(produce(_records(rows, settings), settings))
        wait_until_sunk(last, settings, timeout=3600)
        peak = (worker.status_kib("VmHWM") or 0) / 1024
        evicted = worker.metrics().get("hotline_orders_evicted_total", 0.0)
        say(f"{months} month(s): stored; peak RSS {peak:.0f} MiB, {evicted:.0f} orders evicted")
        # Time passes and the city keeps calling: the next month's first records, a few a second, so
        # the changelog's segments keep rolling and Kafka's cleaner keeps passing over them, as in
        # the months a real history takes (a quiet topic is never cleaned again).
        following = copy(month, months)
        trickled = int(args.trickle_rate * args.compact_wait_s)
        asyncio.run(trickle(_records(following[:trickled], settings), settings, args.compact_wait_s))
        worker.kill()
        changelog, tombstones = asyncio.run(changelog_census(settings))
        restarts = [_restart(worker, settings, f"{months}-{i}") for i in range(args.restarts)]
        restart = statistics.median(restarts)
        say(
            f"{months} month(s): restart to first batch {', '.join(f'{r:.1f}' for r in restarts)} s"
            f" ({changelog:,} changelog records replayed)"
        )
        last = asyncio.run(produce(_records(following[trickled:], settings), settings))
        wait_until_sunk(last, settings, timeout=1800)
        running = (worker.status_kib("VmHWM") or 0) / 1024
        say(f"{months} month(s): one more month after the restart; peak RSS {running:.0f} MiB")
    return Point(months, len(rows), peak, restart, evicted, changelog, tombstones, running)


async def trickle(records: list[Record], settings: Settings, seconds: float) -> None:
    """Send ``records`` evenly over ``seconds``, a second's share at a time."""
    producer = AIOKafkaProducer(**settings.producer_options(), **settings.kafka_client_options())
    await producer.start()
    try:
        per_second = max(1, round(len(records) / seconds))
        for start in range(0, len(records), per_second):
            began = time.monotonic()
            for r in records[start : start + per_second]:
                await producer.send(r.topic, r.value, key=r.key)
            await producer.flush()
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    finally:
        await producer.stop()


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline > 0 else "n/a"


def report(f: Figures) -> str:
    base = f.points[0]
    lines = [
        f"state vs history ({f.machine}); ratios against {base.months} month(s) in the same run",
        f"{'months':>6} {'records':>10} {'running RSS':>11} {'ratio':>7} {'restart':>9} {'ratio':>7}"
        f" {'stream RSS':>10} {'ratio':>7} {'evicted':>9} {'changelog':>10} {'tombstones':>10}",
    ]
    for p in f.points:
        lines.append(
            f"{p.months:>6} {p.records:>10,} {p.running_rss_mib:>7.0f} MiB"
            f" {_ratio(p.running_rss_mib, base.running_rss_mib):>7}"
            f" {p.restart_s:>8.1f}s {_ratio(p.restart_s, base.restart_s):>7}"
            f" {p.peak_rss_mib:>6.0f} MiB {_ratio(p.peak_rss_mib, base.peak_rss_mib):>7}"
            f" {p.evicted:>9,.0f} {p.changelog:>10,} {p.tombstones:>10,}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.state", description=__doc__.split("\n")[0])
    parser.add_argument("--months", default="1,12,36", help="history lengths, comma-separated (first: baseline)")
    parser.add_argument(
        "--history-rate", type=float, default=8000.0, help="records a second of the history (0: all at once)"
    )
    parser.add_argument("--restarts", type=int, default=3, help="restarts per history length (median)")
    parser.add_argument("--trickle-rate", type=float, default=200.0, help="records a second after the history")
    parser.add_argument(
        "--segment-s", type=float, default=10.0, help="the changelog's compaction period (HOTLINE_CHANGELOG_SEGMENT_S)"
    )
    parser.add_argument("--sweep-s", type=float, default=1.0, help="the eviction sweep period, in seconds")
    parser.add_argument(
        "--compact-wait-s", type=float, default=60.0, help="time left to Kafka's log cleaner, the city trickling"
    )
    parser.add_argument("--seed", type=int, default=2019)
    parser.add_argument("--keep", action="store_true", help="keep each run's var dir")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    base = broker()
    month = generate(TABLE, HEADLINE, seed=args.seed)
    figures = Figures(machine())
    for months in [int(m) for m in args.months.split(",")]:
        figures.points.append(run_one(base, month, months, args))
    publish(report(figures), figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
