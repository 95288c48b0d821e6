"""Events of an order whose dispatch never arrives: held, then dead-lettered past a wait.

A visit, return or supervision read before its order's dispatch moves nothing until the dispatch
arrives (``processing.apply_order_event`` holds it in the order's state). An order whose dispatch
never comes (a wrong order id typed by the call-back team, an order of another city) would hold
its events for ever, counted nowhere and reported nowhere. Past ``HOTLINE_ORPHAN_WAIT_S`` from its
first event (event time against the clock), the worker dead-letters them with the reason, so an
operator sees them, and drops them from the order's state (a dispatch arriving later counts from
then on). Pure: the worker's sweep (``Pipeline.sweep_orphans``) does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hotline.sinks.base import DeadLetter, Stored
from hotline.streams.timeline import OrderState

MICROS = 1_000_000


def waiting_since(state: OrderState) -> int | None:
    """When the order's first event happened (µs since the epoch), if it holds events for its dispatch."""
    if state.get("unit") or not state.get("held") or not state.get("facts"):
        return None
    return min(int(fact[0]) for fact in state["facts"])


def overdue(orders: Iterable[tuple[str, OrderState | None]], now_us: int, wait_s: float) -> list[str]:
    """The orders that have held events for their dispatch longer than ``wait_s``."""
    out = []
    for order_id, state in orders:
        since = waiting_since(state) if state else None
        if since is not None and now_us - since >= wait_s * MICROS:
            out.append(order_id)
    return out


def held_ids(state: OrderState) -> list[str]:
    """The event ids an order holds, each once, in the order they were held."""
    return list(dict.fromkeys(str(entry[3]) for entry in state.get("held", ())))


def letters(order_id: str, state: OrderState, stored: Mapping[str, Stored], wait_s: float) -> list[DeadLetter]:
    """A dead letter per held event, under the coordinates it was read from, with the reason."""
    hours = wait_s / 3600
    reason = (
        f"order {order_id!r} was not dispatched within {hours:g} h of its first event: "
        "this event was held for its dispatch and is not counted"
    )
    out = []
    for event_id in held_ids(state):
        s = stored.get(event_id)
        if s is not None:
            raw = s.payload.encode()
            out.append(DeadLetter(s.source_topic, s.source_partition, s.source_offset, reason, raw, order_id.encode()))
    return out


def released(state: OrderState) -> OrderState:
    """The order without the events it held (dead-lettered): its timeline stays, for duplicates,
    and their ids are kept as released, so that a redrive of their dead letters counts them
    (their events are stored already: without this the redrive would be skipped as a duplicate)."""
    out = OrderState(**{k: v for k, v in state.items() if k != "held"})  # type: ignore[typeddict-item]
    out["released"] = list(dict.fromkeys([*state.get("released", ()), *held_ids(state)]))
    return out
