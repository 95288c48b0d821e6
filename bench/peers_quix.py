"""Quix Streams doing the worker's job, with a chDB sink on its ``BatchingSink``, for ``bench.peers``.

    python -m bench.peers_quix          (a child process; see ``bench.peers_job`` for the protocol)

One ``Application`` (consumer group = the run's app id, from the earliest offset, at-least-once,
state in RocksDB under ``<var>/quix-state`` with changelog topics, as Quix does by default)
and one ``StreamingDataFrame`` per topic:

- each record is decoded with the contract (``hotline.streams.processing.decode``);
- orders: the order's state lives in Quix state under the record key (the order id), folded
  with ``apply_order_event`` (seen ids, so each event id counts once; deadlines; the per-unit
  day ``CounterDelta`` rows) and written back; calls: the call's seen event ids in Quix state;
- the audit row (``event_row``), counter rows and dead letters go to :class:`ClickHouseBatchingSink`,
  whose ``write(batch)`` (one per topic partition at each Quix checkpoint) is one
  ``hotline.sinks.clickhouse.ClickHouseStore.write`` of a ``Batch``: the worker's own insert path,
  into this process's own chDB directory ``<var>/clickhouse``.

The child reports a partition done when the sink has *written* its records (Quix then
flushes its changelog and commits the offsets). ``PEERS_QUIX_COMMIT_INTERVAL`` (seconds,
default 1.0; Quix's default is 5.0) is the checkpoint interval, i.e. how often the sink
is flushed.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from quixstreams import Application, State, message_context
from quixstreams.sinks import BatchingSink, SinkBatch

from bench.peers_job import Tracker, child_tracker
from hotline.heap import for_long_runs
from hotline.schemas.registry import default_registry
from hotline.settings import Settings
from hotline.sinks.base import Batch, DeadLetter
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.streams.deadlines import limits_of
from hotline.streams.processing import Source, apply_order_event, decode, event_row
from hotline.streams.windows import CounterDelta, Step, Windows
from hotline.streams.windows import rows as window_rows

COMMIT_INTERVAL = "PEERS_QUIX_COMMIT_INTERVAL"


@dataclass
class Out:
    """What one record produced, for the sink."""

    row: dict[str, Any] | None = None
    counters: list[CounterDelta] = field(default_factory=list)  # staged into day windows by the sink
    dead: DeadLetter | None = None
    duplicate: bool = False


class ClickHouseBatchingSink(BatchingSink):
    """The worker's ClickHouse tables, written through its ``ClickHouseStore``, one ``Batch`` per Quix batch."""

    def __init__(self, settings: Settings, tracker: Tracker) -> None:
        super().__init__()
        self.settings = settings
        self.tracker = tracker
        self.store: ClickHouseStore | None = None
        self.writes = 0
        self.windows = Windows()  # the day windows, as the worker keeps them

    def setup(self) -> None:
        store = ClickHouseStore(self.settings)
        store.migrate()
        self.store = store

    def write(self, batch: SinkBatch) -> None:
        assert self.store is not None, "sink not set up"
        rows = Batch()
        last = -1
        steps: list[Step] = []
        for item in batch:
            out: Out = item.value
            if out.row is not None:
                rows.events.append(out.row)
            steps.extend(Step((batch.topic, batch.partition), item.offset, d) for d in out.counters)
            if out.dead is not None:
                rows.deadletters.append(out.dead)
            last = max(last, item.offset)
        staged = self.windows.stage(steps)
        rows.windows = window_rows(staged)
        self.store.write(rows)
        self.windows.commit(staged)
        self.writes += 1
        self.tracker.advance(batch.topic, batch.partition, last, batch.size)


def build(settings: Settings, tracker: Tracker) -> tuple[Application, ClickHouseBatchingSink]:
    registry = default_registry()
    limits = limits_of(settings)
    app = Application(
        broker_address=settings.kafka_bootstrap,
        consumer_group=settings.app_id,
        auto_offset_reset="earliest",
        commit_interval=float(os.environ.get(COMMIT_INTERVAL, "1.0")),
        state_dir=str(settings.var_path / "quix-state"),
        consumer_extra_config={"session.timeout.ms": int(settings.session_timeout_s * 1000)},
        processing_guarantee="at-least-once",
        loglevel="WARNING",
    )
    calls = app.topic(settings.calls_topic, key_deserializer="bytes", value_deserializer="bytes")
    orders = app.topic(settings.orders_topic, key_deserializer="bytes", value_deserializer="bytes")
    sink = ClickHouseBatchingSink(settings, tracker)

    def source() -> Source:
        ctx = message_context()
        return Source(ctx.topic, ctx.partition, ctx.offset)

    def call_step(value: bytes | None, state: State) -> Out:
        where = source()
        event = decode(value, where, registry, ("call.",))
        if isinstance(event, DeadLetter):
            return Out(dead=event)
        seen: list[str] = state.get("seen") or []
        if event.event_id in seen:
            return Out(duplicate=True)
        state.set("seen", [*seen, event.event_id])
        return Out(row=event_row(event, where))

    def order_step(value: bytes | None, state: State) -> Out:
        where = source()
        event = decode(value, where, registry, ("order.",))
        if isinstance(event, DeadLetter):
            return Out(dead=event)
        step = apply_order_event(state.get("order"), event, where, limits)
        if step.duplicate:
            return Out(duplicate=True)
        state.set("order", step.state)
        return Out(row=step.row, counters=step.counters)

    app.dataframe(calls).apply(call_step, stateful=True).sink(sink)
    app.dataframe(orders).apply(order_step, stateful=True).sink(sink)
    return app, sink


def main() -> int:
    for_long_runs()  # the worker's collector policy (hotline.heap): the same for every contender
    settings = Settings()
    tracker = child_tracker()
    app, sink = build(settings, tracker)
    tracker.say("ready")
    try:
        app.run()
    finally:
        counts = sink.store.counts() if sink.store is not None else {}
        tracker.summary({"records": tracker.count, "sink_writes": sink.writes, "stored": counts})
    return 0


if __name__ == "__main__":
    sys.exit(main())
