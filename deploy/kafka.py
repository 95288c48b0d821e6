"""Single-node Apache Kafka 4.x (KRaft) on this machine, run straight from Maven Central jars.

Why this exists: the pipeline needs a real broker for development and integration tests,
and the machine has Java 17 + Maven but no Docker.  Maven resolves ``kafka_2.13`` and
its runtime closure (``deploy/pom.xml``) into ``<var>/kafka/libs``; we then run
``kafka.Kafka`` ourselves as a combined broker+controller with a static quorum of one.

Everything lives under ``<var>/kafka/``: ``libs/`` (jars), ``data/`` (log dirs and KRaft
metadata), ``server.properties``, ``log4j2.properties``, ``cluster.id``, ``kafka.pid`` and
``kafka.log`` (the previous run's output is kept as ``kafka.log.1``).

Only a single bootstrap on 127.0.0.1/localhost is managed; any other broker is external
and ``start``/``stop`` leave it alone.  CLI: ``python -m hotline.deploy.kafka start|stop|status|topics``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hotline.settings import Settings

POM = Path(__file__).with_name("pom.xml")
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
BROKER_MAIN = "kafka.Kafka"
# Kafka 4.x keeps the Scala StorageTool in kafka_2.13 (verified against 4.1.1 jars).
STORAGE_TOOL = "kafka.tools.StorageTool"
JVM_OPTS = ("-Xmx512m", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true")
_TOPIC_ALREADY_EXISTS = 36
_VERSION_MARKER = ".kafka-version"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

T = TypeVar("T")

LOG4J2_PROPERTIES = """\
# Written by deploy/kafka.py.  Console only: start() sends stdout to kafka.log.
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""


@dataclass(frozen=True)
class KafkaPaths:
    """Files of the managed broker, in one place so start/stop/status agree."""

    home: Path
    libs: Path
    data: Path
    props: Path
    log4j: Path
    cluster_id: Path
    pid: Path
    log: Path
    lock: Path


def paths(settings: Settings) -> KafkaPaths:
    home = settings.var_path / "kafka"
    return KafkaPaths(
        home=home,
        libs=home / "libs",
        data=home / "data",
        props=home / "server.properties",
        log4j=home / "log4j2.properties",
        cluster_id=home / "cluster.id",
        pid=home / "kafka.pid",
        log=home / "kafka.log",
        lock=home / "launcher.lock",
    )


