"""Which source offsets a batch may process: the durable ledger, not the consumer's commits.

faust-streaming has skipped or replayed offsets after restarts and rebalances
(faust-streaming issues #34, #48, #216, #221, #312, #315), so correctness does not
rest on where its consumer happens to deliver from. The store keeps, per source
partition, the last offset processed *with every offset before it* (the ledger).
This module turns a delivered batch into the records to process, in offset order:

* an offset below the ledger's next offset was processed already: dropped;
* an offset above it means the consumer skipped some: the gap is named, and the
  caller reads it from Kafka itself before going on;
* so the ledger only ever advances over contiguous offsets.

Pure: no Kafka, no ClickHouse; the caller loads and advances it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hotline.streams.processing import Record

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Gap:
    """Offsets ``start`` to ``end - 1`` of a partition were not delivered but must be processed."""

    topic: str
    partition: int
    start: int
    end: int


@dataclass(frozen=True)
class Admitted:
    """A batch reduced to what is new, and the gaps to fill before it."""

    records: list[Record]
    gaps: list[Gap]
    already_processed: int


@dataclass
class Ledger:
    """The next offset to process per source partition."""

    next_offset: dict[TopicPartition, int] = field(default_factory=dict)

    def knows(self, tp: TopicPartition) -> bool:
        return tp in self.next_offset

    def load(self, stored: Mapping[TopicPartition, int], partitions: Iterable[TopicPartition]) -> None:
        """Take the store's progress (last processed offset) for these partitions.

        Never moves backwards: what this process stored is in the store, so the store's
        figure can only be at or ahead of ours (another worker may have advanced it).
        """
        for tp in partitions:
            self.next_offset[tp] = max(self.next_offset.get(tp, 0), stored.get(tp, -1) + 1)

    def admit(self, records: Iterable[Record]) -> Admitted:
        """The records after the ledger, in offset order per partition, and the gaps before them."""
        by_tp: dict[TopicPartition, list[Record]] = {}
        for record in records:
            by_tp.setdefault((record.source.topic, record.source.partition), []).append(record)
        fresh: list[Record] = []
        gaps: list[Gap] = []
        old = 0
        for tp, group in by_tp.items():
            expected = self.next_offset.get(tp, 0)
            seen: set[int] = set()
            for record in sorted(group, key=lambda r: r.source.offset):
                offset = record.source.offset
                if offset < expected or offset in seen:
                    old += 1
                    continue
                if offset > expected:
                    gaps.append(Gap(tp[0], tp[1], expected, offset))
                seen.add(offset)
                fresh.append(record)
                expected = offset + 1
        return Admitted(fresh, gaps, old)

    def advance(self, processed: Mapping[TopicPartition, int]) -> None:
        """Everything up to these offsets is stored: the next batch starts after them."""
        for tp, offset in processed.items():
            self.next_offset[tp] = max(self.next_offset.get(tp, 0), offset + 1)


def last_offsets(records: Iterable[Record]) -> dict[TopicPartition, int]:
    """The highest offset per partition: what the ledger records once these are stored."""
    last: dict[TopicPartition, int] = {}
    for r in records:
        tp = (r.source.topic, r.source.partition)
        last[tp] = max(last.get(tp, -1), r.source.offset)
    return last
