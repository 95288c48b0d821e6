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
import math
import os
import queue
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from bench.common import (
    REPO,
    WorkerProcess,
    broker,
    create_topics,
    interrupt_on_sigterm,
    isolated,
    machine,
    publish,
    say,
)
from bench.peers_job import REPORT_FD
from bench.throughput import warm_up, warmup_records
from hotline.client import worker_get
from hotline.deploy import kafka
from hotline.deploy.worker import settings_env
from hotline.generate import generate, route
from hotline.replay import Record, behind, produce, stored_progress
from hotline.seed import HEADLINE, TABLE
from hotline.settings import Settings
from hotline.streams.deadlines import TZ

Offsets = dict[tuple[str, int], int]

CONTENDERS: dict[str, str] = {
    "worker": "our worker (`hotline worker`: Faust, ledger, chDB sink)",
    "worker-late": "our worker, the same records with a share of them arriving late (``--late``)",
    "quix": "Quix Streams, same job, chDB sink on its `BatchingSink`",
    "faust": "bare Faust agent, the worker's state layout, no sink",
    "loop": "the worker's job in a plain aiokafka `getmany` loop, no sink",
    "getmany": "bare aiokafka `getmany` (baseline)",
}
CHILD_COMMANDS: dict[str, list[str]] = {
    "quix": ["bench.peers_quix"],
    "faust": ["bench.peers_faust"],
    "loop": ["bench.peers_loop", "job"],
    "getmany": ["bench.peers_loop", "bare"],
}
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


# --------------------------------------------------------------------------- contenders


