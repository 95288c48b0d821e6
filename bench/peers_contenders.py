"""The contenders of ``bench.peers``: how each is started, warmed, told its target and waited for.

The worker runs as ``hotline worker`` (:class:`WorkerContender`); every peer runs as a child
process (``python -m bench.peers_…``) speaking the protocol of ``bench.peers_job`` over a pipe
(:class:`PeerProcess`, :class:`PeerContender`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from typing import Any

from bench.common import REPO, WorkerProcess, say
from bench.peers_job import REPORT_FD
from bench.throughput import warm_up, warmup_records
from hotline.client import worker_get
from hotline.deploy.worker import settings_env
from hotline.replay import behind, produce, stored_progress
from hotline.settings import Settings

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
