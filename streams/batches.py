"""One delivered batch, from the ledger's admission to its recorded progress.

The order is the pipeline's guarantee (``docs/guarantees.md``): admit what the ledger has not
seen (reading skipped offsets back in) → fold on the orders' states and windows → write the
batch to the store (events, counters, dead letters, states) → only then change the order table
and the live figures → acknowledge the table's changelog → record the progress. A crash anywhere
replays the batch from the ledger, and the store's event-keyed tables and the states' seen ids
make the replay a no-op. A record's content never stops a batch (it is dead-lettered); an outage
of the store or of Kafka holds it here, retried with backoff and shown on ``/status``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import faust

from hotline.schemas.events import Event, prefixes
from hotline.settings import Settings
from hotline.sinks.base import DeadLetter, StoreRaced
from hotline.sinks.fencing import Fence, StoreFenced
from hotline.streams.claims import ClaimKeeper
from hotline.streams.culprits import find_culprits
from hotline.streams.deadletters import send_deadletters
from hotline.streams.folding import Inputs, fold, order_ids
from hotline.streams.gaps import GapReader
from hotline.streams.health import StoreHealth, backoff_s
from hotline.streams.ledger import Gap, Ledger, last_offsets
from hotline.streams.metrics import Metrics
from hotline.streams.observer import BatchObserver
from hotline.streams.processing import (
    Decoded,
    Folded,
    Identity,
    Record,
    Source,
    decode_batch,
    identify,
    source_of,
)
from hotline.streams.state import WorkerState
from hotline.streams.store_thread import StoreThread
from hotline.streams.windows import Staged, rows

log = logging.getLogger("hotline.streams.app")

CALLS, ORDERS = "calls", "orders"  # the source topics' logical names (schemas.events.TOPIC_OF_PREFIX)

T = TypeVar("T")


class Batches:
    """Processes batches one at a time until each is stored."""

    def __init__(
        self,
        settings: Settings,
        store: StoreThread,
        state: WorkerState,
        claims: ClaimKeeper,
        ledger: Ledger,
        recorded: dict[tuple[str, int], int],
        deadletter_topic: faust.TopicT,
        observer: BatchObserver,
        lock: asyncio.Lock,
    ) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self.claims = claims
        self.ledger = ledger
        self.recorded = recorded  # the progress recorded in the store, per source partition
        self.deadletter_topic = deadletter_topic
        self.observer = observer
        self.metrics: Metrics = observer.metrics
        self.health = StoreHealth()
        self.gaps = GapReader(settings.kafka_client_options())
        self.lock = lock  # one batch at a time: identity checks see every earlier write
        self._completing: asyncio.Future[None] | None = None  # the last batch's changelog and progress

    async def process(self, records: list[Record], kind: str, prepared: Decoded | None = None) -> Folded | None:
        """Process one delivered batch until it is stored; never raises for a record's content.

        Returns once the batch's events, counters, dead letters and order states are in the
        store and the table; its changelog acks and progress record complete in the background
        (:meth:`settle` waits for them), at most one batch behind. Faust's acks do not matter:
        the worker resumes from the recorded progress. Only an outage of ClickHouse or Kafka
        keeps a batch here, retried with backoff and shown on ``/status`` and ``/metrics``.
        """
        await self.state.open()
        async with self.lock:
            if self.claims.fenced:  # another worker's partitions now: it reads them from the ledger
                return None
            return await self.until_done(lambda: self._process_once(records, kind, prepared))

    async def until_done(self, attempt_once: Callable[[], Awaitable[T]]) -> T | None:
        """Try until it succeeds: a failure here is an outage (ClickHouse or Kafka), not a record's.

        Except a refusal by the store's fence: the partitions are another worker's now, so the
        attempt is given up (``None``), never retried (``ClaimKeeper.fence``)."""
        attempt = 0
        while True:
            done: T | None
            try:
                done = await attempt_once()
            except StoreFenced as fenced:
                self.claims.fence(fenced)
                done = None
            except Exception as exc:
                attempt += 1
                await self._back_off(exc, attempt)
                continue
            if attempt:
                self.health.recovered()
                self.metrics.store_up.set(1)
            return done

    async def _process_once(self, delivered: list[Record], kind: str, prepared: Decoded | None) -> Folded | None:
        records, gaps = await self._admit(delivered)
        if not records:
            return None
        fence = self.claims.fence_of((r.source.topic, r.source.partition) for r in records)
        folded, staged = await self._write(records, kind, prepared, fence)
        # Order states after the store holds the batch, one table write per order. The next
        # batch folds on them, on these windows and after these offsets at once; this batch's
        # changelog acks and progress record complete while it does (``_complete``): the
        # progress is recorded only after the changelog is acknowledged, a crash before that
        # replays the batch, and the states' seen-ids and the stored rows make that a no-op.
        self.state.folded(folded.orders, folded.replayed, staged)
        progress = last_offsets(records)
        self.ledger.advance(progress)
        for gap in gaps:
            self.metrics.gaps.labels(gap.topic).inc(gap.end - gap.start)
        self.observer.batch(records, folded)
        await self.settle()  # the batch before this one: at most one completion outstanding
        self._completing = asyncio.ensure_future(self._complete(kind == ORDERS, progress, fence))
        return folded

    async def settle(self) -> None:
        """Wait until every batch processed so far has its changelog acked and its progress recorded."""
        if self._completing is not None:
            await self._completing

    async def _complete(self, changelog: bool, progress: dict[tuple[str, int], int], fence: Fence | None) -> None:
        """A stored batch's changelog acknowledged, then its progress recorded; retried through outages
        (not when the store fences this worker off: the progress is then not recorded)."""

        async def once() -> bool:
            if changelog:  # also when this batch changed nothing: an earlier attempt may have
                await self.flush_changelog()
            await self.store.run(self.store.store.record_progress, progress, fence)
            return True

        if not await self.until_done(once):
            return
        for tp, offset in progress.items():
            self.recorded[tp] = max(self.recorded.get(tp, -1), offset)

    async def flush_changelog(self) -> None:
        """Wait until the order table's changelog records are acknowledged by Kafka."""
        await self.state.changelog.flush()

    async def _admit(self, delivered: list[Record]) -> tuple[list[Record], list[Gap]]:
        """What the ledger has not seen, in offset order, with any skipped offsets read back in."""
        unknown = {tp for tp in {(r.source.topic, r.source.partition) for r in delivered} if not self.ledger.knows(tp)}
        if unknown:
            self.ledger.load(await self.store.run(self.store.store.progress), unknown)
        admitted = self.ledger.admit(delivered)
        records = list(admitted.records)
        for gap in admitted.gaps:
            records.extend(await self.gaps.read(gap))
        return sorted(records, key=lambda r: (r.source.topic, r.source.partition, r.source.offset)), admitted.gaps

    def prepare(self, records: list[Record], kind: str) -> Decoded:
        """A batch decoded, ahead of its turn (pure: no state, no I/O)."""
        return decode_batch(records, self.state.registry, prefixes(kind))  # prefixes: schemas.events.TOPIC_OF_PREFIX

    async def _write(
        self, records: list[Record], kind: str, prepared: Decoded | None, fence: Fence | None
    ) -> tuple[Folded, Staged]:
        """Fold and write; a record the store refuses is dead-lettered and the batch folded again."""
        # Records read back for a gap were not prepared: decode_batch decodes only those.
        ready = decode_batch(records, self.state.registry, prefixes(kind), prepared)
        decoded, contents = ready.events, ready.contents
        events = [(source, d) for source, d in decoded.items() if not isinstance(d, DeadLetter)]
        identities = await self._identify(events, contents)
        states = await self.state.states(order_ids(records, decoded))
        refused: dict[Source, DeadLetter] = {}
        sent: set[Source] = set()
        limits, gen = self.state.limits, self.state.generation.gen
        while True:
            inputs = Inputs(decoded, identities, contents, states, refused)
            folded = fold(records, inputs, limits, gen, self.settings.max_order_events)
            staged = await self.state.stage(folded.steps)
            folded.batch.windows = rows(staged)
            unsent = [d for d in folded.batch.deadletters if source_of(d) not in sent]
            await send_deadletters(self.deadletter_topic, unsent)
            sent.update(source_of(d) for d in folded.batch.deadletters)
            try:
                with self.metrics.sink_latency.time():
                    await self.store.run(self.store.store.write, folded.batch, fence)
                self.state.known.add(row["event_id"] for row in folded.batch.events)
                return folded, staged
            except StoreFenced:
                raise  # not the records' fault: the batch is given up (until_done)
            except StoreRaced as raced:  # another worker stored some of its new events meanwhile
                log.info("folding the batch again: %s", raced)
                self.metrics.store_raced.inc(len(raced.event_ids))
                identities = await self._identify(events, contents)
            except Exception as exc:
                isolate = (find_culprits, self.store.store, folded.batch, records, exc, fence, self.recorded)
                refused.update(await self.store.run(*isolate))

    async def _identify(
        self, events: list[tuple[Source, Event]], contents: Mapping[Source, str]
    ) -> dict[Source, Identity]:
        """Each event against what the store holds under its id (looked up only where the filter says maybe)."""
        known = self.state.known.maybe(e.event_id for _, e in events)
        stored = await self.store.run(self.store.store.stored, known)
        return identify(events, stored, contents)

    async def _back_off(self, exc: Exception, attempt: int) -> None:
        """An outage, not a record: wait (0.5 s doubling to 30 s), say so, and try the batch again."""
        delay = backoff_s(attempt)
        self.health.failing(exc, attempt)
        self.metrics.store_up.set(0)
        self.metrics.store_retries.inc()
        log.warning("batch not stored (attempt %d: %s: %s); retrying in %.1fs", attempt, type(exc).__name__, exc, delay)
        await asyncio.sleep(delay)
