"""What a worker holds in memory about the partitions it reads, and how it is loaded.

The order table (Faust's, recovered from its changelog) is the orders' state; ClickHouse holds
everything durably. Three things may be newer in ClickHouse than in the table, and are read back
here: orders an import or a restatement wrote (a newer *generation*, held as *foreign* states
until the stream next touches them), day windows this worker did not build, and the figures of
newly assigned partitions. The live figures (windows, open orders, orders awaiting supervision)
are what the screen and ``/metrics`` read without a query.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any

from faust.types import TP

from hotline.schemas.registry import Registry, default_registry
from hotline.settings import Settings
from hotline.sinks.backup import RESTORED
from hotline.sinks.base import Generation, OrderRow
from hotline.sinks.store import describe, owned
from hotline.sinks.units import stored_registry
from hotline.streams import history
from hotline.streams.alerts import key_partition
from hotline.streams.changelog import Changelog
from hotline.streams.eviction import order_filter
from hotline.streams.gauges import AgentFigures, AwaitingSupervision, OpenOrders
from hotline.streams.known import EveryId, KnownIds, id_filter
from hotline.streams.processing import OrderState, state_of
from hotline.streams.store_thread import StoreThread
from hotline.streams.windows import Staged, Step, Windows

log = logging.getLogger("hotline.streams.app")

LIVE_DAYS = 40  # the windows held for the screen: a month to date and a rolling 30 days


def order_partition(settings: Settings, order_id: str) -> TP:
    """The orders topic's partition of an order (Kafka's partitioner on its key)."""
    return TP(settings.orders_topic, key_partition(order_id, settings.partitions))


class WorkerState:
    """The order table and the live figures of this worker's partitions, loaded from the store."""

    def __init__(
        self, settings: Settings, orders: Any, changelog: Changelog, store: StoreThread, limits: dict[str, int]
    ) -> None:
        self.settings = settings
        self.orders = orders  # the Faust table: order id -> OrderState
        self.changelog = changelog
        self.store = store
        self.limits = limits
        self.kinds = {settings.calls_topic, settings.orders_topic}
        self.generation = Generation()
        self.registry: Registry = default_registry()  # the store's version replaces it once it opens
        self.registry_given = False  # a registry handed in (tests, tools) is kept as it is
        self.known: KnownIds | EveryId = KnownIds()  # loaded from the store when it opens
        self.known_orders: KnownIds | EveryId = EveryId()  # the orders the store holds: loaded when it opens
        self.foreign: dict[str, OrderState] = {}  # open orders imported or restated, not yet in the table
        self.windows = Windows()
        self.open_orders = OpenOrders()
        self.awaiting = AwaitingSupervision()  # orders due for supervision (督办), per unit
        self.figures = AgentFigures(self.windows, self.open_orders, set(), self.awaiting)
        self.ready = asyncio.Event()  # the store open, migrated and its known ids loaded
        self._ready_lock = asyncio.Lock()
        self.on_change: Callable[[str, Mapping[str, Any] | None], None] = lambda _o, _s: None  # the alerts

    async def open(self) -> None:
        """Open the store once, whoever needs it first: Faust runs the app's tasks only after the
        first assignment, so the resume hook and the first batch may come before the start-up task.
        No batch before that, or a re-sent event would look new (seen in a crash test: the first
        batch of a restarted worker can arrive before the start-up task has run)."""
        if self.ready.is_set():
            return
        async with self._ready_lock:
            if self.ready.is_set():
                return
            await self.store.run(self.prepare_store)
            await self.changelog.start()
            self.ready.set()
        log.info("store ready: %s", describe(self.settings))

    def prepare_store(self) -> None:
        """Open and migrate the store; build the windows from stored events if a migration asks for it.

        Through ``hotline store`` the store process has done both, and keeps the one filter of
        stored ids (it sees every worker's writes): this worker then asks it about every id."""
        store = self.store.store
        if owned(store):
            self.generation = history.restate_if_pending(store, self.limits)
        elif (generation := store.generation()).restate_pending:
            raise RuntimeError("the store has not restated its day windows: restart `hotline store`")
        else:
            self.generation = generation
        self.known = id_filter(store)
        if self.settings.evict_after_s:  # the orders worth a read-back: once, as the stored ids, then told
            self.known_orders = order_filter(store)  # every order stored or evicted since (only we write here)
        if not self.registry_given:
            self.registry = stored_registry(store, self.registry)

    def order_state(self, order_id: str) -> OrderState | None:
        """An order's current state: the table's, unless an import or restatement wrote a newer one."""
        state = self.orders.get(order_id)
        if state is not None and state.get("gen", 0) >= self.generation.gen:
            return state  # type: ignore[no-any-return]
        return self.foreign.get(order_id, state)

    def track(self, order_id: str, state: OrderState | None) -> None:
        """An order changed: its alerts and its place among the open orders."""
        self.on_change(order_id, state)
        self.open_orders.follow(order_id, state)
        self.awaiting.follow(order_id, state)

    def folded(self, orders: Mapping[str, OrderState], replayed: Iterable[str], staged: Staged) -> None:
        """A stored batch's order states and windows become the ones the next batch folds on."""
        self.changelog.set(orders)
        self.windows.commit(staged)
        self.known_orders.add(orders)
        for order_id, state in orders.items():
            self.foreign.pop(order_id, None)
            self.track(order_id, state)
        for order_id in set(replayed) - set(orders):
            # Stored by an attempt that failed after the table write: its alerts are still owed.
            self.track(order_id, self.order_state(order_id))

    def every_order(self) -> list[tuple[str, Any]]:
        """The table's orders and the foreign ones: all whose alerts this worker may owe."""
        return [*self.orders.items(), *self.foreign.items()]

    async def load(self, assigned: list[TP]) -> None:
        """The live figures of what this worker now reads: recent windows, open orders, and the
        generation; ClickHouse holds them durably (written before the ledger moves)."""
        reads = {(tp.topic, tp.partition) for tp in assigned}
        since = history.today() - timedelta(days=LIVE_DAYS)
        store = self.store.store
        self.generation = await self.store.run(store.generation)
        loaded = await self.store.run(store.windows, "day >= %(since)s", {"since": since})
        months = set(await self.store.run(history.event_months, store))
        self.windows = Windows()
        self.windows.load(
            w for w in loaded if w.source_topic not in self.kinds or (w.source_topic, w.source_partition) in reads
        )
        self.open_orders = OpenOrders()
        self.foreign = {}
        for row in await self.store.run(store.open_orders):
            if order_partition(self.settings, row.order_id) in assigned:
                self.open_orders.update(row.order_id, row.unit_id, row.due)
                self.state_of_stored(row)
        await self._load_awaiting(assigned)
        self.figures = AgentFigures(self.windows, self.open_orders, months, self.awaiting)
        opened, foreign = len(self.open_orders), len(self.foreign)
        log.info("live figures loaded: %d open orders, %d imported or restated", opened, foreign)

    async def _load_awaiting(self, assigned: list[TP]) -> None:
        """Supervision: the orders of these partitions awaiting it, from ClickHouse; those
        an import or restatement wrote are owed their alert like the open ones above."""
        self.awaiting = AwaitingSupervision()
        for row in await self.store.run(self.store.store.awaiting_supervision):
            if order_partition(self.settings, row.order_id) in assigned:
                self.awaiting.follow(row.order_id, self.state_of_stored(row))

    def state_of_stored(self, row: OrderRow) -> OrderState | None:
        """An order read back from ClickHouse: the table's state, unless an import or restatement
        wrote a newer one, which is then held as foreign and owed its alerts (scheduled once)."""
        table_state = self.orders.get(row.order_id)
        if table_state is not None and table_state.get("gen", 0) >= self.generation.gen:
            return table_state  # type: ignore[no-any-return]
        if row.order_id not in self.foreign:
            self.foreign[row.order_id] = state_of(row, self.generation.gen)
            self.on_change(row.order_id, self.foreign[row.order_id])
        return self.foreign[row.order_id]

    async def states(self, ids: set[str]) -> dict[str, OrderState | None]:
        """A batch's orders before it: the table's, or ClickHouse's where an import or a
        restatement may have written a newer state, or where the order was evicted (one lookup
        per batch, only then), read back with their timelines."""
        states: dict[str, OrderState | None] = {}
        lookup: list[str] = []
        gen = self.generation.gen
        for order_id in ids:
            state = self.orders.get(order_id)
            states[order_id] = state
            stale = gen and (state is None or state.get("gen", 0) < gen)
            if stale or (state is not None and "facts" not in state):  # or kept by a release before timelines
                lookup.append(order_id)
        if self.settings.evict_after_s:
            absent = [o for o in ids if states[o] is None and o not in lookup]
            lookup.extend(self.known_orders.maybe(absent))
        if lookup:
            found = await self.store.run(history.read_back, self.store.store, lookup, self.limits, gen)
            states.update(found)
            if self.generation.kind == RESTORED:
                # Restored from a backup: the table (from its changelog in Kafka) may hold states newer
                # than the store; an order the store does not hold starts again from what Kafka
                # re-delivers after the restored ledger (hotline.sinks.backup).
                states.update({order_id: None for order_id in lookup if order_id not in found})
        return states

    async def stage(self, steps: list[Step]) -> Staged:
        """The windows these steps change, reading the ones not held here from ClickHouse first."""
        missing = self.windows.missing(steps)
        if missing:
            where = "(source_topic, source_partition) IN %(tps)s AND day IN %(days)s"
            params = {"tps": sorted({w[0] for w in missing}), "days": sorted({w[1][1] for w in missing})}
            loaded = await self.store.run(self.store.store.windows, where, params)
            self.windows.load(
                [w for w in loaded if ((w.source_topic, w.source_partition), (w.unit_id, w.day)) in missing], missing
            )
        return self.windows.stage(steps)
