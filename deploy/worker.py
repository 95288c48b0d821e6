"""A ``hotline worker`` (or ``hotline store``) as a child process: what the demo, the tests and the
benchmarks start.

It waits for the process's HTTP to answer (a worker is ready for events then, a store for
workers) and can stop it politely or SIGKILL it, as the recovery tests do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from pydantic import SecretStr

from hotline.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as ``HOTLINE_*`` variables (JSON for lists and maps), over this environment.

    The var directory is passed absolute, so a child finds the same one from any working directory.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    for name, value in settings.model_dump(mode="json").items():
        secret = getattr(settings, name)
        if isinstance(secret, SecretStr):  # dumped as asterisks: the child needs the value itself
            value = secret.get_secret_value()
        if value is not None:
            env[f"HOTLINE_{name.upper()}"] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    env["HOTLINE_VAR_DIR"] = str(settings.var_path)
    return env


class WorkerProcess:
    """``python -m hotline worker`` with the given settings, logging to ``<var>/worker.log``.

    The child runs the installed ``hotline`` (``-P``: not a ``hotline/`` folder that happens to be in the
    working directory), in this process's working directory.
    """

    subcommand = "worker"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = settings.var_path / f"{self.subcommand}.log"

    @property
    def url(self) -> str:
        """Where its HTTP answers."""
        return self.settings.web_url

    @property
    def pid(self) -> int:
        assert self.proc is not None, "worker not started"
        return self.proc.pid

    def start(self, timeout: float = 120) -> WorkerProcess:
        """Start and return once its HTTP answers; raise with the log's tail if it never does."""
        self.settings.var_path.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "hotline", self.subcommand],
                env=settings_env(self.settings),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.subcommand} exited with {self.proc.returncode}:\n{self.tail()}")
            if self.answers():
                return self
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"{self.subcommand} did not answer within {timeout:.0f}s:\n{self.tail()}")

    def answers(self) -> bool:
        """Its HTTP is up (``/metrics`` needs no token): the worker has started its services."""
        try:
            with urllib.request.urlopen(f"{self.url}/metrics", timeout=5):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM, so Faust commits and leaves the group; SIGKILL if it hangs."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 60) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class StoreProcess(WorkerProcess):
    """``python -m hotline store``: the storage owner its workers call (``HOTLINE_STORE_URL``)."""

    subcommand = "store"

    @property
    def url(self) -> str:
        return self.settings.store_listen_url


class NotifyProcess(WorkerProcess):
    """``python -m hotline notify``: delivers the alerts topic to people; answers at its ``/metrics``."""

    subcommand = "notify"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.notify_port}"
