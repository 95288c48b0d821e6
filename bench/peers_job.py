"""What the peers of ``bench.peers`` share: the worker's job without its I/O, and the child protocol.

**The job** (:class:`Job`) is what ``hotline.streams.app.Pipeline`` does to a delivered batch,
built from the same functions (``hotline.streams.processing``): decode each record with the
contract (``decode``: ``parse_event`` + topic and unit checks, a dead letter otherwise),
classify each event id against what is "stored" and what came earlier in the batch
(``identify``: new, replay, duplicate, conflict), fold order events into the per-order
state (``apply_order_event``: seen ids, deadlines, per-unit day window steps), build
the audit rows (``event_row``) and dead letters. What the worker asks ClickHouse (``stored``
ids) is asked of an in-memory map here, filled with the rows of every folded batch.

**The protocol** between ``bench.peers`` and a peer child process (``python -m
bench.peers_loop`` / ``bench.peers_faust`` / ``bench.peers_quix``):

- the child reads its settings from ``HOTLINE_*`` variables (``hotline.deploy.worker.settings_env``);
- the parent writes one JSON line per *target* to the child's stdin:
  ``{"target": [[topic, partition, last_offset], ...]}``;
- the child writes ``ready`` once it consumes, then ``done <monotonic> <records>`` to the file
  descriptor ``PEERS_REPORT_FD`` as soon as every partition of the current target is
  processed (or stored, for a peer with a sink) up to its offset; ``time.monotonic()``
  is the same clock in every process of the machine, so the parent times from its own
  resume to the child's ``done``;
- stdin closed means the parent is gone: the child stops itself (SIGTERM).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import IO, Any

from hotline.schemas.events import Event, InvalidEvent
from hotline.schemas.registry import Registry, default_registry
from hotline.sinks.base import Batch, DeadLetter, Stored
from hotline.streams.deadlines import DEFAULT_LIMITS
from hotline.streams.processing import (
    Folded,
    OrderState,
    Record,
    Source,
    Verdict,
    apply_order_event,
    decode,
    event_row,
    identify,
)
from hotline.streams.windows import Step

CALLS, ORDERS = "calls", "orders"
REPORT_FD = "PEERS_REPORT_FD"

TP = tuple[str, int]


# --------------------------------------------------------------------------- the job


@dataclass
class Job:
    """The worker's per-batch job (``Batches._write``) without Kafka or ClickHouse."""

    registry: Registry = field(default_factory=default_registry)
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    stored: dict[str, Stored] = field(default_factory=dict)  # stands for the events table's identity lookup
    records: int = 0
    events: int = 0
    counters: int = 0
    duplicates: int = 0
    deadletters: int = 0

    def fold(self, records: list[Record], kind: str, orders: MutableMapping[str, Any]) -> Folded:
        """One delivered batch of one topic: its rows, and the order states it changed (written to ``orders``)."""
        prefix = ("call.",) if kind == CALLS else ("order.",)
        decoded = {r.source: decode(r.value, r.source, self.registry, prefix) for r in records}
        events: list[tuple[Source, Event]] = [(s, d) for s, d in decoded.items() if not isinstance(d, DeadLetter)]
        known = {e.event_id: self.stored[e.event_id] for _, e in events if e.event_id in self.stored}
        identities = identify(events, known)
        folded = Folded(Batch())
        for record in records:
            source = record.source
            try:
                event = decoded[source]
                if isinstance(event, DeadLetter):
                    folded.batch.deadletters.append(DeadLetter(**{**event.__dict__, "key": record.key}))
                    continue
                identity = identities[source]
                if identity.verdict is Verdict.CONFLICT:
                    folded.batch.deadletters.append(_dead(record, f"event_id {event.event_id!r} names another event"))
                    continue
                if identity.verdict is Verdict.DUPLICATE:
                    folded.duplicates += 1
                    continue
                if kind == CALLS:
                    folded.batch.events.append(event_row(event, source))
                else:
                    self._fold_order(folded, event, source, orders, replay=identity.verdict is Verdict.REPLAY)
            except Exception as exc:  # as the worker: a rule that cannot take this record dead-letters it
                folded.batch.deadletters.append(_dead(record, f"could not process: {type(exc).__name__}: {exc}"))
        # "Stored": what the next batches' identity check sees, as the worker's events table.
        for row in folded.batch.events:
            self.stored[row["event_id"]] = Stored(
                row["payload"], row["source_topic"], row["source_partition"], row["source_offset"]
            )
        # One table write per changed order, after the batch, as the worker does.
        for order_id, state in folded.orders.items():
            orders[order_id] = state
        self.records += len(records)
        self.events += len(folded.batch.events)
        self.counters += len(folded.steps)
        self.duplicates += folded.duplicates
        self.deadletters += len(folded.batch.deadletters)
        return folded

    def _fold_order(
        self, folded: Folded, event: Event, source: Source, orders: MutableMapping[str, Any], replay: bool
    ) -> None:
        order_id = str(event.order_id)  # type: ignore[union-attr]  # decode() checked the topic
        state: OrderState | None = folded.orders[order_id] if order_id in folded.orders else orders.get(order_id)
        step = apply_order_event(state, event, source, self.limits)
        if step.duplicate:
            if replay:
                folded.replayed.add(order_id)
            else:
                folded.duplicates += 1
            return
        folded.orders[order_id] = step.state
        if step.row is not None:
            folded.batch.events.append(step.row)
        folded.steps.extend(Step((source.topic, source.partition), source.offset, d) for d in step.counters)

    def summary(self) -> dict[str, int]:
        return {
            "records": self.records,
            "events": self.events,
            "counters": self.counters,
            "duplicates": self.duplicates,
            "deadletters": self.deadletters,
        }


