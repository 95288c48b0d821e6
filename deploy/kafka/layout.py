"""Where the managed Kafka lives: its nodes, their ports and their files, and which bootstrap is ours.

Why a module of its own: start, stop, status, the jars and the configuration must agree on one
layout, and on one answer to "is this bootstrap our local cluster or somebody else's broker?".

A single node lives in ``<var>/kafka/``: ``data/`` (log dirs and KRaft metadata),
``server.properties``, ``log4j2.properties``, ``cluster.id``, ``kafka.pid`` and ``kafka.log``
(the previous run's output is kept as ``kafka.log.1``).  Node i of a cluster of n has the same
files in ``<var>/kafka/cluster-<n>/node-<i>/`` (the cluster id one level up); the jars and the
launcher's lock are shared.  Ports follow ``Settings.kafka_nodes`` (the one port rule).

Only a bootstrap of 127.0.0.1/localhost entries on that rule's ports is managed; any other
broker is external and ``start``/``stop`` leave it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hotline.settings import KafkaNode, Settings

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


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


def layouts(settings: Settings) -> list[list[Node]]:
    """Every cluster this var directory holds (the single node first): stop and status cover them all."""
    sizes = {1, settings.kafka_brokers}
    for folder in (settings.var_path / "kafka").glob("cluster-*"):
        size = folder.name.removeprefix("cluster-")
        if size.isdigit() and int(size) > 1:
            sizes.add(int(size))
    return [nodes(settings, n) for n in sorted(sizes)]


def bootstrap_ports(settings: Settings) -> list[int] | None:
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
    ports = bootstrap_ports(settings)
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
