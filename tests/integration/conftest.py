"""Real services: the Kafka broker (started if local) and worker processes per test.

Each test gets its own topics, consumer group, chDB directory and HTTP port, so
tests never see each other's events and the broker is shared.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy import kafka
from hotline.replay import worker_get
from hotline.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def broker() -> Settings:
    settings = Settings()
    kafka.start(settings)
    return settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as ``HOTLINE_*`` variables, for a worker or CLI subprocess."""
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            env[f"HOTLINE_{name.upper()}"] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return env


class Worker:
    """A ``hotline worker`` process that a test can SIGKILL and restart."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = settings.var_path / "worker.log"

    def start(self, timeout: float = 120) -> Worker:
        self.settings.var_path.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hotline", "worker"],
                cwd=REPO,
                env=settings_env(self.settings),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited {self.proc.returncode}:\n{self.tail()}")
            try:
                worker_get(self.settings, "/status", timeout=5)
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"worker did not answer in {timeout}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


@pytest.fixture
def isolated(broker: Settings, tmp_path: Path) -> Settings:
    """Settings of one test: fresh topics, group, chDB directory and port on the shared broker."""
    tag = uuid.uuid4().hex[:8]
    settings = broker.model_copy(
        update={
            "var_dir": tmp_path / "var",
            "app_id": f"hotline-test-{tag}",
            "calls_topic": f"t{tag}.calls",
            "orders_topic": f"t{tag}.orders",
            "alerts_topic": f"t{tag}.alerts",
            "deadletter_topic": f"t{tag}.deadletter",
            "web_port": _free_port(),
        }
    )
    kafka.ensure_topics(settings, kafka.pipeline_topics(settings))
    return settings


@pytest.fixture
def worker(isolated: Settings) -> Iterator[Worker]:
    w = Worker(isolated)
    yield w.start()
    w.stop()


def hotline(settings: Settings, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI as a user would, with this test's settings."""
    result = subprocess.run(
        [sys.executable, "-m", "hotline", *args],
        cwd=REPO,
        env=settings_env(settings),
        capture_output=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    return result
