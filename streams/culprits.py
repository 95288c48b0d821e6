"""Which records of a batch the store refuses, and whether it is the records' fault at all.

A batch the store refuses is written again record by record, so that a record the store cannot
take (for its content) is dead-lettered and the rest are stored. But a refusal is blamed on a
record only when it is about content: a storage fault (a disk made read-only or full, a lost
connection: ``hotline.sinks.base.infrastructure_fault``) holds the batch back instead, and so
does a batch none of whose records stores while a known-good write fails too. Dead-lettering
valid events for a storage fault would move the ledger past them: lost.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from hotline.schemas.events import REASON_LIMIT, InvalidEvent
from hotline.sinks.base import Batch, DeadLetter, Store, StoreRaced, infrastructure_fault
from hotline.sinks.fencing import Fence, StoreFenced
from hotline.streams.folding import dead_letter
from hotline.streams.processing import Record, Source, split_by_source

log = logging.getLogger("hotline.streams.app")


def find_culprits(
    store: Store,
    batch: Batch,
    records: list[Record],
    exc: Exception,
    fence: Fence | None,
    recorded: dict[tuple[str, int], int],
) -> dict[Source, DeadLetter]:
    """Each refused record's dead letter; re-raises ``exc`` when the store itself is at fault.

    ``recorded``: the progress the store holds per source partition (the known-good write)."""
    if not store.healthy() or infrastructure_fault(exc):
        raise exc
    raw = {r.source: r for r in records}
    parts = split_by_source(batch)
    culprits: dict[Source, DeadLetter] = {}
    for source, part in parts.items():
        try:
            store.write(part, fence)
        except (StoreFenced, StoreRaced):
            raise  # not this record's fault: the batch is given up, or folded again
        except Exception as one:
            if infrastructure_fault(one):
                raise
            reason = InvalidEvent(f"could not store: {type(one).__name__}: {one}").reason
            dead = dead_letter(raw[source], reason)
            if part.deadletters:  # its dead letter was refused: keep the reason, not the copy
                first = part.deadletters[0].error
                dead = replace(dead, error=f"{reason}; {first}"[:REASON_LIMIT], store_copy=False)
            culprits[source] = dead
    if not culprits:
        raise exc  # every record stores on its own: not the records' fault, retry with backoff
    if len(culprits) == len(parts):
        probe(store, records, fence, recorded)  # nothing stores: is it the store? raises if so
    log.warning("batch refused by the store (%s); dead-lettering %d record(s)", type(exc).__name__, len(culprits))
    return culprits


def probe(store: Store, records: list[Record], fence: Fence | None, recorded: dict[tuple[str, int], int]) -> None:
    """A known-good write: the progress the store already holds for the batch's partitions,
    recorded again (idempotent: the ledger keeps the highest offset). Raises if the store
    cannot take even that."""
    tps = {(r.source.topic, r.source.partition) for r in records}
    store.record_progress({tp: recorded.get(tp, -1) for tp in tps}, fence)
