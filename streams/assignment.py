"""Where a worker starts reading its assigned partitions, and whether it may read them at all.

faust-streaming has skipped and replayed offsets after restarts; the group's committed offsets
are therefore not trusted. On every assignment the worker claims its partitions at the store
under the group generation that assigned them (``streams/claims.py``), reads the ledger the
store keeps (the last offset processed with every offset before it), seeks each partition right
after it, and loads the partitions' live figures, all under the batch lock, so a batch still in
flight from before the rebalance cannot move the ledger or the figures meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from faust.types import TP

from hotline.settings import Settings
from hotline.sinks.fencing import Partition
from hotline.streams.claims import ClaimKeeper
from hotline.streams.faustapp import LedgerApp, Positions
from hotline.streams.ledger import Ledger
from hotline.streams.metrics import Metrics
from hotline.streams.reader import BatchReader
from hotline.streams.state import WorkerState, order_partition
from hotline.streams.store_thread import StoreThread

log = logging.getLogger("hotline.streams.app")


class Assignment:
    """Resume, claims and fencing, and the live figures of what this worker is assigned."""

    def __init__(
        self,
        app: LedgerApp,
        settings: Settings,
        store: StoreThread,
        state: WorkerState,
        metrics: Metrics,
        batch_lock: asyncio.Lock,
        settle: Callable[[], Awaitable[None]],
    ) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self.state = state
        self.metrics = metrics
        self.batch_lock = batch_lock
        self.settle = settle  # the last batch's changelog acked and progress recorded
        self.reader: BatchReader | None = None  # batch ingest: the pipeline's reader of the assigned partitions
        self.kinds = {settings.calls_topic, settings.orders_topic}
        self.ledger = Ledger()  # what this process has written to the store (the next batch follows it)
        self.recorded: dict[tuple[str, int], int] = {}  # the progress recorded in the store: the truth
        self.claims = ClaimKeeper(self._claim_at_store, metrics, self.stop_reading)
        # Whether Faust has recovered the order table for the current assignment (see resume_locked).
        self.table_recovered = False

    def connect(self, reader: BatchReader | None) -> None:
        """Faust's rebalance signals: revoked first on every rebalance (eager protocol); not on
        assignment, which Faust signals after starting the recovery, whose completion might then
        be missed (a worker never reading)."""
        self.app.resume_at = self.resume_at
        self.app.on_partitions_revoked.connect(self._on_rebalance_started)
        self.app.on_rebalance_complete.connect(self._on_table_recovered)
        self.reader = reader
        if self.reader is not None:
            self.app.on_partitions_revoked.connect(self._on_revoked)

    def assigned(self) -> list[TP]:
        """The source partitions (calls and orders topics) assigned to this worker now."""
        return [tp for tp in self.app.consumer.assignment() if tp.topic in self.kinds]

    def owns(self, order_id: str) -> bool:
        """Only the worker that owns an order's partition alerts for it."""
        return order_partition(self.settings, order_id) in self.app.consumer.assignment()

    async def _claim_at_store(self, fence: Any) -> None:
        await self.store.run(self.store.store.claim, fence)

    async def resume_at(self, committed: Positions) -> Positions:
        """Each assigned source partition resumes right after the ledger's last processed offset.

        Under the batch lock: a batch still in flight from before the rebalance must not move
        the ledger or the windows while they are read back from ClickHouse here.
        """
        await self.state.open()
        async with self.batch_lock:
            return await self.resume_locked(committed)

    async def resume_locked(self, committed: Positions) -> Positions:
        assigned = self.assigned()
        if not assigned:
            if self.reader is not None:
                self.reader.assign({})
            return committed
        # During a rebalance of a running worker, Faust's fetcher seeks (getmany while its flow is
        # suspended) before the order table is recovered from its changelog, and again once it is.
        # Reading a newly assigned partition before then would fold its events on missing order
        # states (seen with two workers: an order of another worker's partition counted as new).
        # So until Faust says the table is recovered, partitions are positioned but not read.
        ready = self.table_recovered
        await self.settle()
        if not await self.claim([(tp.topic, tp.partition) for tp in assigned]):
            # A newer generation holds them: this worker is the stale one, and reads none of them
            # (streams/claims.py), through its batch reader or Faust's stream, until its next assignment.
            self.app.consumer.pause_partitions(assigned)
            return committed
        positions = await self._seek(assigned, committed)
        if not ready:
            if self.reader is not None:
                self.app.consumer.pause_partitions(assigned)
                self.reader.assign({})
            log.info("order table not recovered yet: reading the assigned partitions once it is")
            return positions
        await self.state.load(assigned)
        if self.reader is not None:
            # Read them in batches here, not through Faust's per-event stream (streams/reader.py).
            self.app.consumer.pause_partitions(assigned)
            self.reader.assign({(tp.topic, tp.partition): positions[tp] for tp in assigned})
        return positions

    async def _seek(self, assigned: list[TP], committed: Positions) -> Positions:
        """Each partition positioned right after the ledger's last processed offset."""
        stored = await self.store.run(self.store.store.progress)
        self.ledger.load(stored, [(tp.topic, tp.partition) for tp in assigned])
        positions = dict(committed)
        for tp in assigned:
            offset = self.ledger.next_offset[(tp.topic, tp.partition)]
            self.recorded[(tp.topic, tp.partition)] = offset - 1
            if committed.get(tp) != offset:
                log.info(
                    "%s[%d]: resuming at ledger offset %d (group committed %s)",
                    tp.topic,
                    tp.partition,
                    offset,
                    committed.get(tp),
                )
            await self.app.consumer.seek(tp, offset)
            positions[tp] = offset
        return positions

    async def claim(self, partitions: list[Partition]) -> bool:
        """Claim the assigned source partitions at the store, under the group generation that assigned
        them, before their ledger is read (``streams/claims.py``); False when a newer generation
        holds one of them: this worker is the stale one, and reads nothing until its next assignment."""
        return await self.claims.claim(self.app.consumer_generation_id, partitions)

    async def renew_claim(self) -> None:
        """Renew this worker's claim at the store, idle or not (a claim not renewed lapses); a fenced
        worker whose group has not moved on tries to take its partitions back instead."""
        if self.claims.fenced:
            await self._reclaim()
        else:
            await self.claims.renew()

    async def _reclaim(self) -> None:
        """A fenced worker whose group has not moved on claims its assignment again, and resumes it
        once the store takes the claim.

        Fencing expects the rebalance that fenced a worker to bring it a new assignment. When none
        comes (the group's generation is still the one fenced: the claim that fenced it came from
        outside the group, or from a generation that does not exist), the worker would read nothing
        for good while its partitions wait; so it tries again every renewal period, and takes its
        partitions back as soon as the foreign claim has lapsed."""
        generation = self.app.consumer_generation_id
        assigned = self.assigned()
        if not assigned or generation is None or generation < 0:
            return
        await self.resume_at({})  # claims again first; refused, it stays fenced until the next try
        if self.claims.fenced:
            return
        log.warning("the claim that fenced this worker off has lapsed and no new assignment came: resuming")
        if self.reader is None:
            self.app.consumer.resume_partitions(assigned)

    def stop_reading(self) -> None:
        """Fenced off: every partition stops (the group's rebalance is eager, so the whole assignment
        is from the stale generation), until the next assignment or a claim taken back."""
        if self.reader is not None:
            self.reader.assign({})
        else:  # the agents' stream: Faust's next assignment (eager: revoke first) unpauses them
            self.app.consumer.pause_partitions(self.assigned())

    async def _on_rebalance_started(self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """Partitions revoked: the next assignment's order table is recovered before they are read."""
        self.table_recovered = False

    async def _on_table_recovered(self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """Faust has restored the order table from its changelog for this assignment (it seeks next)."""
        self.table_recovered = True

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """Stop reading at once: the partitions may be another worker's from now on."""
        if self.reader is not None:
            self.reader.assign({})

    async def update_lag(self) -> None:
        """Consumer lag per topic: the broker's high-water mark minus what this worker has stored."""
        lag: Counter[str] = Counter()
        for tp in self.assigned():
            highwater = self.app.consumer.highwater(tp) or 0
            lag[tp.topic] += max(0, highwater - self.recorded.get((tp.topic, tp.partition), -1) - 1)
        for topic in self.kinds:
            self.metrics.lag.labels(topic).set(lag[topic])
