"""``hotline kafka start|stop|status|node``: bring the managed node(s) up, wait until they serve, stop them, report.

Why a module of its own: this is the policy over the other modules (layout, jars, configuration,
processes, admin): a start is idempotent and restarts only the nodes that are down, a cluster's
nodes are waited for together, a failed start leaves no half-started JVM behind, one var
directory runs one Kafka, and an external broker is never started or killed.
"""

from __future__ import annotations

import os
import time

from hotline.deploy.kafka.admin import answers, registered_brokers
from hotline.deploy.kafka.config import prepare
from hotline.deploy.kafka.jars import ensure_jars, java
from hotline.deploy.kafka.layout import Node, layouts, managed, nodes, paths
from hotline.deploy.kafka.process import abandon, alive, live_pid, locked, port_open, spawn, tail, terminate_all
from hotline.settings import Settings


def _at(settings: Settings, node: Node) -> Settings:
    """Settings of a client of this node alone: to ask one node, not whichever answers first."""
    return settings.model_copy(update={"kafka_bootstrap": node.address})


def _who(node: Node, pid: int) -> str:
    return f"Kafka (pid {pid})" if node.brokers == 1 else f"Kafka node {node.spec.node_id} (pid {pid})"


def _external(settings: Settings, action: str) -> str:
    where = settings.kafka_bootstrap
    return f"Kafka at {where} is external (not 127.0.0.1/localhost): {action} skipped"


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
            if not alive(pid):
                log = node.paths.log
                raise RuntimeError(f"{_who(node, pid)} exited during startup; tail of {log}:\n{tail(log)}")
            if answers(_at(settings, node), timeout=left):
                del waiting[node]
        if not waiting and (len(cluster) == 1 or registered_brokers(whole, left) >= len(cluster)):
            return
        time.sleep(0.3)
    late = next(iter(waiting.items()), None)
    if late is None:
        raise RuntimeError(f"the {len(cluster)} nodes at {whole.kafka_bootstrap} did not all register in time")
    node, pid = late
    raise RuntimeError(f"{_who(node, pid)} did not answer in time; tail of {node.paths.log}:\n{tail(node.paths.log)}")


def start(settings: Settings, timeout: float = 90) -> str:
    """Start the local node(s) detached and return once they serve metadata; idempotent.

    On a cluster, the nodes that are not running are started (a killed node is restarted
    this way) and the others left alone.
    """
    if not managed(settings):
        return _external(settings, "start")
    cluster = nodes(settings)
    with locked(cluster[0].paths):
        return _start_locked(settings, cluster, timeout)


def _start_locked(settings: Settings, cluster: list[Node], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    _refuse_other_layouts(settings, cluster)
    running: dict[Node, int | None] = {}  # None: something not started by us answers there
    booting: dict[Node, int] = {}  # launched (e.g. by a concurrent start) but not answering yet
    missing: list[Node] = []
    for node in cluster:
        pid = live_pid(node.paths)
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
            if port_open(busy):
                raise RuntimeError(f"port {busy} is in use by something that is not a Kafka broker we manage")
    t0 = time.monotonic()
    launched = _launch(settings, missing) if missing else {}
    try:
        _wait_ready(settings, cluster, {**booting, **launched}, deadline)
    except RuntimeError:
        abandon(launched)  # don't leave half-started nodes holding the ports
        raise
    return _started(cluster, running, booting, launched, time.monotonic() - t0)


def _refuse_other_layouts(settings: Settings, cluster: list[Node]) -> None:
    """One Kafka per var directory: a single node and a cluster would want the same ports."""
    for layout in layouts(settings):
        if layout[0].brokers == cluster[0].brokers:
            continue
        pids = [pid for node in layout if (pid := live_pid(node.paths)) is not None]
        if pids:
            what = "a single node" if layout[0].brokers == 1 else f"a cluster of {layout[0].brokers}"
            raise RuntimeError(
                f"{what} runs from {settings.var_path / 'kafka'} (pid {', '.join(map(str, pids))}): "
                "stop it first (hotline kafka stop)"
            )


def _launch(settings: Settings, missing: list[Node]) -> dict[Node, int]:
    """Format (first time) and spawn each node; on a failure, the ones already spawned are stopped."""
    ensure_jars(settings)
    jvm = java()
    launched: dict[Node, int] = {}
    try:
        for node in missing:
            launched[node] = spawn(node, prepare(settings, node, jvm))
    except BaseException:
        abandon(launched)
        raise
    return launched


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
    with locked(node.paths):
        pid = live_pid(node.paths)
        if pid is not None:
            raise RuntimeError(f"{_who(node, pid)} already runs")
        ensure_jars(settings)
        cmd = prepare(settings, node, java())
        node.paths.pid.write_text(f"{os.getpid()}\n")  # exec keeps the pid
    os.execv(cmd[0], cmd)


def stop(settings: Settings, timeout: float = 30) -> str:
    """Stop every node started by :func:`start` (the single node or a whole cluster); harmless when none runs."""
    if not managed(settings):
        return _external(settings, "stop")
    with locked(paths(settings)):
        return _stop_locked(settings, timeout)


def _stop_locked(settings: Settings, timeout: float) -> str:
    live = {node: pid for layout in layouts(settings) for node in layout if (pid := live_pid(node.paths))}
    if not live:
        for layout in layouts(settings):
            for node in layout:
                node.paths.pid.unlink(missing_ok=True)
        port = settings.kafka_bootstrap_port
        if port_open(port):
            return f"not running under hotline.deploy.kafka, but something listens on 127.0.0.1:{port}; left alone"
        return "not running"
    graceful = terminate_all(list(live.values()), timeout)
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
    for layout in layouts(settings):
        pids = {node: live_pid(node.paths) for node in layout}
        if any(pids.values()):
            return _single_status(layout[0], pids[layout[0]]) if len(layout) == 1 else _cluster_status(pids)
    port = settings.kafka_bootstrap_port
    if port_open(port):
        return f"stopped (but something not started by hotline.deploy.kafka listens on 127.0.0.1:{port})"
    return "stopped"


def _single_status(node: Node, pid: int | None) -> str:
    state = "running" if port_open(node.spec.port) else "starting"
    return f"{state} (pid {pid}) at {node.address}"


def _cluster_status(pids: dict[Node, int | None]) -> str:
    """``running: 3 of 3 nodes at …: node 1 pid N, …``, or ``degraded``/``starting`` and which node is not up."""
    states: list[str] = []
    up = starting = 0
    for node, pid in pids.items():
        if pid is None:
            states.append(f"node {node.spec.node_id} stopped")
        elif port_open(node.spec.port):
            up += 1
            states.append(f"node {node.spec.node_id} pid {pid}")
        else:
            starting += 1
            states.append(f"node {node.spec.node_id} starting (pid {pid})")
    total = len(pids)
    word = "running" if up == total else "starting" if up + starting == total else "degraded"
    where = ",".join(node.address for node in pids)
    return f"{word}: {up} of {total} nodes at {where}: {', '.join(states)}"
