"""What ``bench.peers`` measured: one contender's run, the medians per contender, and the report."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from bench.peers_contenders import CONTENDERS


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


def times(value: float | None, baseline: float | None) -> str:
    """``value / baseline`` with two decimals (``0.57x``), ``n/a`` without both."""
    if value is None or baseline is None or not math.isfinite(value) or not math.isfinite(baseline) or baseline <= 0:
        return "n/a"
    return f"{value / baseline:.3g}x" if value / baseline < 0.1 else f"{value / baseline:,.2f}x"


def shown(value: float | None, fmt: str) -> str:
    """``value`` as ``fmt`` says, or ``n/a`` for a figure that could not be read (no /proc entry, a failed run)."""
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
            f"| {r.label} | {r.records_per_s:,.0f} | {per_run} | {shown(r.cpu_us_per_record, '{:,.0f}')} |"
            f" {shown(r.peak_rss_mib, '{:,.0f} MiB')} | {r.vs_worker} | {r.cpu_vs_worker} |"
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
            f" {shown(run.cpu_us_per_record, '{:,.0f}')} | {shown(run.cores_used, '{:.2f}')} |"
            f" {shown(run.peak_rss_mib, '{:,.0f} MiB')} | {run.load1_at_resume:.2f}→{run.load1_at_done:.2f} |"
            f" {shown(run.others_busy_cores, '{:.2f}')} | {json.dumps(run.check, ensure_ascii=False)} |"
        )
    if f.failures:
        lines += ["", "failures:", *f.failures]
    return "\n".join(lines)
