"""A batch of records folded into what the store keeps: one engine for the stream, imports and restatements.

Given the batch's records, each one's decoded event (or dead letter), its identity against
the store, and the current state of the orders it touches, :func:`fold` yields the audit
rows, the dead letters, the new order states (and their ClickHouse rows), the returns, and
the window steps. No I/O: the caller fetches what it reads (identities, order states) and
writes what comes out, so the worker (Kafka records), ``hotline import`` (lines of a file)
and ``hotline restate`` (stored events) count exactly alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date

from hotline.schemas.events import Event, InvalidEvent
from hotline.sinks.base import RETRACTED, Batch, DeadLetter, OrderRow
from hotline.streams import timeline
from hotline.streams.deadletters import CONFLICT_HEADER
from hotline.streams.processing import (
    Folded,
    Identity,
    OrderState,
    Record,
    Source,
    Verdict,
    apply_order_event,
    event_deltas,
    event_row,
    order_row,
    stateless,
)
from hotline.streams.windows import Step

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inputs:
    """What a fold reads besides the records: decoded events, identities, refusals, states."""

    decoded: Mapping[Source, Event | DeadLetter]
    identities: Mapping[Source, Identity]
    contents: Mapping[Source, str]  # each event's audit payload, serialised once
    states: Mapping[str, OrderState | None]  # the orders of the batch as they stand before it
    refused: Mapping[Source, DeadLetter]  # records the store refused on an earlier attempt


def fold(
    records: list[Record],
    inputs: Inputs,
    limits: dict[str, int],
    gen: int,
    max_events: int | None = timeline.MAX_ORDER_EVENTS,
) -> Folded:
    """The batch's rows and order states; each record's failure is that record's dead letter.

    ``max_events``: the most events one order may hold (None: no limit, for a restatement of
    events already accepted); an event past it is dead-lettered, so that no order's state can
    outgrow a Kafka record (its changelog) however many events it is sent."""
    folded = Folded(Batch())
    for record in records:
        try:
            dead = dead_letter_of(record, inputs)
            if dead is not None:
                folded.batch.deadletters.append(dead)
                continue
            refused = _fold_event(folded, record.source, inputs, limits, gen, max_events)
            if refused is not None:
                folded.batch.deadletters.append(dead_letter(record, refused))
        except Exception as exc:  # a rule that cannot take this record: it, not the city, stops
            reason = InvalidEvent(f"could not process: {type(exc).__name__}: {exc}").reason
            folded.batch.deadletters.append(dead_letter(record, reason))
    for order_id, state in folded.orders.items():
        row = order_row(order_id, state)
        if row is not None:
            folded.batch.orders.append(row)
            folded.batch.orders.extend(moved_from(inputs.states.get(order_id), row))
    return folded


def moved_from(before: OrderState | None, row: OrderRow) -> list[OrderRow]:
    """The row that retracts an order from the cohort month it leaves, if it leaves one.

    An order's row lives in the partition of its cohort month, and reads deduplicate within a
    partition only; when an earlier dispatch arrives late and moves the cohort to another
    month, the old month gets a row of the same order and a newer version with no unit
    (:data:`RETRACTED`), which every read of the order states skips."""
    if not before or "cohort_day" not in before or not before.get("unit"):
        return []
    old = date.fromisoformat(before["cohort_day"])
    if (old.year, old.month) == (row.cohort_day.year, row.cohort_day.month):
        return []
    return [replace(row, cohort_day=old, unit_id=RETRACTED, seen=())]


def _fold_event(
    folded: Folded, source: Source, inputs: Inputs, limits: dict[str, int], gen: int, max_events: int | None
) -> str | None:
    """Fold one event in; the reason it cannot be, if so."""
    event = inputs.decoded[source]
    assert not isinstance(event, DeadLetter)
    identity = inputs.identities[source]
    tp = (source.topic, source.partition)
    if identity.verdict is Verdict.DUPLICATE and (stateless(event) or not _released(folded, inputs, event)):
        folded.duplicates += 1
        return None
    if stateless(event):
        folded.batch.events.append(event_row(event, source, content=inputs.contents[source]))
        folded.steps.extend(Step(tp, source.offset, d) for d in event_deltas(event))
        return None
    order_id = str(event.order_id)  # type: ignore[union-attr]  # decode() checked the type
    state = folded.orders[order_id] if order_id in folded.orders else inputs.states.get(order_id)
    held = len(state.get("facts", ())) if state else 0
    if max_events is not None and held >= max_events and not timeline.holds(state, event.event_id):
        return (
            f"order {order_id!r} already holds {held} events, the most one order may hold "
            "(HOTLINE_MAX_ORDER_EVENTS): not folded"
        )
    step = apply_order_event(state, event, source, limits, inputs.contents[source])
    if step.duplicate:
        # Already in the order's state: a replay after a crash, or the same event again.
        if identity.verdict is Verdict.REPLAY:
            folded.replayed.add(order_id)
        else:
            folded.duplicates += 1
        log.debug("order %s already holds event %s (%s)", order_id, event.event_id, source)
        return None
    step.state["gen"] = gen
    folded.orders[order_id] = step.state
    if step.row is not None:
        folded.batch.events.append(step.row)
    folded.batch.returns.extend(step.returned)
    folded.steps.extend(Step(tp, source.offset, d) for d in step.counters)
    return None


def _released(folded: Folded, inputs: Inputs, event: Event) -> bool:
    """An orphan's event sent again (stored, so a duplicate by its id, but never counted): folded."""
    order_id = str(event.order_id)  # type: ignore[union-attr]  # an order event
    state = folded.orders[order_id] if order_id in folded.orders else inputs.states.get(order_id)
    return timeline.released(state, event.event_id)


def dead_letter_of(record: Record, inputs: Inputs) -> DeadLetter | None:
    source = record.source
    if record.unreadable_from is not None:
        first, last = record.unreadable_from, source.offset
        return dead_letter(
            record,
            f"offsets {first}-{last} ({last - first + 1}) cannot be read from Kafka any more "
            "(deleted by retention, or transaction markers): not processed",
        )
    if source in inputs.refused:
        return inputs.refused[source]
    event = inputs.decoded[source]
    if isinstance(event, DeadLetter):
        return replace(event, key=record.key)
    identity = inputs.identities[source]
    if identity.verdict is Verdict.CONFLICT:
        other = identity.other
        assert other is not None
        return dead_letter(
            record,
            f"event_id {event.event_id!r} already names another event, first read at {other}: "
            "an event id must name one event",
            conflict_with=other,
        )
    return None


def dead_letter(record: Record, reason: str, conflict_with: Source | None = None) -> DeadLetter:
    source = record.source
    headers: tuple[tuple[str, bytes], ...] = ()
    if conflict_with is not None:
        headers = ((CONFLICT_HEADER, str(conflict_with).encode()),)
    return DeadLetter(source.topic, source.partition, source.offset, reason, record.value or b"", record.key, headers)


def order_ids(records: list[Record], decoded: Mapping[Source, Event | DeadLetter]) -> set[str]:
    """The orders a batch's events touch."""
    out: set[str] = set()
    for r in records:
        event = decoded.get(r.source)
        if event is not None and not isinstance(event, DeadLetter) and event.type.startswith("order."):
            out.add(str(event.order_id))  # type: ignore[union-attr]
    return out
