"""Which orders leave the worker's table: the worker's memory follows open and recent orders.

The order table is held in memory and recovered from its changelog on every restart; kept for
every order ever seen, it grows with history (about 11 MiB a month for a small city) and so does
the restart. Yet once an order is completed and quiet, only a rare late event (a return visit
recorded weeks later, a supervision, a correction from a catch-up) can still change it, and
ClickHouse holds everything needed to fold one: the order's row in ``order_states`` names its
events and the events table holds them (``history.read_back``, as for imported orders).

So an order is evicted once it is completed, holds nothing for a dispatch, owes no supervision,
and its latest event is older than ``HOTLINE_EVICT_AFTER_S`` (event time against the clock): it
leaves the table with a tombstone in its changelog (the compacted topic then forgets it too).
A later event for it reads its state back from ClickHouse and folds exactly as if it had
stayed; :func:`order_filter` tells the worker which absent orders are worth that lookup.

Pure apart from :func:`order_filter` (one query on each assignment).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hotline.sinks.base import Store
from hotline.sinks.store import owned
from hotline.streams.known import EveryId, KnownIds
from hotline.streams.timeline import OrderState

MICROS = 1_000_000


def latest_event_us(state: OrderState) -> int | None:
    """When the order's latest event happened (µs since the epoch), or None without facts."""
    facts = state.get("facts")
    return max(int(fact[0]) for fact in facts) if facts else None


def evictable(state: OrderState | None, now_us: int, after_s: float) -> bool:
    """Whether no event can be expected to change the order any more within the office's rules:
    completed, nothing held for a dispatch, no supervision owed, quiet for ``after_s``."""
    if not state or not state.get("unit") or not state.get("completed_at") or state.get("held"):
        return False
    if state.get("supervision_due") and not state.get("supervised"):
        return False  # 督办 owed: its alert and the screen's list follow the state
    latest = latest_event_us(state)
    return latest is not None and now_us - latest >= after_s * MICROS


def due(orders: Iterable[tuple[str, Any]], now_us: int, after_s: float) -> list[str]:
    """The orders among ``orders`` to evict now."""
    return [order_id for order_id, state in orders if evictable(state, now_us, after_s)]


def order_filter(store: Store) -> KnownIds | EveryId:
    """The orders the store holds a state for, as the same Bloom filter as stored event ids
    (``streams/known.py``): an order absent from the table is looked up in ClickHouse only when it
    may be there (evicted, or written by another worker of its partition before a rebalance); a
    new order is certainly new, with no query. Through ``hotline store`` there is no filter here:
    every absent order is asked for."""
    if not owned(store):
        return EveryId()
    return KnownIds.of(store.order_count(), store.order_ids())