class PeerProcess(WorkerProcess):
    """A peer child (``python -m bench.peers_…``): the worker's /proc readings, the protocol of ``bench.peers_job``."""

    def __init__(self, settings: Settings, command: list[str], env: dict[str, str]) -> None:
        super().__init__(settings)
        self.command = command
        self.extra_env = env
        self.log = settings.var_path / "peer.log"
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.summary: dict[str, Any] | None = None

    def start(self, timeout: float = 120) -> PeerProcess:
        self.settings.var_path.mkdir(parents=True, exist_ok=True)
        read_end, write_end = os.pipe()
        env = {**settings_env(self.settings), **self.extra_env, REPORT_FD: str(write_end)}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *self.command],
                env=env,
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_end,),
            )
        os.close(write_end)
        threading.Thread(target=self._read, args=(read_end,), name="peer-report", daemon=True).start()
        self.expect("ready", timeout)
        return self

    def _read(self, fd: int) -> None:
        with os.fdopen(fd, "r") as reports:
            for line in reports:
                self.lines.put(line.strip())
        self.lines.put(None)

    def expect(self, word: str, timeout: float) -> list[str]:
        """The next report starting with ``word`` (its other words); raise if the child dies or is late."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.command}: no {word!r} within {timeout:.0f}s:\n{self.tail(30)}")
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"{self.command} exited with {self.proc.returncode}:\n{self.tail(30)}") from None
                continue
            if line is None:
                raise RuntimeError(f"{self.command} closed its report channel:\n{self.tail(30)}")
            words = line.split()
            if words and words[0] == word:
                return words[1:]

    def target(self, offsets: Offsets) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        message = {"target": [[t, p, o] for (t, p), o in sorted(offsets.items())]}
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def stop(self, timeout: float = 60) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # the child stops itself on EOF, too
        super().stop(timeout)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # its last words: the summary line, then EOF
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            if line.startswith("summary "):
                self.summary = json.loads(line.split(" ", 1)[1])


@dataclass
class Run:
    """One contender, one round."""

    contender: str
    round: int
    at: str  # local time of the resume
    records: int
    warmup_s: float
    produce_s: float  # the contender was stopped (SIGSTOP) meanwhile
    seconds: float  # resume → last record processed / stored
    records_per_s: float
    cpu_s: float | None
    cpu_us_per_record: float | None
    cores_used: float | None  # the contender's CPU / wall time
    peak_rss_mib: float | None
    load1_at_resume: float
    load1_at_done: float
    machine_busy_cores: float | None  # every CPU of the machine, busy jiffies / wall time
    others_busy_cores: float | None  # the machine minus the contender (Kafka, other sessions)
    check: dict[str, Any] = field(default_factory=dict)  # what the contender says it did
    error: str | None = None


class Contender:
    """How ``bench.peers`` drives one contender process: start, warm, stop/resume, wait, stop."""

    def __init__(self, name: str, settings: Settings, args: argparse.Namespace) -> None:
        self.name = name
        self.settings = settings
        self.args = args
        self.process: WorkerProcess

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self) -> None:
        raise NotImplementedError

    def warm(self) -> float:
        raise NotImplementedError

    def expect(self, offsets: Offsets) -> None:
        """Called while the process is stopped, after the records are produced."""

    def wait_done(self, offsets: Offsets, timeout: float) -> float:
        """The monotonic time at which every offset was processed/stored."""
        raise NotImplementedError

    def check(self) -> dict[str, Any]:
        return {}

    def after_stop(self) -> dict[str, Any]:
        return {}

    def stop(self) -> None:
        self.process.stop()


class WorkerContender(Contender):
    def start(self) -> None:
        self.process = WorkerProcess(self.settings)
        started = time.monotonic()
        self.process.start()
        say(f"worker pid {self.pid} answers after {time.monotonic() - started:.1f}s")

    def warm(self) -> float:
        return warm_up(self.settings)

    def wait_done(self, offsets: Offsets, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        next_say = time.monotonic() + self.args.progress_s
        while True:
            sunk = stored_progress(self.settings)
            now = time.monotonic()
            missing = behind(offsets, sunk)
            if not missing:
                return now
            if now > deadline:
                raise TimeoutError(f"worker has not sunk everything after {timeout:.0f}s: {missing}")
            if now >= next_say:
                done = sum(min(sunk.get(tp, -1), o) + 1 for tp, o in offsets.items())
                say(f"worker: ledger covers {done:,}/{sum(o + 1 for o in offsets.values()):,} offsets")
                next_say = now + self.args.progress_s
            time.sleep(self.args.poll_s)

    def check(self) -> dict[str, Any]:
        counts = worker_get(self.settings, "/status").get("counts", {})
        return {"stored": {str(k): int(v) for k, v in counts.items()}}


class PeerContender(Contender):
    def start(self) -> None:
        env = {"PEERS_QUIX_COMMIT_INTERVAL": str(self.args.quix_commit_interval)}
        self.peer = PeerProcess(self.settings, CHILD_COMMANDS[self.name], env)
        self.process = self.peer
        started = time.monotonic()
        self.peer.start()
        say(f"{self.name} pid {self.pid} ready after {time.monotonic() - started:.1f}s")

    def warm(self) -> float:
        t0 = time.perf_counter()
        last = asyncio.run(produce(warmup_records(self.settings), self.settings))
        self.peer.target(last)
        self.peer.expect("done", 120)
        return time.perf_counter() - t0

    def expect(self, offsets: Offsets) -> None:
        self.peer.target(offsets)

    def wait_done(self, offsets: Offsets, timeout: float) -> float:
        words = self.peer.expect("done", timeout)
        self.processed = int(words[1])
        return float(words[0])

    def check(self) -> dict[str, Any]:
        return {"records_reported": self.processed}

    def after_stop(self) -> dict[str, Any]:
        return {"summary": self.peer.summary} if self.peer.summary is not None else {}


def contender(name: str, settings: Settings, args: argparse.Namespace) -> Contender:
    if name.startswith("worker"):
        return WorkerContender(name, settings, args)
    return PeerContender(name, settings, args)


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
                last = asyncio.run(produce(records, settings))
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
        f"CPU {_num(run.cpu_us_per_record, '{:,.0f} µs')}/record, peak RSS {_num(run.peak_rss_mib, '{:,.0f} MiB')}, "
        f"load {load0:.2f}→{load_done:.2f}, rest of the machine {_num(run.others_busy_cores, '{:.2f}')} cores"
    )
    return run


def times(value: float | None, baseline: float | None) -> str:
    """``value / baseline`` with two decimals (``0.57x``), ``n/a`` without both."""
    if value is None or baseline is None or not math.isfinite(value) or not math.isfinite(baseline) or baseline <= 0:
        return "n/a"
    return f"{value / baseline:.3g}x" if value / baseline < 0.1 else f"{value / baseline:,.2f}x"


def _num(value: float | None, fmt: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else fmt.format(value)


# --------------------------------------------------------------------------- summary


@dataclass
class Row:
    contender: str
    label: str
    runs: int
    records_per_s: float  # median over the rounds
    records_per_s_runs: list[float]
    cpu_us_per_record: float | None  # median
    peak_rss_mib: float | None  # largest
    vs_worker: str  # records/s ÷ the worker's
    cpu_vs_worker: str  # CPU per record ÷ the worker's
    load1: list[str]  # per run: at resume → at done


@dataclass
class Figures:
    started: str
    finished: str
    machine: str
    multiplier: int
    rounds: int
    records: int
    distinct_events: int
    worker_ingest: str | None
    quix_commit_interval_s: float
    quixstreams: str | None
    rows: list[Row]
    runs: list[Run]
    failures: list[str]


def summarise(runs: list[Run], names: list[str]) -> list[Row]:
    rows: list[Row] = []
    medians: dict[str, tuple[float, float | None]] = {}
    for name in names:
        mine = [r for r in runs if r.contender == name and r.error is None]
        if not mine:
            continue
        rate = statistics.median(r.records_per_s for r in mine)
        cpus = [r.cpu_us_per_record for r in mine if r.cpu_us_per_record is not None]
        medians[name] = (rate, statistics.median(cpus) if cpus else None)
    worker_rate, worker_cpu = medians.get("worker", (math.nan, None))
    for name in names:
        mine = [r for r in runs if r.contender == name and r.error is None]
        if name not in medians:
            continue
        rate, cpu = medians[name]
        rss = [r.peak_rss_mib for r in mine if r.peak_rss_mib is not None]
        rows.append(
            Row(
                contender=name,
                label=CONTENDERS[name],
                runs=len(mine),
                records_per_s=rate,
                records_per_s_runs=[r.records_per_s for r in mine],
                cpu_us_per_record=cpu,
                peak_rss_mib=max(rss) if rss else None,
                vs_worker=times(rate, worker_rate),
                cpu_vs_worker=times(cpu, worker_cpu),
                load1=[f"{r.load1_at_resume:.2f}→{r.load1_at_done:.2f}" for r in mine],
            )
        )
    rows.sort(key=lambda r: -r.records_per_s)
    return rows


def report(f: Figures) -> str:
    lines = [
        f"peers: seed month ×{f.multiplier} = {f.records:,} records ({f.distinct_events:,} distinct events),"
        f" {f.rounds} round(s), started {f.started}, finished {f.finished}",
        f"machine: {f.machine}",
        f"worker ingest: {f.worker_ingest or 'n/a'}; Quix {f.quixstreams or 'n/a'},"
        f" checkpoint every {f.quix_commit_interval_s:g}s",
        "",
        "| contender | records/s (median) | per run | CPU µs/record | peak RSS | vs worker | CPU vs worker |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in f.rows:
        per_run = " / ".join(f"{x:,.0f}" for x in r.records_per_s_runs)
        lines.append(
            f"| {r.label} | {r.records_per_s:,.0f} | {per_run} | {_num(r.cpu_us_per_record, '{:,.0f}')} |"
            f" {_num(r.peak_rss_mib, '{:,.0f} MiB')} | {r.vs_worker} | {r.cpu_vs_worker} |"
        )
    lines += [
        "",
        "| round | contender | at | seconds | records/s | CPU µs/record | cores used | peak RSS | load 1-min |"
        " rest of machine (cores) | check |",
        "|---:|---|---|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for run in f.runs:
        if run.error is not None:
            lines.append(f"| {run.round} | {run.contender} | {run.at} | failed: {run.error[:200]} |||||||")
            continue
        lines.append(
            f"| {run.round} | {run.contender} | {run.at} | {run.seconds:.2f} | {run.records_per_s:,.0f} |"
            f" {_num(run.cpu_us_per_record, '{:,.0f}')} | {_num(run.cores_used, '{:.2f}')} |"
            f" {_num(run.peak_rss_mib, '{:,.0f} MiB')} | {run.load1_at_resume:.2f}→{run.load1_at_done:.2f} |"
            f" {_num(run.others_busy_cores, '{:.2f}')} | {json.dumps(run.check, ensure_ascii=False)} |"
        )
    if f.failures:
        lines += ["", "failures:", *f.failures]
    return "\n".join(lines)


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