def _dead(record: Record, reason: str) -> DeadLetter:
    source = record.source
    reason = InvalidEvent(reason).reason
    return DeadLetter(source.topic, source.partition, source.offset, reason, record.value or b"", record.key)


def kind_of(topic: str, calls_topic: str) -> str:
    return CALLS if topic == calls_topic else ORDERS


# --------------------------------------------------------------------------- the child's side of the protocol


class Tracker:
    """What a peer child has processed (or stored), per partition; says ``done`` when a target is covered."""

    def __init__(self, out: IO[str]) -> None:
        self._lock = threading.Lock()
        self._out = out
        self.last: dict[TP, int] = {}
        self.count = 0
        self.target: dict[TP, int] | None = None

    def say(self, *words: object) -> None:
        self._out.write(" ".join(str(w) for w in words) + "\n")
        self._out.flush()

    def summary(self, figures: dict[str, Any]) -> None:
        """What the child did, said once on the way out."""
        self.say("summary", json.dumps(figures, ensure_ascii=False))

    def advance(self, topic: str, partition: int, last_offset: int, records: int) -> None:
        """``records`` more processed, up to ``last_offset`` on ``topic[partition]``."""
        with self._lock:
            tp = (topic, partition)
            if last_offset > self.last.get(tp, -1):
                self.last[tp] = last_offset
            self.count += records
            self._check()

    def set_target(self, target: dict[TP, int]) -> None:
        with self._lock:
            self.target = target
            self._check()

    def _check(self) -> None:
        if self.target is not None and all(self.last.get(tp, -1) >= o for tp, o in self.target.items()):
            self.say("done", f"{time.monotonic():.6f}", self.count)
            self.target = None


def child_tracker() -> Tracker:
    """The report channel to the parent, and a thread reading its targets from stdin."""
    fd = os.environ.get(REPORT_FD)
    out: IO[str] = os.fdopen(int(fd), "w", buffering=1) if fd else sys.stdout
    tracker = Tracker(out)

    def read_targets() -> None:
        for line in sys.stdin:
            message = json.loads(line)
            if "target" in message:
                tracker.set_target({(str(t), int(p)): int(o) for t, p, o in message["target"]})
        os.kill(os.getpid(), signal.SIGTERM)  # the parent closed our stdin: it is done with us, or gone

    threading.Thread(target=read_targets, name="peers-targets", daemon=True).start()
    return tracker
