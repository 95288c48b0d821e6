"""Apache Kafka 4.x (KRaft) on this machine, one node or a cluster, run straight from Maven Central jars.

Why this exists: the pipeline needs a real broker for development and integration tests,
and the machine has Java 17 + Maven but no Docker.  Maven resolves ``kafka_2.13`` and
its runtime closure (``deploy/pom.xml``) into ``<var>/kafka/libs``; we then run
``kafka.Kafka`` ourselves, each node a combined broker+controller with a static quorum of
every node (one by default, ``Settings.kafka_brokers`` for a cluster, e.g. three).

A single node lives in ``<var>/kafka/``: ``data/`` (log dirs and KRaft metadata),
``server.properties``, ``log4j2.properties``, ``cluster.id``, ``kafka.pid`` and ``kafka.log``
(the previous run's output is kept as ``kafka.log.1``).  Node i of a cluster of n has the same
files in ``<var>/kafka/cluster-<n>/node-<i>/`` (the cluster id one level up); the jars and the
launcher's lock are shared.  Ports follow ``Settings.kafka_nodes`` (the one port rule).

Only a bootstrap of 127.0.0.1/localhost entries on that rule's ports is managed; any other
broker is external and ``start``/``stop`` leave it alone.
CLI: ``python -m hotline.deploy.kafka start|stop|status|topics|jars``.
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

from hotline.settings import KafkaNode, Settings

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


@dataclass(frozen=True)
class Node:
    """One managed node: where it listens (the settings' port rule) and where its files are."""

    spec: KafkaNode
    brokers: int  # the size of its cluster: the quorum it was formatted with
    paths: KafkaPaths

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.spec.port}"


def paths(settings: Settings) -> KafkaPaths:
    """The single node's files, directly under ``<var>/kafka`` (where every release kept them)."""
    home = settings.var_path / "kafka"
    return _paths(home, home, home / "cluster.id")


def _paths(kafka_home: Path, home: Path, cluster_id: Path) -> KafkaPaths:
    return KafkaPaths(
        home=home,
        libs=kafka_home / "libs",
        data=home / "data",
        props=home / "server.properties",
        log4j=home / "log4j2.properties",
        cluster_id=cluster_id,
        pid=home / "kafka.pid",
        log=home / "kafka.log",
        lock=kafka_home / "launcher.lock",
    )


def nodes(settings: Settings, brokers: int | None = None) -> list[Node]:
    """The nodes of the local cluster of ``brokers`` (default ``settings.kafka_brokers``).

    One node keeps the single-node layout; a cluster of n is a directory of its own, so a
    cluster never reuses storage formatted for another quorum.
    """
    specs = settings.kafka_nodes(brokers)
    if len(specs) == 1:
        return [Node(specs[0], 1, paths(settings))]
    kafka_home = settings.var_path / "kafka"
    cluster = kafka_home / f"cluster-{len(specs)}"
    return [
        Node(spec, len(specs), _paths(kafka_home, cluster / f"node-{spec.node_id}", cluster / "cluster.id"))
        for spec in specs
    ]


def _layouts(settings: Settings) -> list[list[Node]]:
    """Every cluster this var directory holds (the single node first): stop and status cover them all."""
    sizes = {1, settings.kafka_brokers}
    for folder in (settings.var_path / "kafka").glob("cluster-*"):
        size = folder.name.removeprefix("cluster-")
        if size.isdigit() and int(size) > 1:
            sizes.add(int(size))
    return [nodes(settings, n) for n in sorted(sizes)]


def _bootstrap_ports(settings: Settings) -> list[int] | None:
    """The bootstrap's ports when every entry is 127.0.0.1/localhost, else None."""
    ports: list[int] = []
    for raw in settings.kafka_bootstrap.split(","):
        entry = raw.strip().split("://", 1)[-1]
        if not entry:
            continue
        host, sep, port = entry.rpartition(":")
        if not sep:
            host, port = entry, "9092"
        if host.strip("[]") not in LOCAL_HOSTS or not port.isdigit():
            return None
        ports.append(int(port))
    return ports or None


