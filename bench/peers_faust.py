"""A bare Faust agent with the worker's state layout, for ``bench.peers`` (a child process).

    python -m bench.peers_faust

The worker's Faust set-up without its sink, ledger, alerts or web pages: the same app
options (memory table store, at-least-once, commit every ``batch_size`` or 1 s), raw
bytes topics, the per-order table ``order-state`` (JSON values, changelog, partitioner),
and one agent per topic taking ``take_events(batch_size, within=batch_within_s)``.
Each batch goes through the worker's job (``bench.peers_job.Job``: decode, identity,
order fold, counters, audit rows); changed orders are written to the table once per
batch, and an orders batch waits for the changelog flush, as the worker does.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import faust
from faust.types import EventT, StreamT

from bench.peers_job import CALLS, ORDERS, Job, Tracker, child_tracker
from hotline.heap import for_long_runs
from hotline.settings import Settings
from hotline.streams.processing import Record, Source
from hotline.streams.transport import broker_urls


def build(settings: Settings, tracker: Tracker, job: Job) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=broker_urls(settings),
        store=settings.table_store,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee="at_least_once",
        web_enabled=False,
        web_port=settings.web_port,
        datadir=str(settings.var_path / "faust"),
        consumer_auto_offset_reset="earliest",
        broker_commit_every=settings.batch_size,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
    )

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )

    orders = app.Table("order-state", default=None, key_type=str, partitions=settings.partitions, use_partitioner=True)

    async def handle(events: list[EventT], kind: str) -> None:
        records = [
            Record(Source(e.message.topic, e.message.partition, e.message.offset), e.message.key, e.message.value)
            for e in events
        ]
        folded = job.fold(records, kind, orders)
        if kind == ORDERS and folded.orders:
            await app.producer.flush()  # the worker's flush_changelog before its ledger moves
        last: dict[tuple[str, int], list[int]] = {}
        for r in records:
            span = last.setdefault((r.source.topic, r.source.partition), [r.source.offset, 0])
            span[0] = max(span[0], r.source.offset)
            span[1] += 1
        for (topic, partition), (offset, count) in last.items():
            tracker.advance(topic, partition, offset, count)

    async def calls_agent(stream: StreamT[bytes]) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):  # type: ignore[attr-defined]
            await handle(events, CALLS)

    async def orders_agent(stream: StreamT[bytes]) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within_s):  # type: ignore[attr-defined]
            await handle(events, ORDERS)

    async def ready() -> None:
        tracker.say("ready")

    app.agent(raw_topic(settings.calls_topic), name="calls")(calls_agent)
    app.agent(raw_topic(settings.orders_topic), name="orders")(orders_agent)
    app.task(ready)
    return app


def main() -> int:
    for_long_runs()  # the worker's collector policy (hotline.heap): the same for every contender
    settings = Settings()
    tracker = child_tracker()
    job = Job(limits={**Job().limits, **settings.deadline_days})
    app = build(settings, tracker, job)
    worker: Any = faust.Worker(app, loglevel=logging.WARNING, quiet=True)
    try:
        worker.execute_from_commandline()
    finally:
        tracker.summary(job.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
