"""History: does reading cost grow with it? 1, 12 and 36 months imported, read over HTTP.

    python -m bench.history [--per-month 300000] [--months 1,12,36] [--json out.json]

Synthetic months (orders with dispatches, returns and re-dispatches, completions, visits,
supervision; calls) ending with the current one are loaded with ``hotline import`` into one
store, cumulatively: the newest month first, then the eleven before it, then the 24 before
those. After each step a worker process serves the store and the run times, each as the
median of several requests once reads are steady (three in a row within 15 %: the first read
of each part, and reads while ClickHouse merges the parts the import just wrote on the same two
cores, are slower; the run prints them):

* the bulletin of the newest month over HTTP (``/bulletin/YYYY-MM?format=json``),
* a year's bulletin over HTTP: the twelve whole months ending with the newest
  (``/bulletin/YYYY-MM-01..YYYY-MM-DD?format=json``, the reads of a calendar year's ``/bulletin/YYYY``),
* the screen's snapshot over HTTP (``/monitor/snapshot``, today's live figures),

and reports each against the one-month figure of the same run, the year also against the month
of the same step. The import rate (the CLI's
own count, records per second of its run) is compared with a bare clickhouse-connect insert of
the same events' rows into an empty events table of the same shape, timed in a separate
process on the same machine in the same run: what ClickHouse alone costs for the rows.

Targets: at 36 months at most 1.3 times the one-month times, the bulletin under
100 ms and the snapshot under 50 ms, the import at least 50,000 events/s; a year's bulletin
(twelve months of 300,000 events) under 500 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import REPO, broker, isolated, machine, run_dir, say, worker_process
from hotline.client import worker_get
from hotline.deploy.worker import settings_env
from hotline.schemas.registry import default_registry
from hotline.settings import Settings
from hotline.streams.deadlines import TZ

REQUESTS = 7  # per reading: the median is reported
CATEGORIES = ("环境保护", "住建房管", "交通运输", "市场监管", "社会保障", "教育", "卫生健康", "城市管理")
TYPES = ("complaint", "help", "suggestion", "consultation", "other")


# --------------------------------------------------------------------------- synthetic months


def months_back(count: int, newest: date) -> list[date]:
    """The first days of ``count`` months ending with ``newest``'s, newest first."""
    out, day = [], newest.replace(day=1)
    for _ in range(count):
        out.append(day)
        day = (day - timedelta(days=1)).replace(day=1)
    return out


def _at(month: date, day: int, minute: int) -> str:
    return datetime(month.year, month.month, day, 8, 0, tzinfo=TZ).__add__(timedelta(minutes=minute)).isoformat()


