"""Peers of ``bench.peers`` on a plain aiokafka ``getmany`` loop (a child process; see ``bench.peers_job``).

    python -m bench.peers_loop job    # the worker's job (bench.peers_job.Job), no sink
    python -m bench.peers_loop bare   # bare getmany: records counted, nothing else (the baseline)

The consumer is assigned every partition of the calls and orders topics (no group, so
no session to lose while paused) and reads them from the beginning. ``job`` folds each
``getmany`` result per topic, as the worker's agents fold a batch of one topic, with the
per-order state in a dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.peers_job import Job, Tracker, child_tracker, kind_of
from hotline.heap import for_long_runs
from hotline.settings import Settings
from hotline.streams.processing import Record, Source


async def run(settings: Settings, mode: str, tracker: Tracker) -> Job:
    options = settings.kafka_client_options()
    consumer = AIOKafkaConsumer(enable_auto_commit=False, auto_offset_reset="earliest", **options)
    await consumer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    job = Job(limits={**Job().limits, **settings.deadline_days})
    orders: dict[str, Any] = {}
    try:
        topics = (settings.calls_topic, settings.orders_topic)
        tps = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        tracker.say("ready")
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            if mode == "job":
                by_topic: dict[str, list[Record]] = {}
                for tp, messages in batch.items():
                    by_topic.setdefault(tp.topic, []).extend(
                        Record(Source(m.topic, m.partition, m.offset), m.key, m.value) for m in messages
                    )
                for topic, records in by_topic.items():
                    job.fold(records, kind_of(topic, settings.calls_topic), orders)
            for tp, messages in batch.items():
                if messages:
                    tracker.advance(tp.topic, tp.partition, messages[-1].offset, len(messages))
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
    return job


def main(argv: list[str] | None = None) -> int:
    for_long_runs()  # the worker's collector policy (hotline.heap): the same for every contender
    args = sys.argv[1:] if argv is None else argv
    mode = args[0] if args else "job"
    if mode not in ("job", "bare"):
        print(f"usage: python -m bench.peers_loop job|bare (not {mode!r})", file=sys.stderr)
        return 2
    tracker = child_tracker()
    job = asyncio.run(run(Settings(), mode, tracker))
    tracker.summary(job.summary() if mode == "job" else {"records": tracker.count})
    return 0


if __name__ == "__main__":
    sys.exit(main())