def managed_port(settings: Settings) -> int | None:
    """Port of the broker we manage, or None when the bootstrap points elsewhere.

    Only one local host:port counts as ours; a list or a remote host is an external
    cluster we must not start or kill.
    """
    entries = [e.strip() for e in settings.kafka_bootstrap.split(",") if e.strip()]
    if len(entries) != 1:
        return None
    entry = entries[0].split("://", 1)[-1]
    host, sep, port = entry.rpartition(":")
    if not sep:
        host, port = entry, "9092"
    if host.strip("[]") not in LOCAL_HOSTS:
        return None
    return int(port)


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka connection kwargs; the managed broker only has a PLAINTEXT listener."""
    if managed_port(settings) is not None:
        return {"bootstrap_servers": settings.kafka_bootstrap}
    opts: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        opts["sasl_mechanism"] = settings.kafka_sasl_mechanism
        opts["sasl_plain_username"] = settings.kafka_sasl_username
        opts["sasl_plain_password"] = settings.kafka_sasl_password
    if settings.kafka_security_protocol in {"SSL", "SASL_SSL"}:
        opts["ssl_context"] = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    return opts


# --------------------------------------------------------------------------- jars


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("java not found (JAVA_HOME or PATH): Kafka 4.x needs Java 17+")
    return java


def ensure_jars(settings: Settings) -> Path:
    """Resolve Kafka ``settings.kafka_version`` into ``<var>/kafka/libs`` with Maven, once.

    Jars land in a staging dir that replaces ``libs`` only when complete, so an
    interrupted download or a version switch never leaves a mixed classpath.
    """
    p = paths(settings)
    version = settings.kafka_version
    jar_name = f"kafka_2.13-{version}.jar"
    marker = p.libs / _VERSION_MARKER
    if (p.libs / jar_name).is_file() and marker.is_file() and marker.read_text().strip() == version:
        return p.libs
    if _live_pid(p) is not None:
        raise RuntimeError(f"Kafka is running from {p.libs}; stop it before switching to {version}")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("mvn not found on PATH: Maven 3.8+ is needed to fetch the Kafka jars")
    _java()
    staging = p.home / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        mvn, "-q", "-B", "-f", str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
        f"-Dkafka.version={version}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (staging / jar_name).is_file():
        tail = _tail_text(proc.stdout + proc.stderr)
        raise RuntimeError(f"maven could not fetch Kafka {version} ({' '.join(cmd)}):\n{tail}")
    (staging / _VERSION_MARKER).write_text(version + "\n")
    shutil.rmtree(p.libs, ignore_errors=True)
    staging.rename(p.libs)
    return p.libs


# --------------------------------------------------------------------------- config


def _cluster_id(p: KafkaPaths) -> str:
    """Kafka wants a base64url (no padding) UUID: 22 chars, as ``kafka-storage random-uuid``.

    Like Kafka's ``Uuid.randomUuid`` we reject ids starting with "-": the storage
    tool's argument parser would read them as an option ("-t: expected one argument").
    """
    if p.cluster_id.is_file():
        cid = p.cluster_id.read_text().strip()
        if len(cid) == 22 and not cid.startswith("-"):
            return cid
    cid = "-"
    while cid.startswith("-"):
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    p.cluster_id.write_text(cid + "\n")
    return cid


def server_properties(settings: Settings, port: int) -> str:
    """Combined broker+controller, static single voter, everything replicated once."""
    ctl = settings.kafka_controller_port
    data = paths(settings).data
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{ctl}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctl}",
        # Always advertise the IPv4 literal: "localhost" may resolve to ::1 first.
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data),
        "num.partitions": str(settings.partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        # 50 partitions (the default) makes the first consumer group noticeably slower.
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "log.segment.bytes": str(64 * 1024 * 1024),
        "log.retention.hours": "72",
        "log.retention.bytes": str(1024 * 1024 * 1024),
        "log.retention.check.interval.ms": "60000",
    }
    lines = ["# Written by deploy/kafka.py on every start; edit Settings, not this file."]
    lines += [f"{k}={v}" for k, v in props.items()]
    return "\n".join(lines) + "\n"


def _format_storage(settings: Settings, p: KafkaPaths, java: str) -> None:
    """First start only: write meta.properties + bootstrap checkpoint for our cluster id."""
    if (p.data / "meta.properties").is_file():
        return
    cmd = [
        java, "-cp", str(p.libs / "*"), f"-Dlog4j2.configurationFile={p.log4j}",
        STORAGE_TOOL, "format", "-t", _cluster_id(p), "-c", str(p.props), "-g",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=p.home)
    if proc.returncode != 0:
        raise RuntimeError(f"kafka storage format failed:\n{_tail_text(proc.stdout + proc.stderr)}")


# --------------------------------------------------------------------------- process


def _alive(pid: int) -> bool:
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


def _live_pid(p: KafkaPaths) -> int | None:
    """Pid of our broker: from kafka.pid, else found in /proc (pid file lost or stale)."""
    try:
        pid = int(p.pid.read_text().strip())
        if _alive(pid) and _is_our_broker(pid, p):
            return pid
    except (OSError, ValueError):
        pass
    for entry in Path("/proc").glob("[0-9]*"):
        found = int(entry.name)
        if found != os.getpid() and _is_our_broker(found, p) and _alive(found):
            p.pid.write_text(f"{found}\n")
            return found
    return None


@contextlib.contextmanager
def _locked(p: KafkaPaths) -> Iterator[None]:
    """Serialise start/stop across processes: two racing starts must not spawn two JVMs."""
    p.home.mkdir(parents=True, exist_ok=True)
    with p.lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from sync code, even when the caller already has a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def _answers_async(settings: Settings, timeout: float) -> bool:
    admin = AIOKafkaAdminClient(request_timeout_ms=int(timeout * 1000), **client_options(settings))
    try:
        await asyncio.wait_for(_list_topics(admin), timeout)
        return True
    except Exception:  # any failure just means "not answering (yet)"
        return False
    finally:
        await admin.close()


async def _list_topics(admin: AIOKafkaAdminClient) -> list[str]:
    await admin.start()
    topics: list[str] = await admin.list_topics()
    return topics


def answers(settings: Settings, timeout: float = 5.0) -> bool:
    """True when a broker at the bootstrap serves a metadata request (not just an open port)."""
    port = managed_port(settings)
    if port is not None and not _port_open(port):
        return False  # fast path: avoids aiokafka's connection-error log spam
    return _run(lambda: _answers_async(settings, timeout))


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return _tail_text(path.read_text(errors="replace"), lines)
    except OSError:
        return "(no log)"


def _tail_text(text: str, lines: int = 40) -> str:
    text = _ANSI.sub("", text).rstrip()  # mvn 3.8 colours even with -B
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def _wait_ready(settings: Settings, p: KafkaPaths, pid: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise RuntimeError(f"Kafka (pid {pid}) exited during startup; tail of {p.log}:\n{_tail(p.log)}")
        if answers(settings, timeout=min(5.0, max(0.5, deadline - time.monotonic()))):
            return
        time.sleep(0.3)
    raise RuntimeError(f"Kafka (pid {pid}) did not answer in time; tail of {p.log}:\n{_tail(p.log)}")


def _external(settings: Settings, action: str) -> str:
    where = settings.kafka_bootstrap
    return f"Kafka at {where} is external (not 127.0.0.1/localhost): {action} skipped"


def start(settings: Settings, timeout: float = 90) -> str:
    """Start the local broker detached and return once it serves metadata; idempotent."""
    port = managed_port(settings)
    if port is None:
        return _external(settings, "start")
    p = paths(settings)
    with _locked(p):
        return _start_locked(settings, p, port, timeout)


def _start_locked(settings: Settings, p: KafkaPaths, port: int, timeout: float) -> str:
    where = f"127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    pid = _live_pid(p)
    if answers(settings):
        owner = f"pid {pid}" if pid else "not started by hotline.deploy.kafka"
        return f"already running ({owner}) at {where}"
    if pid is not None:
        # Launched (e.g. by a concurrent start) but still booting: don't spawn a twin.
        _wait_ready(settings, p, pid, deadline)
        return f"already running (pid {pid}) at {where}"
    for busy in (port, settings.kafka_controller_port):
        if _port_open(busy):
            raise RuntimeError(f"port {busy} is in use by something that is not a Kafka broker we manage")

    t0 = time.monotonic()
    ensure_jars(settings)
    java = _java()
    p.data.mkdir(parents=True, exist_ok=True)
    p.props.write_text(server_properties(settings, port))
    p.log4j.write_text(LOG4J2_PROPERTIES)
    _format_storage(settings, p, java)
    if p.log.exists():
        p.log.replace(p.log.with_name(p.log.name + ".1"))
    cmd = [
        java, *JVM_OPTS, f"-Dlog4j2.configurationFile={p.log4j}",
        "-cp", str(p.libs / "*"), BROKER_MAIN, str(p.props),
    ]  # fmt: skip
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
    try:
        _wait_ready(settings, p, proc.pid, deadline)
    except RuntimeError:
        _terminate(proc.pid, 10)  # don't leave a half-started broker holding the ports
        p.pid.unlink(missing_ok=True)
        raise
    return f"started (pid {proc.pid}) at {where} in {time.monotonic() - t0:.1f}s"


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return not _alive(pid)


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM (Kafka shuts down cleanly), then SIGKILL; True if SIGTERM sufficed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if _wait_exit(pid, timeout):
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    _wait_exit(pid, 10)
    return False


def stop(settings: Settings, timeout: float = 30) -> str:
    """Stop the broker started by :func:`start`; harmless when it is not running."""
    port = managed_port(settings)
    if port is None:
        return _external(settings, "stop")
    p = paths(settings)
    with _locked(p):
        return _stop_locked(p, port, timeout)


def _stop_locked(p: KafkaPaths, port: int, timeout: float) -> str:
    pid = _live_pid(p)
    if pid is None:
        p.pid.unlink(missing_ok=True)
        if _port_open(port):
            return f"not running under hotline.deploy.kafka, but something listens on 127.0.0.1:{port}; left alone"
        return "not running"
    graceful = _terminate(pid, timeout)
    p.pid.unlink(missing_ok=True)
    return f"stopped (pid {pid})" if graceful else f"killed (pid {pid}): no exit {timeout:g}s after SIGTERM"


def status(settings: Settings) -> str:
    """One line: ``running (pid N) at 127.0.0.1:9092`` / ``starting ...`` / ``stopped``."""
    port = managed_port(settings)
    if port is None:
        return f"external broker at {settings.kafka_bootstrap} (not managed here)"
    pid = _live_pid(paths(settings))
    if pid is None:
        if _port_open(port):
            return f"stopped (but something not started by hotline.deploy.kafka listens on 127.0.0.1:{port})"
        return "stopped"
    if not _port_open(port):
        return f"starting (pid {pid}) at 127.0.0.1:{port}"
    return f"running (pid {pid}) at 127.0.0.1:{port}"


# --------------------------------------------------------------------------- topics


async def ensure_topics_async(settings: Settings, topics: dict[str, int], timeout: float = 30) -> list[str]:
    """Create the missing topics with the given partition counts; return the names created.

    Existing topics are left as they are, even with fewer partitions: adding partitions
    silently remaps keys, which must be a deliberate decision.  Replication is
    min(3, brokers), i.e. 1 on the local single node.
    """
    admin = AIOKafkaAdminClient(request_timeout_ms=int(timeout * 1000), **client_options(settings))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = {name: n for name, n in topics.items() if name not in existing}
        if not missing:
            return []
        brokers = len((await admin.describe_cluster())["brokers"])
        replication = max(1, min(3, brokers))
        response = await admin.create_topics(
            [NewTopic(name, n, replication) for name, n in missing.items()],
            timeout_ms=int(timeout * 1000),
        )
        created: list[str] = []
        for name, code, *rest in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != _TOPIC_ALREADY_EXISTS:  # "exists" = lost a race: fine
                raise RuntimeError(f"creating topic {name} failed: error {code} {rest[0] if rest else ''}")
        return created
    finally:
        await admin.close()


def ensure_topics(settings: Settings, topics: dict[str, int]) -> list[str]:
    """Sync wrapper of :func:`ensure_topics_async` (usable inside a running loop too)."""
    return _run(lambda: ensure_topics_async(settings, topics))


def pipeline_topics(settings: Settings) -> dict[str, int]:
    """The pipeline's own topics, all with ``settings.partitions`` partitions."""
    names = (
        settings.calls_topic,
        settings.orders_topic,
        settings.alerts_topic,
        settings.deadletter_topic,
    )
    return dict.fromkeys(names, settings.partitions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hotline.deploy.kafka", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status", "topics", "jars"])
    args = parser.parse_args(argv)
    settings = Settings()
    try:
        if args.action == "start":
            print(start(settings))
        elif args.action == "stop":
            print(stop(settings))
        elif args.action == "status":
            print(status(settings))
        elif args.action == "jars":
            print(ensure_jars(settings))
        else:
            created = ensure_topics(settings, pipeline_topics(settings))
            print(f"created: {', '.join(created)}" if created else "all topics exist")
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