def write_month(month: date, per_month: int, path: Path, seed: int = 12345) -> int:
    """About ``per_month`` contract events of one month: its orders start and end within it."""
    rng = random.Random(seed + month.year * 100 + month.month)
    units = [u.id for u in default_registry()]
    tag = f"{month.year}{month.month:02d}"
    lines: list[str] = []

    def add(kind: str, n: int, at: str, **fields: Any) -> None:
        body = {"event_id": f"h{tag}-{n}-{len(lines)}", "type": kind, "occurred_at": at, "schema_version": 1, **fields}
        lines.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")))

    n = 0
    while len(lines) < per_month:
        n += 1
        day, minute = rng.randint(1, 20), rng.randint(0, 600)
        unit = rng.choice(units)
        if rng.random() < 0.3:  # a call answered directly
            call = f"C{tag}-{n}"
            add("call.received", n, _at(month, day, minute), call_id=call, answered=rng.random() < 0.99)
            add(
                "call.handled",
                n,
                _at(month, day, minute + 5),
                call_id=call,
                valid=True,
                call_type=rng.choice(TYPES),
                category=rng.choice(CATEGORIES),
                resolved_online=rng.random() < 0.6,
            )
            continue
        order = f"O{tag}-{n}"
        kind = rng.choice(TYPES)
        add(
            "order.dispatched",
            n,
            _at(month, day, minute),
            order_id=order,
            unit_id=unit,
            order_type=kind,
            category=rng.choice(CATEGORIES),
        )
        if rng.random() < 0.08:
            add("order.returned", n, _at(month, day, minute + 60), order_id=order, unit_id=unit, reason="非本单位职责")
            unit = rng.choice(units)
            add(
                "order.dispatched",
                n,
                _at(month, day, minute + 90),
                order_id=order,
                unit_id=unit,
                order_type=kind,
                category=rng.choice(CATEGORIES),
            )
        done = day + rng.randint(1, 7)
        add("order.completed", n, _at(month, done, minute), order_id=order, unit_id=unit)
        if rng.random() < 0.7:
            outcome = rng.choice(("satisfied", "satisfied", "unsatisfied", "unreached"))
            add(
                "order.visited",
                n,
                _at(month, done, minute + 120),
                order_id=order,
                unit_id=unit,
                outcome=outcome,
                citizen_replied=rng.random() < 0.9,
            )
        if rng.random() < 0.03:
            method = rng.choice(("phone", "written"))
            add("order.supervised", n, _at(month, done, minute + 200), order_id=order, unit_id=unit, method=method)
            add(
                "order.supervision_replied",
                n,
                _at(month, done, minute + 300),
                order_id=order,
                unit_id=unit,
                method=method,
                satisfied=rng.random() < 0.5,
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


# --------------------------------------------------------------------------- measurements


def cli(settings: Settings, *args: str) -> str:
    """``python -m hotline …`` with the run's settings; its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "hotline", *args],
        cwd=REPO,
        env=settings_env(settings),
        capture_output=True,
        timeout=7200,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace")[-2000:])
    return done.stderr.decode(errors="replace")


def import_rate(settings: Settings, path: Path) -> float:
    out = cli(settings, "import", str(path))
    found = re.search(r"\(([\d,]+)/s\)", out)
    if not found:
        raise RuntimeError(f"no rate in the import's output: {out[-500:]}")
    return float(found.group(1).replace(",", ""))


def bare_insert_rate(path: Path, work: Path) -> float:
    """A bare clickhouse-connect insert of the file's events as rows of an events table (own process)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.history", "--bare-insert", str(path), str(work)],
        cwd=REPO,
        capture_output=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace")[-2000:])
    return float(done.stdout.decode().strip())


def _empty(kind: str) -> Any:
    """What a column holds for a field the event does not carry."""
    if kind.startswith("Nullable"):
        return None
    if kind.startswith("Array"):
        return []
    if "String" in kind:
        return ""
    return False if kind == "Bool" else 0


def _bare_insert(path: Path, work: Path) -> float:
    import clickhouse_connect

    from hotline.sinks.tables import EVENTS

    rows: list[list[Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        ev = json.loads(line)
        ev["occurred_at"] = datetime.fromisoformat(ev["occurred_at"])
        ev["payload"] = line
        ev.update(source_topic="bare", source_partition=0, source_offset=len(rows), due_computed=False)
        rows.append([ev.get(c, _empty(t)) for c, t in EVENTS.columns])
    client = clickhouse_connect.get_client(dsn=f"chdb://{work}")
    client.command("CREATE DATABASE IF NOT EXISTS bare")
    client.command(EVENTS.ddl().replace("{db}", "bare"))
    started = time.perf_counter()
    for start in range(0, len(rows), 20_000):
        client.insert(
            "bare.events", rows[start : start + 20_000], column_names=EVENTS.names, column_type_names=EVENTS.types
        )
    return len(rows) / (time.perf_counter() - started)


def median_ms(settings: Settings, path: str) -> float:
    times = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        worker_get(settings, path, timeout=120)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


@dataclass
class Step:
    months: int
    events: int
    import_per_s: float
    bare_insert_per_s: float
    bulletin_ms: float
    snapshot_ms: float
    year_ms: float = 0.0  # the twelve months ending with the newest, read as one bulletin


@dataclass
class Figures:
    per_month: int
    machine: str
    steps: list[Step] = field(default_factory=list)


SETTLE_S = 180.0  # at most, waiting for reads to settle after an import
STEADY = 3  # consecutive reads within STEADY_SPREAD of each other: ClickHouse has settled
STEADY_SPREAD = 0.15


def settle(settings: Settings, path: str) -> list[float]:
    """Read until reading is steady; the times read meanwhile (the first read of each part, then
    reads while ClickHouse merges the parts an import just wrote, on the same two cores)."""
    times: list[float] = []
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        started = time.perf_counter()
        worker_get(settings, path, timeout=300)
        times.append((time.perf_counter() - started) * 1000)
        last = times[-STEADY:]
        if len(last) == STEADY and max(last) <= min(last) * (1 + STEADY_SPREAD):
            break
    return times


def year_path(newest: date) -> str:
    """The bulletin of the twelve whole months ending with ``newest``'s: a year's reads, whatever the date."""
    first = months_back(12, newest)[-1]
    last = (newest.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return f"/bulletin/{first.isoformat()}..{last.isoformat()}?format=json"


def read_times(settings: Settings, newest: date) -> tuple[float, float, float]:
    """The month's bulletin's, the snapshot's and the year's bulletin's median times once reads are
    steady (see :func:`settle`)."""
    month = f"{newest.year}-{newest.month:02d}"
    bulletin = f"/bulletin/{month}?format=json"
    with worker_process(settings):
        warming = settle(settings, bulletin)
        say(f"bulletin reads until steady: {', '.join(f'{t:.0f}' for t in warming)} ms")
        settle(settings, "/monitor/snapshot")
        month_ms, snapshot_ms = median_ms(settings, bulletin), median_ms(settings, "/monitor/snapshot")
        warming = settle(settings, year_path(newest))
        say(f"year bulletin reads until steady: {', '.join(f'{t:.0f}' for t in warming)} ms")
        return month_ms, snapshot_ms, median_ms(settings, year_path(newest))


def report(figures: Figures) -> str:
    first = figures.steps[0]
    lines = [
        f"# bench.history: {figures.per_month:,} events a month ({figures.machine})",
        "",
        "| months | events | import /s | bare insert /s | import ÷ bare "
        "| bulletin ms | × 1 month | snapshot ms | × 1 month | year bulletin ms | year ÷ month |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in figures.steps:
        lines.append(
            f"| {s.months} | {s.events:,} | {s.import_per_s:,.0f} | {s.bare_insert_per_s:,.0f} | "
            f"{s.import_per_s / s.bare_insert_per_s:.2f} | {s.bulletin_ms:.1f} | "
            f"{s.bulletin_ms / first.bulletin_ms:.2f} | "
            f"{s.snapshot_ms:.1f} | {s.snapshot_ms / first.snapshot_ms:.2f} | "
            f"{s.year_ms:.1f} | {s.year_ms / s.bulletin_ms:.2f} |"
        )
    return "\n".join(lines)


def run(per_month: int, sizes: list[int], keep: bool) -> Figures:
    base = broker()
    settings = isolated(base, "history", access_tokens={"bench-office": "*"}, api_token="bench-office")
    figures = Figures(per_month, machine())
    newest = datetime.now(TZ).date()
    months = months_back(max(sizes), newest)
    with run_dir(settings, keep):
        work = settings.var_path / "files"
        work.mkdir(parents=True, exist_ok=True)
        loaded = 0
        events = 0
        for size in sizes:
            rates: list[float] = []
            bare: list[float] = []
            for month in months[loaded:size]:
                path = work / f"{month:%Y-%m}.jsonl"
                count = write_month(month, per_month, path)
                say(f"importing {path.name} ({count:,} events)")
                rates.append(import_rate(settings, path))
                if not bare:  # one bare insert per step: the baseline of the same machine and run
                    bare.append(bare_insert_rate(path, work / f"bare-{month:%Y-%m}"))
                events += count
                path.unlink()
            loaded = size
            bulletin_ms, snapshot_ms, year_ms = read_times(settings, newest)
            step = Step(
                size, events, statistics.median(rates), statistics.median(bare), bulletin_ms, snapshot_ms, year_ms
            )
            figures.steps.append(step)
            say(f"{size} months: {step}")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__.splitlines()[0])
    parser.add_argument("--per-month", type=int, default=300_000)
    parser.add_argument("--months", default="1,12,36", help="cumulative sizes, ascending")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the run's directory")
    parser.add_argument("--bare-insert", nargs=2, metavar=("FILE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_insert:
        print(_bare_insert(Path(args.bare_insert[0]), Path(args.bare_insert[1])))
        return 0
    figures = run(args.per_month, sorted(int(m) for m in args.months.split(",")), args.keep)
    text = report(figures)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(figures, default=lambda o: o.__dict__, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
