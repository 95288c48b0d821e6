"""Talking to a running cluster with aiokafka's admin client: does it answer, how many brokers, our topics.

Why a module of its own: these work on any cluster, managed here or external (``start`` and
``stop`` do not), and they are the only part that is a Kafka client rather than a launcher.  Its
connection options are ``Settings.kafka_client_options()``, the one place they are built.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hotline.deploy.kafka.layout import bootstrap_ports, managed
from hotline.deploy.kafka.process import port_open
from hotline.settings import Settings

_TOPIC_ALREADY_EXISTS = 36

T = TypeVar("T")


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka connection kwargs: ``Settings.kafka_client_options()``.

    The managed nodes only have a PLAINTEXT listener, so for them the security settings (meant
    for an external cluster) are left out.
    """
    if managed(settings):
        settings = settings.model_copy(update={"kafka_security_protocol": "PLAINTEXT", "kafka_sasl_mechanism": None})
    return settings.kafka_client_options()


def _admin(settings: Settings, timeout: float) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(request_timeout_ms=int(timeout * 1000), **client_options(settings))


def run(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from sync code, even when the caller already has a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


async def _answers_async(settings: Settings, timeout: float) -> bool:
    admin = _admin(settings, timeout)
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
    ports = bootstrap_ports(settings) if managed(settings) else None
    if ports is not None and not any(port_open(port) for port in ports):
        return False  # fast path: avoids aiokafka's connection-error log spam
    return run(lambda: _answers_async(settings, timeout))


async def _brokers_async(settings: Settings, timeout: float) -> int:
    admin = _admin(settings, timeout)
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
    return run(lambda: _brokers_async(settings, timeout))


async def ensure_topics_async(settings: Settings, topics: dict[str, int], timeout: float = 30) -> list[str]:
    """Create the missing topics with the given partition counts; return the names created.

    Existing topics are left as they are, even with fewer partitions: adding partitions
    silently remaps keys, which must be a deliberate decision.  New topics get
    ``settings.replication_factor`` replicas and ``min.insync.replicas`` (1 and 1 on the
    local single node, 3 and 2 on a cluster of three).
    """
    admin = _admin(settings, timeout)
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
    return run(lambda: ensure_topics_async(settings, topics))


async def delete_topics_async(settings: Settings, prefixes: tuple[str, ...], timeout: float = 30) -> list[str]:
    """Delete every topic whose name starts with one of ``prefixes``; return their names."""
    admin = _admin(settings, timeout)
    try:
        await admin.start()
        ours = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if ours:
            await admin.delete_topics(ours, timeout_ms=int(timeout * 1000))
        return ours
    finally:
        await admin.close()


def delete_topics(settings: Settings, prefixes: tuple[str, ...]) -> list[str]:
    """Sync wrapper of :func:`delete_topics_async`: what runs and tests made on a shared broker,
    gone afterwards (a broker that keeps thousands of partitions runs out of heap)."""
    return run(lambda: delete_topics_async(settings, prefixes))


async def _members_async(settings: Settings, timeout: float) -> list[str]:
    admin = _admin(settings, timeout)
    try:
        await asyncio.wait_for(admin.start(), timeout)
        responses = await asyncio.wait_for(admin.describe_consumer_groups([settings.app_id]), timeout)
    finally:
        await admin.close()
    members: list[str] = []
    for response in responses:
        for group in response.to_object()["groups"]:
            if group["group"] == settings.app_id and group["state"] not in ("Empty", "Dead"):
                members += [f"{m['client_id']}@{m['client_host']}" for m in group["members"]]
    return members


def group_members(settings: Settings, timeout: float = 10.0) -> list[str]:
    """The live members of the workers' consumer group (``HOTLINE_APP_ID``), as Kafka's group
    coordinator knows them: ``client_id@host`` each. Kafka, not the store's memory, is the one
    that knows which workers run (the store learns of a worker only from its next call)."""
    return run(lambda: _members_async(settings, timeout))


def pipeline_topics(settings: Settings) -> dict[str, int]:
    """The pipeline's own topics, all with ``settings.partitions`` partitions."""
    names = (
        settings.calls_topic,
        settings.orders_topic,
        settings.alerts_topic,
        settings.deadletter_topic,
    )
    return dict.fromkeys(names, settings.partitions)
