"""The worker's periodic sweeps of its order table: orders never dispatched, and orders done with.

Both run under the batch lock, on the orders of the partitions this worker reads, and only
while it is not fenced off; both change the table through its changelog, acknowledged before
they return, so a crash in between runs the sweep again with the same outcome.

* Orphans (``streams/orphans.py``): the events of an order whose dispatch has not come within
  ``HOTLINE_ORPHAN_WAIT_S`` are dead-lettered (stored and sent before the state drops them).
* Eviction (``streams/eviction.py``): completed, quiet orders leave the table with a tombstone;
  ClickHouse keeps them, and a late event reads them back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from hotline.sinks.base import Batch, DeadLetter
from hotline.streams import eviction, history, orphans, timeline
from hotline.streams.batches import Batches
from hotline.streams.deadletters import send_deadletters
from hotline.streams.deadlines import TZ
from hotline.streams.processing import OrderState
from hotline.streams.state import LIVE_DAYS

log = logging.getLogger("hotline.streams.app")


class Sweeps:
    """The orphan and eviction sweeps, on the batches' lock, store and retries."""

    def __init__(self, batches: Batches, owns: Callable[[str], bool]) -> None:
        self.batches = batches
        self.state = batches.state
        self.owns = owns  # only the orders of partitions this worker reads

    def _now_us(self) -> int:
        return timeline.micros(datetime.now(TZ))

    def _owned_orders(self) -> list[tuple[str, OrderState]]:
        return [(o, s) for o, s in self.state.orders.items() if s is not None and self.owns(o)]

    async def orphans(self) -> None:
        """Dead-letter the events of orders whose dispatch has not come within ``orphan_wait_s``:
        their dead letters are stored and sent before the orders' states drop them, so a crash in
        between sweeps them again (the dead-letter table keeps one row per record; the topic may
        get a letter twice)."""
        batches = self.batches
        await self.state.open()
        wait = batches.settings.orphan_wait_s
        async with batches.lock:
            if batches.claims.fenced:
                return
            due = orphans.overdue(self._owned_orders(), self._now_us(), wait)
            if not due:
                return
            states: dict[str, OrderState] = {o: self.state.orders[o] for o in due}
            ids = [i for state in states.values() for i in orphans.held_ids(state)]
            stored = await batches.store.run(batches.store.store.stored, ids)
            letters = [d for o, state in states.items() for d in orphans.letters(o, state, stored, wait)]
            await batches.until_done(lambda: self._dead_letter(letters))
            released = {o: orphans.released(state) for o, state in states.items()}
            self.state.changelog.set(released)
            await batches.until_done(batches.flush_changelog)
            for order_id, state in released.items():
                self.state.track(order_id, state)
            log.warning("%d event(s) of %d order(s) never dispatched dead-lettered", len(letters), len(due))

    async def _dead_letter(self, letters: list[DeadLetter]) -> None:
        batches = self.batches
        await send_deadletters(batches.deadletter_topic, letters)
        fence = batches.claims.fence_of({(d.source_topic, d.source_partition) for d in letters})
        await batches.store.run(batches.store.store.write, Batch(deadletters=letters), fence)
        for dead in letters:
            batches.metrics.deadletters.labels(dead.source_topic).inc()

    async def evictions(self) -> None:
        """Day windows older than the live screen's days leave memory; completed orders quiet for
        ``evict_after_s`` leave the table (tombstones in its changelog,
        acknowledged before the lock is released). Their rows in ClickHouse were written with the
        batch that last changed them, before the table was; so nothing is lost, and the next event
        for one of them reads it back (``WorkerState.states``)."""
        batches = self.batches
        after = batches.settings.evict_after_s
        if not after:
            return
        await self.state.open()
        async with batches.lock:
            if batches.claims.fenced:
                return
            self.state.windows.forget_before(history.today() - timedelta(days=LIVE_DAYS))
            due = eviction.due(self._owned_orders(), self._now_us(), after)
            if not due:
                return
            self.state.known_orders.add(due)
            self.state.changelog.delete(due)
            await batches.until_done(batches.flush_changelog)
            batches.metrics.evicted.inc(len(due))
            log.info("%d completed order(s) evicted from the order table", len(due))
