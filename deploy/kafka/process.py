"""The managed brokers as operating-system processes: pid files, liveness, locking, ports, signals, logs.

Why a module of its own: a pid file can be stale and a pid reused, a child must be reaped or it
looks alive forever, and two racing ``hotline kafka start`` must not spawn two JVMs.  Everything
that asks "is our broker running, and which pid is it?" or stops one goes through here.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from hotline.deploy.kafka.layout import KafkaPaths, Node

BROKER_MAIN = "kafka.Kafka"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def alive(pid: int) -> bool:
    try:  # reap it if it is our own child, otherwise a zombie looks alive forever
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_broker(pid: int, p: KafkaPaths) -> bool:
    """Guard against pid reuse: the process must be kafka.Kafka with our server.properties."""
    if not Path("/proc/self").is_dir():
        return True  # no procfs (macOS): trust the pid file
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return BROKER_MAIN.encode() in args and str(p.props).encode() in args


def live_pid(p: KafkaPaths) -> int | None:
    """Pid of our broker: from kafka.pid, else found in /proc (pid file lost or stale)."""
    try:
        pid = int(p.pid.read_text().strip())
        if alive(pid) and _is_our_broker(pid, p):
            return pid
    except (OSError, ValueError):
        pass
    for entry in Path("/proc").glob("[0-9]*"):
        found = int(entry.name)
        if found != os.getpid() and _is_our_broker(found, p) and alive(found):
            p.pid.write_text(f"{found}\n")
            return found
    return None


@contextlib.contextmanager
def locked(p: KafkaPaths) -> Iterator[None]:
    """Serialise start/stop across processes: two racing starts must not spawn two JVMs."""
    p.home.mkdir(parents=True, exist_ok=True)
    p.lock.parent.mkdir(parents=True, exist_ok=True)
    with p.lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def spawn(node: Node, cmd: list[str]) -> int:
    """Launch the node detached, its output in ``kafka.log`` (the previous one kept as ``kafka.log.1``)."""
    p = node.paths
    if p.log.exists():
        p.log.replace(p.log.with_name(p.log.name + ".1"))
    with p.log.open("ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=p.home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives our Ctrl-C and exit
        )
    p.pid.write_text(f"{proc.pid}\n")
    return proc.pid


def abandon(launched: dict[Node, int]) -> None:
    """Stop the nodes just launched (a start that failed) and forget their pid files."""
    for node, pid in launched.items():
        terminate(pid, 10)
        node.paths.pid.unlink(missing_ok=True)


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.2)
    return not alive(pid)


def terminate(pid: int, timeout: float) -> bool:
    """SIGTERM (Kafka shuts down cleanly), then SIGKILL; True if SIGTERM sufficed."""
    return terminate_all([pid], timeout)[pid]


def terminate_all(pids: list[int], timeout: float) -> dict[int, bool]:
    """SIGTERM to every pid at once (a cluster stops together), SIGKILL whoever outlives ``timeout``."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    graceful = {pid: _wait_exit(pid, max(0.0, deadline - time.monotonic())) for pid in pids}
    for pid, done in graceful.items():
        if not done:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_exit(pid, 10)
    return graceful


def tail(path: Path, lines: int = 40) -> str:
    """The end of a node's log, for an error message."""
    try:
        return tail_text(path.read_text(errors="replace"), lines)
    except OSError:
        return "(no log)"


def tail_text(text: str, lines: int = 40) -> str:
    """The end of a tool's output (Maven, the storage tool, a log), without colours."""
    text = _ANSI.sub("", text).rstrip()  # mvn 3.8 colours even with -B
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"
