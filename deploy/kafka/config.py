"""What a node is given to run: its ``server.properties``, ``log4j2.properties``, formatted storage, command line.

Why a module of its own: every setting that shapes a broker (ports, quorum, replication, retention)
becomes a property here, and only here; ``start`` and a systemd unit's ``hotline kafka node`` both
write a node's files with :func:`prepare`, so the two run the same broker.
"""

from __future__ import annotations

import base64
import subprocess
import uuid

from hotline.deploy.kafka.layout import KafkaPaths, Node, nodes
from hotline.deploy.kafka.process import BROKER_MAIN, tail_text
from hotline.settings import Settings

# Kafka 4.x keeps the Scala StorageTool in kafka_2.13 (verified against 4.1.1 jars).
STORAGE_TOOL = "kafka.tools.StorageTool"
JVM_OPTS = ("-Xmx512m", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true")

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


def _format_storage(p: KafkaPaths, java: str) -> None:
    """First start only: write meta.properties + bootstrap checkpoint for our cluster id."""
    if (p.data / "meta.properties").is_file():
        return
    cmd = [
        java, "-cp", str(p.libs / "*"), f"-Dlog4j2.configurationFile={p.log4j}",
        STORAGE_TOOL, "format", "-t", _cluster_id(p), "-c", str(p.props), "-g",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=p.home)
    if proc.returncode != 0:
        raise RuntimeError(f"kafka storage format failed:\n{tail_text(proc.stdout + proc.stderr)}")


def prepare(settings: Settings, node: Node, java: str) -> list[str]:
    """Write the node's configuration (every start: settings may have changed), format it once; its command."""
    p = node.paths
    p.data.mkdir(parents=True, exist_ok=True)
    p.props.write_text(server_properties(settings, node))
    p.log4j.write_text(LOG4J2_PROPERTIES)
    _format_storage(p, java)
    return [
        java, *JVM_OPTS, f"-Dlog4j2.configurationFile={p.log4j}",
        "-cp", str(p.libs / "*"), BROKER_MAIN, str(p.props),
    ]  # fmt: skip
