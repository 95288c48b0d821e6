"""Pure stream logic: decode a record, fold an order event into its state, derive counters.

Which counters an event moves is the metric catalogue's (``hotline.schemas.metrics``): a
cohort counter by the order's state at its cohort day and current unit, an event counter
by the event's rule at the event's own day and unit; nothing here names a metric.

No Faust and no I/O here, so every rule is unit-tested directly and the agents
stay thin. Order state is a TypedDict because it lives in a Faust table with
the JSON codec.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any, NamedTuple

from hotline.schemas import metrics
from hotline.schemas.events import (
    Event,
    InvalidEvent,
    OrderCompleted,
    OrderDispatched,
    OrderReturned,
    parse_event,
)
from hotline.schemas.registry import Registry
from hotline.sinks.base import Batch, DeadLetter, OrderRow, ReturnRow, Stored
from hotline.streams import timeline
from hotline.streams.deadlines import TZ, due_at
from hotline.streams.timeline import OrderState, local_day
from hotline.streams.windows import CounterDelta, Step


class Source(NamedTuple):
    """Where a record came from: logged, dead-lettered and checkpointed with it.

    A tuple, not a frozen dataclass: it keys every per-batch map, and a tuple is built and
    hashed in C (the fold's per-record cost, bench/README.md)."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class Record(NamedTuple):
    """One Kafka record as the pipeline sees it, whoever read it (Faust's stream or the gap reader).

    ``unreadable_from`` marks a run of offsets Kafka could not return any more (up to and
    including ``source.offset``): reported and counted, so the ledger can move past it.
    """

    source: Source
    key: bytes | None
    value: bytes | None
    unreadable_from: int | None = None


class Verdict(Enum):
    """What an event id means against what is stored and what came earlier in the batch."""

    NEW = "new"
    REPLAY = "replay"  # this very record was stored before a crash: process it again, idempotently
    DUPLICATE = "duplicate"  # the same event sent again: counted once, skipped
    CONFLICT = "conflict"  # another event under the same id: dead-lettered


class Identity(NamedTuple):
    verdict: Verdict
    other: Source | None = None  # for a duplicate or a conflict: where the first one came from


NEW, REPLAY = Identity(Verdict.NEW), Identity(Verdict.REPLAY)  # shared: one per record otherwise

_PERSONAL = {"caller"}


@functools.cache
def _has_unit(model: type[Event]) -> bool:
    """Whether this event type carries a unit (asked per record: pydantic's field map is not free)."""
    return "unit_id" in model.model_fields


def decode(raw: bytes | None, source: Source, registry: Registry, expected: tuple[str, ...]) -> Event | DeadLetter:
    """An event, or the dead letter that says why it is not one. Never raises: a record's
    content must not be able to stop the worker, whatever it holds."""
    try:
        if raw is None:
            raise InvalidEvent("empty record (null value)")
        event = parse_event(raw)
        if not event.type.startswith(expected):
            raise InvalidEvent(f"event type {event.type!r} does not belong on topic {source.topic}")
        # Call events have no unit: ask the model's fields, not getattr (a miss costs an exception).
        unit_id = event.unit_id if _has_unit(type(event)) else None  # type: ignore[union-attr]
        if unit_id is not None and not registry.knows(unit_id, day := local_day(event.occurred_at)):
            raise InvalidEvent(
                f"unknown unit_id {unit_id!r} on {day}: not in the unit registry (version {registry.version})"
            )
        return event
    except InvalidEvent as exc:
        return DeadLetter(source.topic, source.partition, source.offset, exc.reason, raw or b"")
    except Exception as exc:  # a bug or a limit of a library, triggered by this record alone
        reason = InvalidEvent(f"could not decode: {type(exc).__name__}: {exc}").reason
        return DeadLetter(source.topic, source.partition, source.offset, reason, raw or b"")


@dataclass(frozen=True)
class Decoded:
    """A batch's records decoded, and each event's audit payload: pure work, done once per record
    (the batch reader does it for batch N+1 while batch N is being stored)."""

    events: dict[Source, Event | DeadLetter]
    contents: dict[Source, str]


def decode_batch(
    records: list[Record], registry: Registry, expected: tuple[str, ...], done: Decoded | None = None
) -> Decoded:
    """Decode every readable record of the batch; what ``done`` already holds is not decoded again."""
    events: dict[Source, Event | DeadLetter] = {}
    contents: dict[Source, str] = {}
    for r in records:
        if r.unreadable_from is not None:
            continue
        source = r.source
        if done is not None and source in done.events:
            events[source] = done.events[source]
            if source in done.contents:
                contents[source] = done.contents[source]
            continue
        event = events[source] = decode(r.value, source, registry, expected)
        if not isinstance(event, DeadLetter):
            contents[source] = payload(event)
    return Decoded(events, contents)


def payload(event: Event) -> str:
    """The audit copy of an event (no caller): what is stored, and what identity compares.

    Serialised by pydantic in one pass; byte for byte what ``strip_personal`` makes of the
    event's JSON dict (tested), so payloads stored by earlier versions compare equal.
    """
    return event.model_dump_json(exclude=_PERSONAL, exclude_none=True)


def identify(
    events: list[tuple[Source, Event]], stored: Mapping[str, Stored], contents: Mapping[Source, str] | None = None
) -> dict[Source, Identity]:
    """An event id names one event: classify each against the store and the batch before it.

    The same id with the same content is a duplicate, unless it is the stored record itself
    (same coordinates: a batch replayed after a crash); with other content it is a conflict.
    """
    first: dict[str, tuple[str, Source]] = {event_id: (s.payload, source_of(s)) for event_id, s in stored.items()}
    out: dict[Source, Identity] = {}
    for source, event in events:
        content = contents[source] if contents is not None else payload(event)
        known = first.get(event.event_id)
        if known is None:
            first[event.event_id] = (content, source)
            out[source] = NEW
        elif known[1] == source:
            out[source] = REPLAY
        elif known[0] == content:
            out[source] = Identity(Verdict.DUPLICATE, known[1])
        else:
            out[source] = Identity(Verdict.CONFLICT, known[1])
    return out


def event_row(
    event: Event,
    source: Source,
    due: datetime | None = None,
    due_computed: bool = False,
    content: str | None = None,
) -> dict[str, Any]:
    """The audit row of an event for ClickHouse; the caller's personal data is dropped."""
    row: dict[str, Any] = event.model_dump(exclude=_PERSONAL)
    for text_col in (
        "call_id",
        "order_id",
        "unit_id",
        "call_type",
        "category",
        "order_type",
        "reason",
        "outcome",
        "method",
        "indicator",
    ):
        row[text_col] = row.get(text_col) or ""
    _deduction_columns(row)
    if due is not None:
        row["due_at"] = due
    row["due_computed"] = due_computed
    row["payload"] = payload(event) if content is None else content
    row["source_topic"] = source.topic
    row["source_partition"] = source.partition
    row["source_offset"] = source.offset
    return row


def _deduction_columns(row: dict[str, Any]) -> None:
    """A test call's deductions as the events table's paired arrays, and their total as ``points``."""
    deductions = row.pop("deductions", None) or ()
    row["deduction_items"] = [d["item"] for d in deductions]
    row["deduction_points"] = [d["points"] for d in deductions]
    if deductions:
        row["points"] = sum(d["points"] for d in deductions)


def stateless(event: Event) -> bool:
    """Calls and the provincial checks: stored and counted as they are; no order state moves."""
    return not event.type.startswith("order.")


@dataclass
class OrderStep:
    """The outcome of folding one order event into the order's state."""

    state: OrderState
    row: dict[str, Any] | None
    counters: list[CounterDelta] = field(default_factory=list)
    duplicate: bool = False
    returned: list[ReturnRow] = field(default_factory=list)  # for a return: each month's returns to date


def _delta(unit: str, day: date, metric: str, event_id: str, value: int = 1) -> CounterDelta:
    return CounterDelta(unit, day, metric, event_id, value)


_EVENT_MATCHER = metrics.Matcher(metrics.EVENT_COUNTERS)
_CALL_MATCHER = metrics.Matcher(metrics.CALL_COUNTS)


def _event_metrics(ev: Event) -> list[str]:
    """The catalogue's event counters this event moves, at its own day and unit (calls: the city's)."""
    return _EVENT_MATCHER.names(ev)


def event_deltas(ev: Event) -> list[CounterDelta]:
    """What an event moves by itself, whatever its order's state: its own day's event counters."""
    if ev.type.startswith("check."):
        return []  # counted over the month's events partition (metrics.CheckCount), not windowed
    if ev.type.startswith("call."):
        names = _CALL_MATCHER.names(ev)
        return [_delta(metrics.CITY, local_day(ev.occurred_at), n, ev.event_id) for n in names]
    if isinstance(ev, OrderDispatched | OrderCompleted):
        return []
    unit: str = ev.unit_id  # type: ignore[union-attr]  # every other order event has one
    return [_delta(unit, local_day(ev.occurred_at), n, ev.event_id) for n in _event_metrics(ev)]


def apply_order_event(
    state: OrderState | None,
    ev: Event,
    source: Source,
    limits: dict[str, int] | None = None,
    content: str | None = None,
) -> OrderStep:
    """Fold one order event in at its place in event time: each event id counts once, whatever
    the redelivery, and the same events give the same state and counters in any arrival order.

    The counters moved are the event's own (at its day and unit) and the change of the order's
    cohort contribution, which a late event can move back in time or to another unit
    (``streams/timeline.py``). An event of an order not dispatched yet (a visit, a return, a
    supervision read before the order's dispatch) moves nothing until the dispatch arrives: what
    it would move is held in the order's state (``held``) and released by the dispatch, so an
    order that is never dispatched counts for no unit."""
    if state and timeline.released(state, ev.event_id):
        return released_again(state, ev)
    if timeline.holds(state, ev.event_id):
        return OrderStep(state or OrderState(), None, duplicate=True)
    due = deadline_of(ev, limits)
    computed = isinstance(ev, OrderDispatched) and ev.due_at is None
    new = timeline.add(state, timeline.fact_of(ev, due))
    deltas = [_delta(unit, day, m, ev.event_id, v) for unit, day, m, v in timeline.contribution_change(state, new)]
    own = [] if isinstance(ev, OrderDispatched | OrderCompleted) else event_deltas(ev)
    dispatched = bool(new.get("unit"))
    if not dispatched:
        # Not dispatched yet: what the event moves is held until the order's dispatch arrives.
        held = [[d.unit_id, d.day.isoformat(), d.metric, d.event_id, d.value] for d in own]
        if held:
            new["held"] = [*new.get("held", []), *held]
        own = []
    elif new.get("held"):
        own += [_delta(u, date.fromisoformat(day), m, e, v) for u, day, m, e, v in new.pop("held")]
    returned: list[ReturnRow] = []
    if dispatched and (isinstance(ev, OrderReturned) or not (state or {}).get("unit")):
        # A return before others moves their counts to date (and a dispatch releases the returns
        # held before it): every month's count is written again.
        order_id = str(ev.order_id)  # type: ignore[union-attr]  # an order event: decode() checked the type
        returned = [ReturnRow(month, order_id, times) for month, times in timeline.returns_by_month(new["facts"])]
    return OrderStep(new, event_row(ev, source, due, computed, content), deltas + own, returned=returned)


def released_again(state: OrderState, ev: Event) -> OrderStep:
    """An event dead-lettered as an orphan, sent again (a redrive). Its fact is in the timeline
    already (the cohort counts it since the dispatch came); what it moves by itself counts now,
    once, if its order is dispatched, else is held again (and dead-lettered again past the wait).
    Its audit row is stored already: none is written."""
    new = OrderState(**state)  # type: ignore[typeddict-item]
    rest = [i for i in state.get("released", ()) if i != ev.event_id]
    if rest:
        new["released"] = rest
    else:
        new.pop("released", None)
    own = [] if isinstance(ev, OrderDispatched | OrderCompleted) else event_deltas(ev)
    if not new.get("unit"):
        held = [[d.unit_id, d.day.isoformat(), d.metric, d.event_id, d.value] for d in own]
        new["held"] = [*new.get("held", []), *held]
        own = []
    return OrderStep(new, None, own)


def order_row(order_id: str, state: OrderState) -> OrderRow | None:
    """The order's state as ClickHouse keeps it; None before its first dispatch (no cohort yet)."""
    if not state.get("unit") or "cohort_day" not in state:
        return None
    ids = timeline.event_ids(state)
    completed = state.get("completed_at")
    return OrderRow(
        order_id,
        date.fromisoformat(state["cohort_day"]),
        state["unit"],
        state.get("first_type") or state.get("order_type", ""),
        datetime.fromisoformat(state["due"]),
        datetime.fromisoformat(completed) if completed else None,
        int(state.get("returns", 0)),
        tuple(ids),
        len(ids),
        int(state.get("unsatisfied", 0)),
        datetime.fromisoformat(state["supervision_due"]) if state.get("supervision_due") else None,
        bool(state.get("supervised", False)),
    )


def deadline_of(ev: Event, limits: dict[str, int] | None) -> datetime | None:
    """A dispatch's deadline: given with it, or computed in working days; None for other events."""
    if not isinstance(ev, OrderDispatched):
        return None
    return ev.due_at or due_at(ev.occurred_at, ev.order_type, limits)


def state_from_events(events: Iterable[Event], limits: dict[str, int] | None, gen: int) -> OrderState:
    """An order's state folded from its events, in whatever order they are given."""
    facts = sorted((timeline.fact_of(ev, deadline_of(ev, limits)) for ev in events), key=timeline.sort_key)
    state = timeline.refold(facts)
    state["gen"] = gen
    return state


def state_of(row: OrderRow, gen: int) -> OrderState:
    """An order's state as its ClickHouse row says, for reading (alerts, gauges): without its
    timeline, so never folded on; the fold reads its orders with their events
    (``history.read_back``)."""
    state = OrderState(
        unit=row.unit_id,
        due=_aware(row.due).isoformat(),
        order_type=row.order_type,
        first_type=row.order_type,
        cohort_day=row.cohort_day.isoformat(),
        completed_on_time=None,
        returns=row.returns,
        gen=gen,
        unsatisfied=row.unsatisfied_visits,
        supervised=row.supervised,
    )
    if row.supervision_due is not None:
        state["supervision_due"] = _aware(row.supervision_due).isoformat()
    if row.completed_at is not None:
        state["completed_at"] = _aware(row.completed_at).isoformat()
        state["completed_on_time"] = row.completed_at <= row.due
    return state


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=TZ)


@dataclass
class Folded:
    """A batch folded: the rows for the store, the orders whose state changed, duplicates skipped."""

    batch: Batch
    orders: dict[str, OrderState] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)  # what the events move in the day windows
    duplicates: int = 0
    replayed: set[str] = field(default_factory=set)  # orders whose events an earlier attempt stored


def source_of(row: DeadLetter | Stored) -> Source:
    """Where a dead letter's record, or a stored event's, came from."""
    return Source(row.source_topic, row.source_partition, row.source_offset)


def row_source(row: Mapping[str, Any]) -> Source:
    """Where an event row's record came from (its source columns)."""
    return Source(row["source_topic"], row["source_partition"], row["source_offset"])


def split_by_source(batch: Batch) -> dict[Source, Batch]:
    """The batch's content rows per source record, to find which record the store refuses
    (windows, order states and returns are numbers and validated ids, derived from them)."""
    parts: dict[Source, Batch] = {}
    for row in batch.events:
        parts.setdefault(row_source(row), Batch()).events.append(row)
    for dead in batch.deadletters:
        parts.setdefault(source_of(dead), Batch()).deadletters.append(dead)
    return parts