def managed(settings: Settings) -> bool:
    """Whether the bootstrap names nodes of our local cluster (the port rule's), not a broker elsewhere.

    A remote host, or local ports off the rule, is an external cluster we must not start or kill.
    """
    ports = _bootstrap_ports(settings)
    if ports is None:
        return False
    base, step = settings.kafka_bootstrap_port, settings.kafka_port_step
    count = max(settings.kafka_brokers, len(ports))
    return all((p - base) % step == 0 and 0 <= (p - base) // step < count for p in ports)


def managed_port(settings: Settings) -> int | None:
    """Port of node 1 of the local cluster we manage, or None when the bootstrap points elsewhere."""
    return settings.kafka_bootstrap_port if managed(settings) else None


def local_bootstrap(settings: Settings, brokers: int | None = None) -> str:
    """What a client of the local cluster puts in ``HOTLINE_KAFKA_BOOTSTRAP``: every node, so any one may be down."""
    return ",".join(node.address for node in nodes(settings, brokers))


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka connection kwargs; the managed nodes only have a PLAINTEXT listener."""
    if managed(settings):
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
    if any(_live_pid(node.paths) is not None for layout in _layouts(settings) for node in layout):
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


def server_properties(settings: Settings, node: Node) -> str:
    """A combined broker+controller; the static quorum is every node of its cluster.

    On a cluster, replication (Kafka's own topics too) and ``min.insync.replicas`` follow the
    settings, so an ``acks=all`` write is on two brokers before it is acknowledged; a lost node is
    fenced after ``broker.session.timeout.ms`` and its partitions move to the others.
    """
    spec = node.spec
    cluster = nodes(settings, node.brokers)
    replicas = min(settings.replication_factor, node.brokers)
    min_isr = min(settings.min_insync_replicas, replicas)
    voters = ",".join(f"{n.spec.node_id}@127.0.0.1:{n.spec.controller_port}" for n in cluster)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(spec.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{spec.port},CONTROLLER://127.0.0.1:{spec.controller_port}",
        # Always advertise the IPv4 literal: "localhost" may resolve to ::1 first.
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{spec.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(node.paths.data),
        "num.partitions": str(settings.partitions),
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(replicas),
        # 50 partitions (the default) makes the first consumer group noticeably slower.
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "log.segment.bytes": str(64 * 1024 * 1024),
        "log.retention.hours": "72",
        "log.retention.bytes": str(1024 * 1024 * 1024),
        "log.retention.check.interval.ms": "60000",
    }
    if node.brokers > 1:
        # Fence a dead node within seconds (default 9 s), so its partitions' leadership moves on.
        props["broker.heartbeat.interval.ms"] = "1000"
        props["broker.session.timeout.ms"] = "6000"
        # A whole cluster stops together (`hotline kafka stop`, `systemctl stop hotline-kafka@*`): a
        # controlled shutdown needs the controllers' quorum, which the last node alone no longer has, and
        # Kafka then waits 5 minutes for it. Without one, a stopped node's partitions move once it is
        # fenced (the session timeout above); idempotent producers retry meanwhile.
        props["controlled.shutdown.enable"] = "false"
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
    p.lock.parent.mkdir(parents=True, exist_ok=True)
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
    ports = _bootstrap_ports(settings) if managed(settings) else None
    if ports is not None and not any(_port_open(port) for port in ports):
        return False  # fast path: avoids aiokafka's connection-error log spam
    return _run(lambda: _answers_async(settings, timeout))


def _at(settings: Settings, node: Node) -> Settings:
    """Settings of a client of this node alone: to ask one node, not whichever answers first."""
    return settings.model_copy(update={"kafka_bootstrap": node.address})


async def _brokers_async(settings: Settings, timeout: float) -> int:
    admin = AIOKafkaAdminClient(request_timeout_ms=int(timeout * 1000), **client_options(settings))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
        return len(cluster["brokers"])
    except Exception:  # not answering (yet): no broker counted
        return 0
    finally:
        await admin.close()


def registered_brokers(settings: Settings, timeout: float = 5.0) -> int:
    """How many brokers the cluster at the bootstrap lists as up (fenced ones are not listed)."""
    return _run(lambda: _brokers_async(settings, timeout))


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return _tail_text(path.read_text(errors="replace"), lines)
    except OSError:
        return "(no log)"


def _tail_text(text: str, lines: int = 40) -> str:
    text = _ANSI.sub("", text).rstrip()  # mvn 3.8 colours even with -B
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def _who(node: Node, pid: int) -> str:
    return f"Kafka (pid {pid})" if node.brokers == 1 else f"Kafka node {node.spec.node_id} (pid {pid})"


def _wait_ready(settings: Settings, cluster: list[Node], pending: dict[Node, int], deadline: float) -> None:
    """Until every pending node serves metadata and, on a cluster, every node is registered and unfenced.

    A cluster's nodes are waited for together: none of them finishes starting before a
    majority of the quorum runs.
    """
    waiting = dict(pending)
    whole = settings.model_copy(update={"kafka_bootstrap": ",".join(n.address for n in cluster)})
    while time.monotonic() < deadline:
        left = min(5.0, max(0.5, deadline - time.monotonic()))
        for node, pid in list(waiting.items()):
            if not _alive(pid):
                log = node.paths.log
                raise RuntimeError(f"{_who(node, pid)} exited during startup; tail of {log}:\n{_tail(log)}")
            if answers(_at(settings, node), timeout=left):
                del waiting[node]
        if not waiting and (len(cluster) == 1 or registered_brokers(whole, left) >= len(cluster)):
            return
        time.sleep(0.3)
    late = next(iter(waiting.items()), None)
    if late is None:
        raise RuntimeError(f"the {len(cluster)} nodes at {whole.kafka_bootstrap} did not all register in time")
    node, pid = late
    raise RuntimeError(f"{_who(node, pid)} did not answer in time; tail of {node.paths.log}:\n{_tail(node.paths.log)}")


def _external(settings: Settings, action: str) -> str:
    where = settings.kafka_bootstrap
    return f"Kafka at {where} is external (not 127.0.0.1/localhost): {action} skipped"


def start(settings: Settings, timeout: float = 90) -> str:
    """Start the local node(s) detached and return once they serve metadata; idempotent.

    On a cluster, the nodes that are not running are started (a killed node is restarted
    this way) and the others left alone.
    """
    if not managed(settings):
        return _external(settings, "start")
    cluster = nodes(settings)
    with _locked(cluster[0].paths):
        return _start_locked(settings, cluster, timeout)


def _start_locked(settings: Settings, cluster: list[Node], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    _refuse_other_layouts(settings, cluster)
    running: dict[Node, int | None] = {}  # None: something not started by us answers there
    booting: dict[Node, int] = {}  # launched (e.g. by a concurrent start) but not answering yet
    missing: list[Node] = []
    for node in cluster:
        pid = _live_pid(node.paths)
        if answers(_at(settings, node)):
            if pid is None and len(cluster) > 1:  # one node: an outside broker is taken as is, as ever
                raise RuntimeError(f"{node.address} answers as a Kafka broker this var directory did not start")
            running[node] = pid
        elif pid is not None:
            booting[node] = pid
        else:
            missing.append(node)
    for node in missing:
        for busy in (node.spec.port, node.spec.controller_port):
            if _port_open(busy):
                raise RuntimeError(f"port {busy} is in use by something that is not a Kafka broker we manage")
    t0 = time.monotonic()
    launched = _launch(settings, missing) if missing else {}
    try:
        _wait_ready(settings, cluster, {**booting, **launched}, deadline)
    except RuntimeError:
        _abandon(launched)  # don't leave half-started nodes holding the ports
        raise
    return _started(cluster, running, booting, launched, time.monotonic() - t0)


def _refuse_other_layouts(settings: Settings, cluster: list[Node]) -> None:
    """One Kafka per var directory: a single node and a cluster would want the same ports."""
    for layout in _layouts(settings):
        if layout[0].brokers == cluster[0].brokers:
            continue
        pids = [pid for node in layout if (pid := _live_pid(node.paths)) is not None]
        if pids:
            what = "a single node" if layout[0].brokers == 1 else f"a cluster of {layout[0].brokers}"
            raise RuntimeError(
                f"{what} runs from {settings.var_path / 'kafka'} (pid {', '.join(map(str, pids))}): "
                "stop it first (hotline kafka stop)"
            )


def _launch(settings: Settings, missing: list[Node]) -> dict[Node, int]:
    """Format (first time) and spawn each node; on a failure, the ones already spawned are stopped."""
    ensure_jars(settings)
    java = _java()
    launched: dict[Node, int] = {}
    try:
        for node in missing:
            launched[node] = _spawn(node, _prepare(settings, node, java))
    except BaseException:
        _abandon(launched)
        raise
    return launched


def _prepare(settings: Settings, node: Node, java: str) -> list[str]:
    """Write the node's configuration (every start: settings may have changed), format it once; its command."""
    p = node.paths
    p.data.mkdir(parents=True, exist_ok=True)
    p.props.write_text(server_properties(settings, node))
    p.log4j.write_text(LOG4J2_PROPERTIES)
    _format_storage(settings, p, java)
    return [
        java, *JVM_OPTS, f"-Dlog4j2.configurationFile={p.log4j}",
        "-cp", str(p.libs / "*"), BROKER_MAIN, str(p.props),
    ]  # fmt: skip


def _spawn(node: Node, cmd: list[str]) -> int:
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


def _abandon(launched: dict[Node, int]) -> None:
    for node, pid in launched.items():
        _terminate(pid, 10)
        node.paths.pid.unlink(missing_ok=True)


def _started(
    cluster: list[Node],
    running: dict[Node, int | None],
    booting: dict[Node, int],
    launched: dict[Node, int],
    took: float,
) -> str:
    """``started (pid N) at …`` / ``already running …`` for one node; which nodes were started, for a cluster."""
    where = ",".join(node.address for node in cluster)
    if len(cluster) == 1:
        node = cluster[0]
        if node in launched:
            return f"started (pid {launched[node]}) at {where} in {took:.1f}s"
        pid = booting.get(node) or running.get(node)
        owner = f"pid {pid}" if pid else "not started by hotline.deploy.kafka"
        return f"already running ({owner}) at {where}"
    if not launched:
        pids = ", ".join(str(pid or "?") for pid in [*running.values(), *booting.values()])
        return f"already running: {len(cluster)} nodes (pids {pids}) at {where}"
    ids = ", ".join(str(node.spec.node_id) for node in launched)
    pids = ", ".join(str(pid) for pid in launched.values())
    done = f"started node{'s' if len(launched) > 1 else ''} {ids} (pid{'s' if len(launched) > 1 else ''} {pids})"
    return f"{done} of {len(cluster)} at {where} in {took:.1f}s"


def run_node(settings: Settings, node_id: int) -> None:
    """Node ``node_id`` of the local cluster in the foreground, replacing this process (``exec``).

    What a systemd unit runs (``deploy/systemd/hotline-kafka@.service``): the same ports,
    configuration and storage as ``start``, with systemd as the supervisor and the journal as the log.
    Returns only if it cannot exec.
    """
    if not managed(settings):
        raise RuntimeError(_external(settings, "node"))
    found = [node for node in nodes(settings) if node.spec.node_id == node_id]
    if not found:
        raise RuntimeError(f"node {node_id} is not one of the {settings.kafka_brokers} nodes (HOTLINE_KAFKA_BROKERS)")
    node = found[0]
    with _locked(node.paths):
        pid = _live_pid(node.paths)
        if pid is not None:
            raise RuntimeError(f"{_who(node, pid)} already runs")
        ensure_jars(settings)
        cmd = _prepare(settings, node, _java())
        node.paths.pid.write_text(f"{os.getpid()}\n")  # exec keeps the pid
    os.execv(cmd[0], cmd)


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return not _alive(pid)


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM (Kafka shuts down cleanly), then SIGKILL; True if SIGTERM sufficed."""
    return _terminate_all([pid], timeout)[pid]


def _terminate_all(pids: list[int], timeout: float) -> dict[int, bool]:
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


def stop(settings: Settings, timeout: float = 30) -> str:
    """Stop every node started by :func:`start` (the single node or a whole cluster); harmless when none runs."""
    if not managed(settings):
        return _external(settings, "stop")
    with _locked(paths(settings)):
        return _stop_locked(settings, timeout)


def _stop_locked(settings: Settings, timeout: float) -> str:
    live = {node: pid for layout in _layouts(settings) for node in layout if (pid := _live_pid(node.paths))}
    if not live:
        for layout in _layouts(settings):
            for node in layout:
                node.paths.pid.unlink(missing_ok=True)
        port = settings.kafka_bootstrap_port
        if _port_open(port):
            return f"not running under hotline.deploy.kafka, but something listens on 127.0.0.1:{port}; left alone"
        return "not running"
    graceful = _terminate_all(list(live.values()), timeout)
    for node in live:
        node.paths.pid.unlink(missing_ok=True)
    killed = [pid for pid, done in graceful.items() if not done]
    if len(live) == 1 and next(iter(live)).brokers == 1:
        pid = next(iter(live.values()))
        return f"stopped (pid {pid})" if not killed else f"killed (pid {pid}): no exit {timeout:g}s after SIGTERM"
    pids = ", ".join(str(pid) for pid in live.values())
    said = f"stopped {len(live)} node{'s' if len(live) > 1 else ''} (pids {pids})"
    if killed:
        said += f"; killed {', '.join(map(str, killed))}: no exit {timeout:g}s after SIGTERM"
    return said


def status(settings: Settings) -> str:
    """One line: ``running (pid N) at 127.0.0.1:9092`` / ``starting …`` / ``stopped``; a cluster, node by node."""
    if not managed(settings):
        return f"external broker at {settings.kafka_bootstrap} (not managed here)"
    for layout in _layouts(settings):
        pids = {node: _live_pid(node.paths) for node in layout}
        if any(pids.values()):
            return _single_status(layout[0], pids[layout[0]]) if len(layout) == 1 else _cluster_status(pids)
    port = settings.kafka_bootstrap_port
    if _port_open(port):
        return f"stopped (but something not started by hotline.deploy.kafka listens on 127.0.0.1:{port})"
    return "stopped"


def _single_status(node: Node, pid: int | None) -> str:
    state = "running" if _port_open(node.spec.port) else "starting"
    return f"{state} (pid {pid}) at {node.address}"


def _cluster_status(pids: dict[Node, int | None]) -> str:
    """``running: 3 of 3 nodes at …: node 1 pid N, …``, or ``degraded``/``starting`` and which node is not up."""
    states: list[str] = []
    up = starting = 0
    for node, pid in pids.items():
        if pid is None:
            states.append(f"node {node.spec.node_id} stopped")
        elif _port_open(node.spec.port):
            up += 1
            states.append(f"node {node.spec.node_id} pid {pid}")
        else:
            starting += 1
            states.append(f"node {node.spec.node_id} starting (pid {pid})")
    total = len(pids)
    word = "running" if up == total else "starting" if up + starting == total else "degraded"
    where = ",".join(node.address for node in pids)
    return f"{word}: {up} of {total} nodes at {where}: {', '.join(states)}"


# --------------------------------------------------------------------------- topics


async def ensure_topics_async(settings: Settings, topics: dict[str, int], timeout: float = 30) -> list[str]:
    """Create the missing topics with the given partition counts; return the names created.

    Existing topics are left as they are, even with fewer partitions: adding partitions
    silently remaps keys, which must be a deliberate decision.  New topics get
    ``settings.replication_factor`` replicas and ``min.insync.replicas`` (1 and 1 on the
    local single node, 3 and 2 on a cluster of three).
    """
    admin = AIOKafkaAdminClient(request_timeout_ms=int(timeout * 1000), **client_options(settings))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = {name: n for name, n in topics.items() if name not in existing}
        if not missing:
            return []
        replicas = settings.replication_factor
        brokers = len((await admin.describe_cluster())["brokers"])
        if brokers < replicas:
            raise RuntimeError(
                f"topics need {replicas} replicas (HOTLINE_REPLICATION_FACTOR) but {brokers} broker(s) "
                f"at {settings.kafka_bootstrap} are up"
            )
        config = {"min.insync.replicas": str(settings.min_insync_replicas)}
        response = await admin.create_topics(
            [NewTopic(name, n, replicas, topic_configs=config) for name, n in missing.items()],
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
