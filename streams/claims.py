"""This worker's claim of its source partitions at the store, and whether the store has fenced it off.

Fencing (``hotline.sinks.fencing``): a worker claims the partitions it was assigned, under the
consumer group's generation, before it reads their ledger; every store call for them carries that
generation (:meth:`ClaimKeeper.fence_of`), and the store refuses a stale one. A refusal fences the
worker off: the batch in hand is dropped (not retried, its progress not recorded: the new owner
resumes from the ledger, which this worker never moved past what it stored under its claim), and
nothing more is read (the pipeline's ``stop_reading``) until the next assignment or a claim taken
back. ``/status`` and ``hotline_reading`` say so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from hotline.sinks.fencing import Fence, Partition, StoreFenced
from hotline.streams.metrics import Metrics

log = logging.getLogger("hotline.streams.app")


class ClaimKeeper:
    """The generation this worker holds its partitions under, renewed, or the refusal that fenced it."""

    def __init__(
        self, claim_at_store: Callable[[Fence], Awaitable[None]], metrics: Metrics, stop_reading: Callable[[], None]
    ) -> None:
        self._claim_at_store, self.metrics, self._stop_reading = claim_at_store, metrics, stop_reading
        self.claimed: int | None = None  # None until claimed: no fence is sent (a pipeline without a group)
        self.partitions: list[Partition] = []
        self.fenced = False
        self.fenced_since = 0.0

    async def claim(self, generation: int, partitions: list[Partition]) -> bool:
        """Claim ``partitions`` under ``generation``; False (and fenced) when a newer one holds any."""
        try:
            await self._claim_at_store(Fence.of(generation, partitions))
        except StoreFenced as fenced:
            self.fence(fenced)
            return False
        self.claimed, self.partitions, self.fenced = generation, list(partitions), False
        self.metrics.reading.set(1)
        return True

    async def renew(self) -> None:
        """Renew the claim, idle or not: a claim not renewed for the store's lease lapses, and a worker
        with nothing to store makes no other call. A refusal fences it off, unless it is of a claim a
        newer assignment has replaced meanwhile (this call raced the rebalance's own claim)."""
        generation, partitions = self.claimed, self.partitions
        if generation is None or not partitions:
            return
        try:
            await self._claim_at_store(Fence.of(generation, partitions))
        except StoreFenced as fenced:
            if self.claimed == generation:
                self.fence(fenced)

    def fence_of(self, partitions: Iterable[Partition]) -> Fence | None:
        """What a store call for these partitions carries: the generation of this worker's claim."""
        return None if self.claimed is None else Fence.of(self.claimed, partitions)

    def fence(self, fenced: StoreFenced) -> None:
        """The store refused this worker's generation: the group moved on while it stalled."""
        self.fenced = True
        self.fenced_since = time.time()
        self.metrics.store_fenced.labels(fenced.op).inc()
        self.metrics.reading.set(0)
        for (topic, partition), holder in fenced.claims.items():
            log.warning(
                "%s[%d]: fenced off by the store (%s refused): claimed by group generation %d, this worker "
                "holds generation %d; dropping the batch, reading nothing until the next assignment",
                topic,
                partition,
                fenced.op,
                holder,
                fenced.generation,
            )
        self._stop_reading()
