"""The worker's job done by its peers, side by side on the same records, in one invocation.

Contenders (``--only`` picks some, by these names):

- ``worker``: a real ``hotline worker`` (``bench.common.WorkerProcess``): Faust, ledger, chDB sink;
  done when its ledger (``/offsets``) covers every offset produced;
- ``worker-late``: the same worker, on the same records with ``--late`` of them (10 %) moved to a
  random later place, so their orders are folded again when they arrive (what re-folding costs);
- ``quix``: Quix Streams, the same job, a chDB sink on its ``BatchingSink`` (``bench.peers_quix``);
- ``faust``: a bare Faust agent with the worker's state layout, no sink (``bench.peers_faust``);
- ``loop``: the worker's job in a plain aiokafka ``getmany`` loop, no sink (``bench.peers_loop job``);
- ``getmany``: bare aiokafka ``getmany``, the baseline (``bench.peers_loop bare``).

Records: the seed month (``hotline.generate.generate``) × ``--multiplier`` (10: 321,940 records),
copy k re-keyed with the suffix ``-k`` on every event, order and call id, so each copy is
new to every contender while keeping the month's 3 % exact duplicates.

Each run of a contender has its own topics, consumer group, var dir (so its own chDB
directory: chDB is one process per directory) and process. It is started, warmed (a call
and an order processed/stored), **stopped with SIGSTOP while the records are produced**
into its fresh topics, then resumed with SIGCONT: the time runs from the resume to the
last record processed (peers without a sink) or stored (the worker's ledger, Quix's sink).
Its CPU time (``/proc/<pid>/stat``: user + system, every thread) and peak RSS (``VmHWM``)
are read for the timed part; so are the machine's load average and the CPU the rest of
the machine used meanwhile (``/proc/stat`` minus the contender). ``--rounds`` rounds, each
running every contender once, in an order rotated by one per round; medians per contender.

    python -m bench.peers [--multiplier 10] [--rounds 3] [--only worker,quix] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from bench.common import (
    broker,
    create_topics,
    interrupt_on_sigterm,
    isolated,
    machine,
    publish,
    say,
)
from bench.peers_contenders import CONTENDERS, Offsets, contender
from bench.peers_report import Figures, Run, report, shown, summarise
from hotline.deploy import kafka
from hotline.generate import generate, route
from hotline.replay import Record, produce
from hotline.seed import HEADLINE, TABLE
from hotline.settings import Settings
from hotline.streams.deadlines import TZ

ID_FIELDS = ("event_id", "order_id", "call_id")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Month:
    """The records every contender gets: (logical topic, key, value), in production order."""

    records: list[tuple[str, bytes, bytes]]
    distinct_events: int
    seed_records: int


def rekeyed(month: list[bytes], copies: int) -> Month:
    """The month ``copies`` times; copy k has ``-k`` appended to every event, order and call id."""
    out: list[tuple[str, bytes, bytes]] = []
    ids: set[str] = set()
    for k in range(copies):
        for raw in month:
            event = json.loads(raw)
            for name in ID_FIELDS:
                if event.get(name) is not None:
                    event[name] = f"{event[name]}-{k}"
            value = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
            topic, key = route(value)
            ids.add(event["event_id"])
            out.append((topic, key.encode(), value))
    return Month(out, len(ids), len(month))


def arriving_late(month: Month, share: float, seed: int) -> Month:
    """The same records with ``share`` of them, drawn at random, each moved to a random later place."""
    rng = random.Random(seed)
    records = list(month.records)
    for _ in range(int(len(records) * share)):
        i = rng.randrange(len(records))
        records.insert(rng.randrange(i, len(records)), records.pop(i))
    return Month(records, month.distinct_events, month.seed_records)


def for_topics(month: Month, settings: Settings) -> list[Record]:
    topics = {"calls": settings.calls_topic, "orders": settings.orders_topic}
    return [Record(topics[t], key, value) for t, key, value in month.records]


# --------------------------------------------------------------------------- machine figures


def busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from the first line of ``/proc/stat``."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already in user
    return total - idle, total


def load1() -> float:
    return os.getloadavg()[0]


# --------------------------------------------------------------------------- one run


async def _delete_run_topics(settings: Settings) -> list[str]:
    """Every topic whose name holds the run's app id: its own, Faust's ``<id>-…``, Quix's ``changelog__<id>--…``."""
    admin = AIOKafkaAdminClient(request_timeout_ms=30_000, **kafka.client_options(settings))
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if settings.app_id in t]
        if ours:
            await admin.delete_topics(ours, timeout_ms=30_000)
        return ours
    finally:
        await admin.close()


@contextlib.contextmanager
def run_dir(settings: Settings, keep: bool) -> Iterator[None]:
    """``bench.common.run_dir`` that also deletes the topics Quix names after the app id."""
    create_topics(settings)
    ok = False
    try:
        yield
        ok = True
    except KeyboardInterrupt:
        ok = True
        raise
    finally:
        try:
            deleted = asyncio.run(_delete_run_topics(settings))
            say(f"deleted {len(deleted)} topics of the run")
        except Exception as exc:
            say(f"could not delete the run's topics: {exc!r}")
        if ok and not keep:
            shutil.rmtree(settings.var_path, ignore_errors=True)
        else:
            say(f"kept {settings.var_path}")


