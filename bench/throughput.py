"""Pipeline throughput on the generated seed month, against a raw consumer of the same records.

The seed month (``hotline.generate.generate`` on ``seed/xiangtan-2019-11-*``, ~32k
records) is written with ``write_jsonl``, read back with ``read_records`` and
replayed with ``produce`` into the topics of one isolated worker process (own
topics, app id, var dir, port). Pipeline rate: records / (time from the start of
``produce`` until ``wait_until_sunk`` returns, i.e. ClickHouse holds every offset).
``--runs`` repeats this with fresh topics and a fresh worker each time; medians are reported.

Baseline, in the same run: a bare aiokafka ``getmany`` loop reading the same
records from the same topics (fresh assignment, from the beginning, to the offsets
produced), ``--baseline-runs`` times after each pipeline run, median taken. A second reference
adds ``parse_event`` (the contract's pydantic validation) to that loop, to show how
much of the gap is decoding. Also: the worker's peak RSS (``VmHWM``) and CPU time.

    python -m bench.throughput [--runs 3] [--baseline-runs 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.common import (
    BENCH_VAR,
    WorkerProcess,
    broker,
    interrupt_on_sigterm,
    isolated,
    machine,
    publish,
    ratio,
    run_dir,
    say,
    worker_process,
)
from hotline.client import worker_get
from hotline.generate import generate, write_jsonl
from hotline.replay import Record, produce, read_records, wait_until_sunk
from hotline.schemas.events import CallReceived, OrderDispatched, dump_event, parse_event
from hotline.seed import HEADLINE, TABLE
from hotline.settings import Settings
from hotline.streams.deadlines import TZ


async def consume_all(settings: Settings, last: dict[tuple[str, int], int], decode: bool) -> tuple[int, float]:
    """Read every produced offset with a bare ``getmany`` loop; (records, seconds from the first fetch)."""
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.kafka_client_options())
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for (t, p) in sorted(last)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = {TopicPartition(t, p): o for (t, p), o in last.items()}
        count = 0
        started = time.perf_counter()
        while remaining:
            batch = await consumer.getmany(timeout_ms=100)
            for tp, records in batch.items():
                if decode:
                    for r in records:
                        parse_event(r.value or b"")
                count += len(records)
                if records and tp in remaining and records[-1].offset >= remaining[tp]:
                    del remaining[tp]
        return count, time.perf_counter() - started
    finally:
        await consumer.stop()


@dataclass
class RunFigures:
    """One pipeline run (fresh topics, group, chDB and worker) and the baselines read from its topics."""

    warmup_s: float | None  # worker answered → 2 warm-up records sunk (group join, sink open)
    produce_s: float
    pipeline_s: float
    pipeline_eps: float
    baseline_eps: float  # median of this run's getmany runs
    baseline_runs_eps: list[float]
    decode_eps: float
    ratio: str
    worker_peak_rss_mib: float | None
    worker_cpu_s: float | None
    sink_s: float | None  # time the worker spent in ClickHouse batch writes (its /metrics histogram)
    sink_batches: int | None
    sunk_counts: dict[str, int]


@dataclass
class Figures:
    records: int
    batch_size: int
    machine: str
    started: str
    generate_s: float
    runs: list[RunFigures]
    pipeline_eps: float  # medians over the runs
    baseline_eps: float
    decode_eps: float
    ratio_pipeline_to_baseline: str
    ratio_decode_to_baseline: str
    worker_peak_rss_mib: float | None  # the largest of the runs
    worker_cpu_us_per_record: float | None


def warmup_records(settings: Settings) -> list[Record]:
    """One call and one order: what every contender gets before it is timed."""
    now = datetime.now(TZ)
    call = CallReceived(event_id="warmup-call", occurred_at=now, call_id="warmup", answered=True)
    order = OrderDispatched(
        event_id="warmup-order",
        occurred_at=now,
        order_id="warmup",
        unit_id="yuhu",
        order_type="complaint",
        category="环境保护",
    )
    return [
        Record(settings.calls_topic, b"warmup", dump_event(call)),
        Record(settings.orders_topic, b"warmup", dump_event(order)),
    ]


def warm_up(settings: Settings) -> float:
    """Sink one call and one order first, so the timing starts with the group joined and the sink open."""
    t0 = time.perf_counter()
    wait_until_sunk(asyncio.run(produce(warmup_records(settings), settings)), settings, timeout=120)
    return time.perf_counter() - t0


def one_run(settings: Settings, worker: WorkerProcess, records: list[Record], args: argparse.Namespace) -> RunFigures:
    warmup_s = warm_up(settings) if args.warmup else None
    if warmup_s is not None:
        say(f"warm-up: 2 records sunk {warmup_s:.1f}s after the worker answered")
    cpu0 = worker.cpu_seconds()
    before = worker.metrics()
    last_say = [0.0]

    def progress(done: int, total: int) -> None:
        if time.monotonic() - last_say[0] >= args.progress_s:
            last_say[0] = time.monotonic()
            say(f"sunk {done}/{total} records")

    say(f"replaying {len(records)} records into {settings.calls_topic} / {settings.orders_topic} ...")
    t0 = time.perf_counter()
    last = asyncio.run(produce(records, settings))
    produce_s = time.perf_counter() - t0
    say(f"produced in {produce_s:.1f}s; waiting until ClickHouse holds every offset ...")
    wait_until_sunk(last, settings, timeout=args.timeout_s, progress=progress)
    pipeline_s = time.perf_counter() - t0
    cpu1 = worker.cpu_seconds()
    rss = worker.status_kib("VmHWM")
    status = _status(worker)
    after = worker.metrics()
    sink_s = _delta(before, after, "hotline_sink_batch_seconds_sum")
    batches = _delta(before, after, "hotline_sink_batch_seconds_count")
    say(f"pipeline: {len(records)} records in {pipeline_s:.1f}s = {len(records) / pipeline_s:,.0f}/s")

    runs: list[float] = []
    for i in range(args.baseline_runs):
        n, seconds = asyncio.run(consume_all(settings, last, decode=False))
        runs.append(n / seconds)
        say(f"baseline getmany {i + 1}/{args.baseline_runs}: {n} records in {seconds:.3f}s = {n / seconds:,.0f}/s")
    n, seconds = asyncio.run(consume_all(settings, last, decode=True))
    decode_eps = n / seconds
    say(f"getmany + parse_event: {n} records in {seconds:.3f}s = {decode_eps:,.0f}/s")
    baseline = statistics.median(runs)
    pipeline_eps = len(records) / pipeline_s
    return RunFigures(
        warmup_s=warmup_s,
        produce_s=produce_s,
        pipeline_s=pipeline_s,
        pipeline_eps=pipeline_eps,
        baseline_eps=baseline,
        baseline_runs_eps=runs,
        decode_eps=decode_eps,
        ratio=ratio(pipeline_eps, baseline),
        worker_peak_rss_mib=rss / 1024 if rss else None,
        worker_cpu_s=cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None,
        sink_s=sink_s,
        sink_batches=int(batches) if batches is not None else None,
        sunk_counts=status,
    )


def _delta(before: dict[str, float], after: dict[str, float], name: str) -> float | None:
    return after[name] - before.get(name, 0.0) if name in after else None


def _status(worker: WorkerProcess) -> dict[str, int]:
    counts = worker_get(worker.settings, "/status").get("counts", {})
    return {str(k): int(v) for k, v in counts.items()}


def summarise(records: int, started: str, generate_s: float, batch_size: int, runs: list[RunFigures]) -> Figures:
    pipeline = statistics.median(r.pipeline_eps for r in runs)
    baseline = statistics.median(r.baseline_eps for r in runs)
    decode = statistics.median(r.decode_eps for r in runs)
    rss = [r.worker_peak_rss_mib for r in runs if r.worker_peak_rss_mib is not None]
    cpu = [r.worker_cpu_s / records * 1e6 for r in runs if r.worker_cpu_s is not None]
    return Figures(
        records=records,
        batch_size=batch_size,
        machine=machine(),
        started=started,
        generate_s=generate_s,
        runs=runs,
        pipeline_eps=pipeline,
        baseline_eps=baseline,
        decode_eps=decode,
        ratio_pipeline_to_baseline=ratio(pipeline, baseline),
        ratio_decode_to_baseline=ratio(decode, baseline),
        worker_peak_rss_mib=max(rss) if rss else None,
        worker_cpu_us_per_record=statistics.median(cpu) if cpu else None,
    )


def report(f: Figures) -> str:
    lines = [
        f"throughput: seed month, {f.records} records, {len(f.runs)} runs, worker batch size {f.batch_size},"
        f" {'after a warm-up' if f.runs[0].warmup_s is not None else 'cold (no warm-up)'} (started {f.started})",
        f"machine: {f.machine}",
        f"month generated in {f.generate_s:.1f}s",
        "",
        "run  produce s  pipeline s  pipeline/s  getmany/s (median)  ratio            worker CPU s  peak RSS"
        "   in ClickHouse writes",
    ]
    for i, r in enumerate(f.runs, 1):
        cpu = f"{r.worker_cpu_s:.1f}" if r.worker_cpu_s is not None else "n/a"
        rss = f"{r.worker_peak_rss_mib:,.0f} MiB" if r.worker_peak_rss_mib is not None else "n/a"
        sink = f"{r.sink_s:.1f}s in {r.sink_batches} batches" if r.sink_s is not None else "n/a"
        lines.append(
            f"{i:>3}  {r.produce_s:>9.2f}  {r.pipeline_s:>10.2f}  {r.pipeline_eps:>10,.0f}  {r.baseline_eps:>19,.0f}"
            f"  {r.ratio:<16} {cpu:>12}  {rss:>8}   {sink}"
        )
    lines += [
        "",
        f"{'median over runs':40} {'events/s':>10}  ratio to baseline",
        f"{'pipeline (produce → sunk in ClickHouse)':40} {f.pipeline_eps:>10,.0f}  {f.ratio_pipeline_to_baseline}",
        f"{'baseline: raw aiokafka getmany':40} {f.baseline_eps:>10,.0f}  1.0x",
        f"{'reference: getmany + parse_event':40} {f.decode_eps:>10,.0f}  {f.ratio_decode_to_baseline}",
        "",
    ]
    if f.worker_cpu_us_per_record is not None:
        lines.append(f"worker CPU per record: {f.worker_cpu_us_per_record:,.0f} µs (median over runs)")
    if f.worker_peak_rss_mib is not None:
        lines.append(f"worker peak RSS (VmHWM): {f.worker_peak_rss_mib:,.0f} MiB (largest of the runs)")
    lines.append(f"sunk (last run): {json.dumps(f.runs[-1].sunk_counts, ensure_ascii=False)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--headline", type=Path, default=HEADLINE)
    parser.add_argument("--seed", type=int, default=2019, help="generator seed")
    parser.add_argument("--runs", type=int, default=3, help="pipeline runs, each with fresh topics and worker")
    parser.add_argument("--baseline-runs", type=int, default=5, help="raw getmany runs per pipeline run (median)")
    parser.add_argument("--batch-size", type=int, help="HOTLINE_BATCH_SIZE of the worker (default: the settings')")
    parser.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="time from the worker's first answer (includes joining the group) instead of after a 2-record warm-up",
    )
    parser.add_argument("--timeout-s", type=float, default=900.0)
    parser.add_argument("--progress-s", type=float, default=5.0)
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep each run's var dir (worker.log, chDB)")
    args = parser.parse_args(argv)
    if args.baseline_runs < 1 or args.runs < 1:
        parser.error("--runs and --baseline-runs must be >= 1")
    interrupt_on_sigterm()
    base = broker()
    started = datetime.now(TZ).isoformat(timespec="seconds")
    runs: list[RunFigures] = []
    try:
        say("generating the seed month ...")
        t0 = time.perf_counter()
        month = generate(args.table, args.headline, seed=args.seed)
        generate_s = time.perf_counter() - t0
        BENCH_VAR.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="month-", dir=BENCH_VAR) as tmp:
            path = Path(tmp) / "month.jsonl"
            lines = write_jsonl(month, path)
            say(f"{lines} records in {generate_s:.1f}s → {path}")
            for i in range(args.runs):
                say(f"--- run {i + 1}/{args.runs}")
                overrides = {"batch_size": args.batch_size} if args.batch_size else {}
                settings = isolated(base, "throughput", **overrides)
                records = list(read_records(path, settings))
                with run_dir(settings, args.keep), worker_process(settings) as worker:
                    runs.append(one_run(settings, worker, records, args))
    except KeyboardInterrupt:
        say("interrupted: worker and topics cleaned up")
        return 130
    figures = summarise(len(month), started, generate_s, args.batch_size or base.batch_size, runs)
    publish(report(figures), figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
