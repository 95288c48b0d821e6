"""Apache Kafka 4.x (KRaft) on this machine, one node or a cluster, run straight from Maven Central jars.

Why this exists: the pipeline needs a real broker for development and integration tests,
and the machine has Java 17 + Maven but no Docker.  Maven resolves ``kafka_2.13`` and
its runtime closure (``deploy/pom.xml``) into ``<var>/kafka/libs``; we then run
``kafka.Kafka`` ourselves, each node a combined broker+controller with a static quorum of
every node (one by default, ``Settings.kafka_brokers`` for a cluster, e.g. three).

One module per job, this package re-exporting what the rest of ``hotline`` uses
(``from hotline.deploy import kafka; kafka.start(settings)``):

- :mod:`~hotline.deploy.kafka.layout`: the nodes, their ports and files; whether a bootstrap is ours;
- :mod:`~hotline.deploy.kafka.jars`: Kafka's jars through Maven (``POM``), and the ``java`` to run them;
- :mod:`~hotline.deploy.kafka.config`: a node's ``server.properties``, storage format and command line;
- :mod:`~hotline.deploy.kafka.process`: pid files, liveness, the launcher's lock, spawning and signals;
- :mod:`~hotline.deploy.kafka.admin`: a running cluster through aiokafka: ``answers``, brokers, topics;
- :mod:`~hotline.deploy.kafka.control`: ``start``, ``stop``, ``status`` and ``run_node`` over all of them.

CLI: ``hotline kafka start|stop|status|node N``.
"""

from hotline.deploy.kafka.admin import (
    answers,
    client_options,
    delete_topics,
    delete_topics_async,
    ensure_topics,
    ensure_topics_async,
    group_members,
    pipeline_topics,
    registered_brokers,
)
from hotline.deploy.kafka.config import JVM_OPTS, LOG4J2_PROPERTIES, STORAGE_TOOL, server_properties
from hotline.deploy.kafka.control import run_node, start, status, stop
from hotline.deploy.kafka.jars import POM, ensure_jars
from hotline.deploy.kafka.layout import (
    LOCAL_HOSTS,
    KafkaPaths,
    Node,
    local_bootstrap,
    managed,
    managed_port,
    nodes,
    paths,
)
from hotline.deploy.kafka.process import BROKER_MAIN

__all__ = [
    "BROKER_MAIN",
    "JVM_OPTS",
    "LOCAL_HOSTS",
    "LOG4J2_PROPERTIES",
    "POM",
    "STORAGE_TOOL",
    "KafkaPaths",
    "Node",
    "answers",
    "client_options",
    "delete_topics",
    "delete_topics_async",
    "ensure_jars",
    "ensure_topics",
    "ensure_topics_async",
    "group_members",
    "local_bootstrap",
    "managed",
    "managed_port",
    "nodes",
    "paths",
    "pipeline_topics",
    "registered_brokers",
    "run_node",
    "server_properties",
    "start",
    "status",
    "stop",
]