def one_run(name: str, round_no: int, base: Settings, month: Month, args: argparse.Namespace) -> Run:
    # A session timeout well above the time the records take to produce: a stopped process sends no heartbeats.
    settings = isolated(base, f"peers-{name}", session_timeout_s=args.session_timeout_s)
    records = for_topics(month, settings)
    with run_dir(settings, args.keep):
        c = contender(name, settings, args)
        say(f"--- round {round_no}: {name} (app {settings.app_id})")
        c.start()
        try:
            warmup_s = c.warm()
            say(f"{name}: warm ({warmup_s:.1f}s); stopping it while {len(records):,} records are produced")
            os.kill(c.pid, signal.SIGSTOP)
            try:
                t0 = time.perf_counter()
                last: Offsets = asyncio.run(produce(records, settings))
                produce_s = time.perf_counter() - t0
                c.expect(last)
                cpu0 = c.process.cpu_seconds()
                busy0 = busy_jiffies()
                load0 = load1()
                at = datetime.now(TZ).isoformat(timespec="seconds")
                resumed = time.monotonic()
            finally:
                os.kill(c.pid, signal.SIGCONT)
            say(f"{name}: produced in {produce_s:.1f}s; resumed")
            done = c.wait_done(last, args.timeout_s)
            cpu1 = c.process.cpu_seconds()
            busy1 = busy_jiffies()
            wall = time.monotonic() - resumed
            load_done = load1()
            rss = c.process.status_kib("VmHWM")
            check = c.check()
        finally:
            c.stop()
        check.update(c.after_stop())
    seconds = done - resumed
    n = len(records)
    cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    ticks = os.sysconf("SC_CLK_TCK")
    machine_cores = (busy1[0] - busy0[0]) / ticks / wall if wall > 0 else None
    own = cpu / wall if cpu is not None and wall > 0 else None
    run = Run(
        contender=name,
        round=round_no,
        at=at,
        records=n,
        warmup_s=warmup_s,
        produce_s=produce_s,
        seconds=seconds,
        records_per_s=n / seconds,
        cpu_s=cpu,
        cpu_us_per_record=cpu / n * 1e6 if cpu is not None else None,
        cores_used=own,
        peak_rss_mib=rss / 1024 if rss else None,
        load1_at_resume=load0,
        load1_at_done=load_done,
        machine_busy_cores=machine_cores,
        others_busy_cores=machine_cores - own if machine_cores is not None and own is not None else None,
        check=check,
    )
    say(
        f"{name}: {n:,} records in {seconds:.2f}s = {run.records_per_s:,.0f}/s, "
        f"CPU {shown(run.cpu_us_per_record, '{:,.0f} µs')}/record, peak RSS {shown(run.peak_rss_mib, '{:,.0f} MiB')}, "
        f"load {load0:.2f}→{load_done:.2f}, rest of the machine {shown(run.others_busy_cores, '{:.2f}')} cores"
    )
    return run


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.splitlines()[0])
    parser.add_argument("--multiplier", type=int, default=10, help="copies of the seed month (10: 321,940 records)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each runs every contender once")
    parser.add_argument("--only", help=f"comma-separated contenders, of: {','.join(CONTENDERS)}")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--late", type=float, default=0.1, help="worker-late: share of records arriving late")
    parser.add_argument("--seed", type=int, default=2019, help="generator seed")
    parser.add_argument("--timeout-s", type=float, default=1200.0, help="per run, from the resume")
    parser.add_argument("--poll-s", type=float, default=0.2, help="how often the worker's /offsets is read")
    parser.add_argument("--progress-s", type=float, default=10.0)
    parser.add_argument("--session-timeout-s", type=float, default=60.0, help="consumer sessions (worker, Faust, Quix)")
    parser.add_argument("--quix-commit-interval", type=float, default=1.0, help="Quix checkpoint (sink flush) interval")
    parser.add_argument("--keep", action="store_true", help="keep each run's var dir (logs, chDB)")
    args = parser.parse_args(argv)
    names = list(CONTENDERS) if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contenders {unknown}; choose from {list(CONTENDERS)}")
    if args.multiplier < 1 or args.rounds < 1:
        parser.error("--multiplier and --rounds must be >= 1")
    interrupt_on_sigterm()
    base = broker()
    started = datetime.now(TZ).isoformat(timespec="seconds")
    say("generating the seed month ...")
    seed = generate(TABLE, HEADLINE, seed=args.seed)
    month = rekeyed(seed, args.multiplier)
    say(
        f"{len(month.records):,} records ({month.distinct_events:,} distinct events): {len(seed):,} × {args.multiplier}"
    )
    late = arriving_late(month, args.late, args.seed)
    runs: list[Run] = []
    failures: list[str] = []
    try:
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            say(f"=== round {r + 1}/{args.rounds}: {', '.join(order)}")
            for name in order:
                try:
                    records = late if name == "worker-late" else month
                    runs.append(one_run(name, r + 1, base, records, args))
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    say(f"{name}, round {r + 1} failed: {exc!r}")
                    failures.append(f"{name}, round {r + 1}: {exc!r}")
    except KeyboardInterrupt:
        say("interrupted: processes stopped and topics deleted")
        return 130
    try:
        from importlib.metadata import version

        quix: str | None = version("quixstreams")
    except Exception:
        quix = None
    figures = Figures(
        started=started,
        finished=datetime.now(TZ).isoformat(timespec="seconds"),
        machine=machine(),
        multiplier=args.multiplier,
        rounds=args.rounds,
        records=len(month.records),
        distinct_events=month.distinct_events,
        worker_ingest=getattr(base, "ingest", None),
        quix_commit_interval_s=args.quix_commit_interval,
        quixstreams=quix,
        rows=summarise(runs, names),
        runs=runs,
        failures=failures,
    )
    publish(report(figures), figures, args.json)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
