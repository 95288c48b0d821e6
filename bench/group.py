"""The seed month ×10 through one worker and through two in one group, one store each.

Setups (``--only`` picks some, by these names):

- ``alone``: one ``hotline worker`` that opens its own chDB (the demo's shape, no store): the reference
  for what the store costs;
- ``one``: ``hotline store`` and one worker storing through it (``HOTLINE_STORE_URL``);
- ``two``: ``hotline store`` and two workers in one consumer group, each reading half the partitions.

Records: ``bench.peers``' month (the seed month × ``--multiplier``, every copy re-keyed). Each run
has its own topics, group, var dirs and processes. Once every worker reads its share of the
partitions and a warm-up record on every partition is stored, **every process of the run is
stopped (SIGSTOP) while the records are produced**, then resumed together: the time runs from the
resume until the store's ledger (a worker's ``/offsets``) covers every offset produced. CPU time
(``/proc/<pid>/stat``) is read per process for the timed part, and the CPU the whole machine
used meanwhile (``/proc/stat``), so the report says which process was busy and whether the
machine's cores were the limit. ``--rounds`` rounds, setups rotated by one per round; medians.

    python -m bench.group [--multiplier 10] [--rounds 3] [--only one,two] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import signal
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.common import WorkerProcess, broker, free_port, interrupt_on_sigterm, isolated, machine, publish, say
from bench.peers import Month, Offsets, busy_jiffies, for_topics, load1, rekeyed, run_dir
from hotline.client import worker_get
from hotline.deploy.worker import StoreProcess
from hotline.generate import generate
from hotline.replay import Record, behind, produce, stored_progress
from hotline.schemas.events import CallReceived, OrderDispatched, dump_event
from hotline.seed import HEADLINE, TABLE
from hotline.settings import Settings
from hotline.streams.alerts import key_partition
from hotline.streams.deadlines import TZ

SETUPS: dict[str, str] = {
    "alone": "one worker, its own chDB (no store)",
    "one": "one worker through `hotline store`",
    "two": "two workers in one group through `hotline store`",
}
WORKERS = {"alone": 1, "one": 1, "two": 2}
_READING = re.compile(r"batch reader: reading (\d+) partitions")


class BenchStore(WorkerProcess, StoreProcess):
    """``hotline store`` with the figures bench reads from ``/proc`` (CPU, peak RSS)."""


# --------------------------------------------------------------------------- processes


@dataclass
class Group:
    """The processes of one run: the store (if any) and the workers."""

    store: BenchStore | None
    workers: list[WorkerProcess]

    @property
    def processes(self) -> list[WorkerProcess]:
        return ([self.store] if self.store else []) + self.workers

    def signal(self, signum: int) -> None:
        for process in self.processes:
            os.kill(process.pid, signum)

    def cpu(self) -> dict[str, float]:
        return {name: process.cpu_seconds() or 0.0 for name, process in self.named().items()}

    def named(self) -> dict[str, WorkerProcess]:
        names = {"store": self.store} if self.store else {}
        return {**names, **{f"worker {i + 1}": w for i, w in enumerate(self.workers)}}

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def start_group(setup: str, settings: Settings) -> Group:
    store = None
    if setup != "alone":
        store = BenchStore(settings.model_copy(update={"var_dir": settings.var_path / "store"}))
        store.start()
        say(f"store pid {store.pid} answers")
    workers: list[WorkerProcess] = []
    group = Group(store, workers)
    try:
        for i in range(WORKERS[setup]):
            own = {"var_dir": settings.var_path / f"w{i + 1}", "web_port": free_port()} if store else {}
            workers.append(WorkerProcess(settings.model_copy(update=own)))
            workers[-1].start()
            say(f"worker {i + 1} pid {workers[-1].pid} answers")
        wait_for_shares(group, 2 * settings.partitions, timeout=120)
    except BaseException:
        group.stop()
        raise
    return group


def reading(worker: WorkerProcess) -> int:
    """How many source partitions the worker's batch reader reads now (its log's last word on it)."""
    found = _READING.findall(worker.log.read_text("utf-8", "replace")) if worker.log.exists() else []
    return int(found[-1]) if found else 0


def wait_for_shares(group: Group, partitions: int, timeout: float) -> None:
    """Until every worker reads some partitions and together all of them: the group has settled."""
    deadline = time.monotonic() + timeout
    while True:
        shares = [reading(w) for w in group.workers]
        if all(shares) and sum(shares) == partitions:
            say(f"partitions per worker: {shares}")
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the group did not settle within {timeout:.0f}s: partitions per worker {shares}")
        time.sleep(0.2)


def warmup_records(settings: Settings) -> list[Record]:
    """A call and an order on every partition: every worker has stored before it is timed."""
    now = datetime.now(TZ)
    records: list[Record] = []
    for topic, make in ((settings.calls_topic, _call), (settings.orders_topic, _order)):
        keys: dict[int, str] = {}
        n = 0
        while len(keys) < settings.partitions:
            keys.setdefault(key_partition(f"warm-{n}", settings.partitions), f"warm-{n}")
            n += 1
        records += [Record(topic, key.encode(), dump_event(make(key, now))) for key in keys.values()]
    return records


def _call(key: str, now: datetime) -> CallReceived:
    return CallReceived(event_id=f"{key}-call", occurred_at=now, call_id=key, answered=True)


def _order(key: str, now: datetime) -> OrderDispatched:
    return OrderDispatched(
        event_id=f"{key}-order",
        occurred_at=now,
        order_id=key,
        unit_id="yuhu",
        order_type="complaint",
        category="环境保护",
    )


def wait_stored(settings: Settings, offsets: Offsets, timeout: float, poll_s: float) -> float:
    """The monotonic time at which the ledger covers every offset."""
    deadline = time.monotonic() + timeout
    while True:
        missing = behind(offsets, stored_progress(settings))
        now = time.monotonic()
        if not missing:
            return now
        if now > deadline:
            raise TimeoutError(f"not stored after {timeout:.0f}s: {missing}")
        time.sleep(poll_s)


# --------------------------------------------------------------------------- one run


@dataclass
class Run:
    setup: str
    round: int
    at: str
    records: int
    seconds: float
    records_per_s: float
    cpu_us_per_record: float  # every process of the run
    cores: dict[str, float]  # each process's CPU / wall time
    machine_busy_cores: float  # the whole machine (both cores = 2.0)
    load1_at_resume: float
    load1_at_done: float
    stored_events: int | None
    expected_events: int  # the month's distinct events and the warm-up's
    check: dict[str, object] = field(default_factory=dict)


def one_run(setup: str, round_no: int, base: Settings, month: Month, args: argparse.Namespace) -> Run:
    settings = isolated(base, f"group-{setup}", session_timeout_s=args.session_timeout_s)
    if setup != "alone":
        port = free_port()
        settings = settings.model_copy(
            update={"store_token": secrets.token_hex(16), "store_port": port, "store_url": f"http://127.0.0.1:{port}"}
        )
    records = for_topics(month, settings)
    with run_dir(settings, args.keep):
        say(f"--- round {round_no}: {setup} (app {settings.app_id})")
        group = start_group(setup, settings)
        first = group.workers[0].settings
        try:
            wait_stored(first, asyncio.run(produce(warmup_records(settings), settings)), 120, args.poll_s)
            say(f"{setup}: warm; stopping its {len(group.processes)} processes while {len(records):,} are produced")
            group.signal(signal.SIGSTOP)
            try:
                last = asyncio.run(produce(records, settings))
                cpu0, busy0, load0 = group.cpu(), busy_jiffies(), load1()
                at = datetime.now(TZ).isoformat(timespec="seconds")
                resumed = time.monotonic()
            finally:
                group.signal(signal.SIGCONT)
            done = wait_stored(first, last, args.timeout_s, args.poll_s)
            cpu1, busy1, load_done = group.cpu(), busy_jiffies(), load1()
            wall = time.monotonic() - resumed
            counts = worker_get(first, "/status").get("counts", {})
            shares = {f"worker {i + 1}": reading(w) for i, w in enumerate(group.workers)}
        finally:
            group.stop()
    seconds = done - resumed
    cpu = {name: cpu1[name] - cpu0[name] for name in cpu0}
    n = len(records)
    run = Run(
        setup=setup,
        round=round_no,
        at=at,
        records=n,
        seconds=seconds,
        records_per_s=n / seconds,
        cpu_us_per_record=sum(cpu.values()) / n * 1e6,
        cores={name: c / wall for name, c in cpu.items()},
        machine_busy_cores=(busy1[0] - busy0[0]) / os.sysconf("SC_CLK_TCK") / wall,
        load1_at_resume=load0,
        load1_at_done=load_done,
        stored_events=int(counts["events"]) if "events" in counts else None,
        expected_events=month.distinct_events + len(warmup_records(settings)),
        check={"partitions": shares},
    )
    cores = ", ".join(f"{name} {c:.2f}" for name, c in run.cores.items())
    say(
        f"{setup}: {n:,} records in {seconds:.2f}s = {run.records_per_s:,.0f}/s,"
        f" CPU {run.cpu_us_per_record:.0f} µs/record; cores: {cores};"
        f" machine {run.machine_busy_cores:.2f} of {os.cpu_count()}"
    )
    return run


# --------------------------------------------------------------------------- report


@dataclass
class Figures:
    started: str
    finished: str
    machine: str
    multiplier: int
    records: int
    distinct_events: int
    medians: dict[str, float]
    two_vs_one: float | None
    one_vs_alone: float | None
    runs: list[Run]
    failures: list[str]


def ratio(medians: dict[str, float], a: str, b: str) -> float | None:
    return medians[a] / medians[b] if a in medians and b in medians else None


def report(f: Figures) -> str:
    def x(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}×"

    lines = [
        f"group: seed month ×{f.multiplier} = {f.records:,} records ({f.distinct_events:,} distinct events),"
        f" started {f.started}, finished {f.finished}",
        f"machine: {f.machine}",
        "",
        f"**two workers ÷ one worker (both through the store): {x(f.two_vs_one)}**;"
        f" one worker through the store ÷ alone: {x(f.one_vs_alone)}",
        "",
        "| setup | records/s (median) | per run | CPU µs/record (all processes) | cores per process (median run) |",
        "|---|---:|---|---:|---|",
    ]
    for setup, label in SETUPS.items():
        mine = [r for r in f.runs if r.setup == setup]
        if not mine:
            continue
        middle = sorted(mine, key=lambda r: r.records_per_s)[len(mine) // 2]
        cores = ", ".join(f"{name} {c:.2f}" for name, c in middle.cores.items())
        lines.append(
            f"| {label} | {f.medians[setup]:,.0f} | {' / '.join(f'{r.records_per_s:,.0f}' for r in mine)} |"
            f" {statistics.median(r.cpu_us_per_record for r in mine):.0f} |"
            f" {cores}; machine {middle.machine_busy_cores:.2f} |"
        )
    lines += [
        "",
        "| round | setup | at | seconds | records/s | CPU µs/record | machine busy (cores) | load 1-min |"
        " events stored (expected) |",
        "|---:|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in f.runs:
        lines.append(
            f"| {r.round} | {r.setup} | {r.at} | {r.seconds:.2f} | {r.records_per_s:,.0f} | {r.cpu_us_per_record:.0f} |"
            f" {r.machine_busy_cores:.2f} | {r.load1_at_resume:.2f}→{r.load1_at_done:.2f} |"
            f" {r.stored_events} ({r.expected_events}) |"
        )
    if f.failures:
        lines += ["", "failures:", *f.failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.group", description=__doc__.splitlines()[0])
    parser.add_argument("--multiplier", type=int, default=10, help="copies of the seed month (10: 321,940 records)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help=f"comma-separated setups, of: {','.join(SETUPS)}")
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--seed", type=int, default=2019, help="generator seed")
    parser.add_argument("--timeout-s", type=float, default=1200.0, help="per run, from the resume")
    parser.add_argument("--poll-s", type=float, default=0.2, help="how often the ledger is read")
    parser.add_argument("--session-timeout-s", type=float, default=60.0, help="above the time records take to produce")
    parser.add_argument("--keep", action="store_true", help="keep each run's var dirs (logs, chDB)")
    args = parser.parse_args(argv)
    names = list(SETUPS) if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    if unknown := [n for n in names if n not in SETUPS]:
        parser.error(f"unknown setups {unknown}; choose from {list(SETUPS)}")
    interrupt_on_sigterm()
    base = broker()
    started = datetime.now(TZ).isoformat(timespec="seconds")
    month = rekeyed(generate(TABLE, HEADLINE, seed=args.seed), args.multiplier)
    say(f"{len(month.records):,} records ({month.distinct_events:,} distinct events)")
    runs: list[Run] = []
    failures: list[str] = []
    try:
        for r in range(args.rounds):
            for setup in names[r % len(names) :] + names[: r % len(names)]:
                try:
                    runs.append(one_run(setup, r + 1, base, month, args))
                except KeyboardInterrupt:
                    raise
                except Exception as exc:
                    say(f"{setup}, round {r + 1} failed: {exc!r}")
                    failures.append(f"{setup}, round {r + 1}: {exc!r}")
    except KeyboardInterrupt:
        say("interrupted: processes stopped and topics deleted")
        return 130
    medians = {s: statistics.median(r.records_per_s for r in runs if r.setup == s) for s in {r.setup for r in runs}}
    figures = Figures(
        started=started,
        finished=datetime.now(TZ).isoformat(timespec="seconds"),
        machine=machine(),
        multiplier=args.multiplier,
        records=len(month.records),
        distinct_events=month.distinct_events,
        medians=medians,
        two_vs_one=ratio(medians, "two", "one"),
        one_vs_alone=ratio(medians, "one", "alone"),
        runs=runs,
        failures=failures,
    )
    publish(report(figures), figures, args.json)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
