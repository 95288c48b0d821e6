"""What both benchmarks share: the broker, an isolated worker process, cleanup, statistics.

An isolated run has its own topics, consumer group (app id), var dir (chDB, worker
log) and HTTP port on the shared local broker, as the integration tests have (the
fixtures are re-done here: benchmarks do not import from ``tests/``); the worker is
``hotline.deploy.worker``'s child process, with figures read from ``/proc`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from hotline.client import worker_get
from hotline.deploy import kafka
from hotline.deploy import worker as deploy_worker
from hotline.replay import behind, stored_progress
from hotline.settings import Settings

REPO = Path(__file__).resolve().parents[1]
BENCH_VAR = REPO / "var" / "bench"

_T0 = time.monotonic()


def say(message: str) -> None:
    """Progress on stderr, so stdout keeps only the results."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def machine() -> str:
    """One line about where the figures come from."""
    load = os.getloadavg()
    python = sys.version.split()[0]
    return f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, Python {python}"


# --------------------------------------------------------------------------- signals


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_sigterm() -> None:
    """SIGTERM (and SIGHUP) behave like Ctrl-C, so every ``finally`` runs and the worker is stopped."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupt)


# --------------------------------------------------------------------------- broker and settings


def broker(settings: Settings | None = None) -> Settings:
    """The configured broker, started first if it is the local one (idempotent)."""
    settings = settings or Settings()
    say(f"kafka: {kafka.start(settings)}")
    return settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def isolated(base: Settings, label: str, **overrides: Any) -> Settings:
    """Settings of one benchmark run: fresh topics, group, var dir and port on ``base``'s broker."""
    tag = f"{label}-{uuid.uuid4().hex[:8]}"
    update: dict[str, Any] = {
        "var_dir": BENCH_VAR / tag,
        "app_id": f"bench-{tag}",
        "calls_topic": f"bench-{tag}.calls",
        "orders_topic": f"bench-{tag}.orders",
        "alerts_topic": f"bench-{tag}.alerts",
        "deadletter_topic": f"bench-{tag}.deadletter",
        "web_port": free_port(),
    }
    update.update(overrides)
    return base.model_copy(update=update)


def create_topics(settings: Settings) -> None:
    kafka.ensure_topics(settings, kafka.pipeline_topics(settings))


def run_prefixes(settings: Settings) -> tuple[str, ...]:
    """The names of a run's topics start so: Faust's internal ones with the app id, ours with the run's tag."""
    return (settings.app_id, settings.calls_topic.rsplit(".", 1)[0] + ".")


def delete_topics(settings: Settings) -> list[str]:
    """The run's topics, and Faust's internal ones (``<app_id>-…``); nothing else."""
    try:
        return kafka.delete_topics(settings, run_prefixes(settings))
    except Exception as exc:  # cleanup is best effort: say so, don't hide the run's own error
        say(f"could not delete the run's topics: {exc!r}")
        return []


async def wait_sunk_async(
    expected: dict[tuple[str, int], int], settings: Settings, timeout: float, poll_s: float = 0.5
) -> None:
    """:func:`hotline.replay.wait_until_sunk` without blocking the event loop (nor its shutdown on Ctrl-C)."""
    deadline = time.monotonic() + timeout
    while True:
        missing = behind(expected, await asyncio.to_thread(stored_progress, settings))
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker has not sunk everything after {timeout:.0f}s: {missing}")
        await asyncio.sleep(poll_s)


# --------------------------------------------------------------------------- worker process


class WorkerProcess(deploy_worker.WorkerProcess):
    """``hotline.deploy.worker.WorkerProcess`` (``python -m hotline worker``, log in ``<var>/worker.log``) plus what
    benchmarks read from it: memory and CPU from ``/proc``, Prometheus samples from ``/metrics``."""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def status_kib(self, field: str) -> int | None:
        """A ``/proc/<pid>/status`` figure in KiB (``VmHWM`` peak RSS, ``VmRSS``), None if unavailable."""
        if not self.alive():
            return None
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
        return int(found.group(1)) if found else None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the worker so far (``/proc/<pid>/stat``)."""
        if not self.alive():
            return None
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def metrics(self) -> dict[str, float]:
        """The worker's Prometheus samples without labels, plus ``name{labels}`` keys."""
        text = worker_get(self.settings, "/metrics")
        body = text.decode() if isinstance(text, bytes) else str(text)
        samples: dict[str, float] = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    samples[name] = float(value)
        return samples


@contextlib.contextmanager
def run_dir(settings: Settings, keep: bool) -> Iterator[None]:
    """Create the run's topics; on the way out delete them and the var dir (kept on an error, or with ``keep``)."""
    create_topics(settings)
    ok = False
    try:
        yield
        ok = True
    except KeyboardInterrupt:
        ok = True  # Ctrl-C / SIGTERM: nothing to diagnose, leave nothing behind
        raise
    finally:
        deleted = delete_topics(settings)
        say(f"deleted {len(deleted)} topics of the run")
        if ok and not keep:
            shutil.rmtree(settings.var_path, ignore_errors=True)
        else:
            say(f"kept {settings.var_path} (worker.log, chDB)")


@contextlib.contextmanager
def worker_process(settings: Settings) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(settings)
    try:
        say(f"starting worker (app {settings.app_id}, port {settings.web_port}, var {settings.var_path})")
        started = time.monotonic()
        worker.start()
        say(f"worker pid {worker.pid} answers after {time.monotonic() - started:.1f}s")
        yield worker
    except BaseException:
        if worker.log.exists():
            say(f"tail of {worker.log}:\n{worker.tail(20)}")
        raise
    finally:
        worker.stop()
        say("worker stopped")


# --------------------------------------------------------------------------- statistics


def publish(text: str, figures: Any, json_path: Path | None) -> None:
    """The report on stdout and, when asked, the figures as JSON."""
    print(text)
    if json_path:
        json_path.write_text(json.dumps(asdict(figures), ensure_ascii=False, indent=2) + "\n")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); ``q`` in [0, 100]."""
    if not sorted_values:
        return math.nan
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    count: int
    p50: float
    p99: float
    max: float
    min: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        ordered = sorted(values)
        if not ordered:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        return cls(len(ordered), percentile(ordered, 50), percentile(ordered, 99), ordered[-1], ordered[0])


def ratio(value: float, baseline: float) -> str:
    """``value / baseline`` as text, ``n/a`` when the baseline is zero or missing."""
    if not math.isfinite(value) or not math.isfinite(baseline) or baseline <= 0:
        return "n/a"
    r = value / baseline
    if 0 < r < 0.1:
        return f"{r:.2g}x (1/{1 / r:,.0f})"
    return f"{r:,.1f}x"


def ms(seconds: float) -> str:
    return "n/a" if not math.isfinite(seconds) else f"{seconds * 1000:,.1f} ms"
