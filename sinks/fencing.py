"""Fencing: a worker whose partitions were taken over writes nothing more for them (issue 10).

Workers of one consumer group store through one ``hotline store``. A worker that stalls longer
than the session timeout (a GC pause, a network partition, SIGSTOP) loses its partitions to
another, which resumes from the store's ledger; when it wakes it may still finish the batch it
had in hand, and without a fence its rows and its ledger progress would land over the new
owner's. The fence is the consumer group's *generation*: Kafka's own epoch of assignments,
raised by every rebalance. Each worker *claims* the partitions it was assigned, with the
generation that assigned them, before it reads the ledger to resume them; every write and
progress record carries the generation and the batch's partitions; and the store refuses a
call for a partition claimed by a higher generation (and a claim lower than the one it holds),
before it touches ClickHouse.

The rule lives here, pure: :class:`Claims` is what the store keeps (per group and source
partition, the highest generation that claimed it); the store persists each claim before it
answers (``partition_claims``), so a restarted store still refuses a stale worker. Claims are
kept per consumer group (``HOTLINE_APP_ID``): a new group starts its generations again at 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

Partition = tuple[str, int]  # a source topic and partition


@dataclass(frozen=True)
class Fence:
    """What a store call carries: the group generation under which the worker holds these partitions."""

    generation: int
    partitions: tuple[Partition, ...]

    @classmethod
    def of(cls, generation: int, partitions: Iterable[Partition]) -> Fence:
        return cls(generation, tuple(sorted(set(partitions))))

    def as_json(self) -> dict[str, object]:
        return {"generation": self.generation, "partitions": [[t, p] for t, p in self.partitions]}

    @classmethod
    def from_json(cls, value: object) -> Fence:
        """A fence as :meth:`as_json` writes it; ``ValueError`` for anything else (a malformed call)."""
        if not isinstance(value, dict):
            raise ValueError("a fence is an object {generation, partitions}")
        generation, partitions = value.get("generation"), value.get("partitions")
        if not isinstance(generation, int) or isinstance(generation, bool) or not isinstance(partitions, list):
            raise ValueError("a fence is {generation: int, partitions: [[topic, partition], …]}")
        tps: list[Partition] = []
        for tp in partitions:
            if not (isinstance(tp, list) and len(tp) == 2 and isinstance(tp[0], str) and isinstance(tp[1], int)):
                raise ValueError("a fence's partitions are [topic, partition] pairs")
            tps.append((tp[0], tp[1]))
        return cls.of(generation, tps)


class StoreFenced(RuntimeError):
    """The store refused the call: these partitions were claimed by a higher group generation.

    Not an outage (never retried) and not the records' fault (never dead-lettered): the worker
    has lost these partitions to a newer assignment and must leave them to their new owner.
    """

    def __init__(self, op: str, generation: int, claims: Mapping[Partition, int]) -> None:
        self.op = op
        self.generation = generation
        self.claims = dict(sorted(claims.items()))
        said = ", ".join(f"{t}[{p}] by generation {g}" for (t, p), g in self.claims.items())
        super().__init__(f"{op} under group generation {generation} refused: claimed {said}")

    def as_json(self) -> dict[str, object]:
        return {
            "op": self.op,
            "generation": self.generation,
            "claims": [[t, p, g] for (t, p), g in self.claims.items()],
        }

    @classmethod
    def from_json(cls, value: object) -> StoreFenced:
        """The refusal as the store said it (:meth:`as_json`); ``ValueError`` if it is not one."""
        if not isinstance(value, dict) or not isinstance(value.get("claims"), list):
            raise ValueError("not a fencing refusal")
        claims = {(str(t), int(p)): int(g) for t, p, g in value["claims"]}
        return cls(str(value.get("op", "")), int(value.get("generation", -1)), claims)


class Claims:
    """Per consumer group and source partition, the highest generation that claimed it: the store's rule."""

    def __init__(self, claimed: Mapping[tuple[str, str, int], int] | None = None) -> None:
        self._claimed: dict[tuple[str, str, int], int] = dict(claimed or {})

    def holder(self, group: str, tp: Partition) -> int | None:
        """The generation holding ``tp`` for ``group``, if any claimed it."""
        return self._claimed.get((group, *tp))

    def check(self, op: str, group: str, fence: Fence) -> None:
        """Refuse (:class:`StoreFenced`) if a higher generation claimed any of the fence's partitions.

        A partition nobody claimed, or claimed by this generation or a lower one, passes: the
        generation only ever fences *older* assignments off."""
        newer = {}
        for tp in fence.partitions:
            holder = self.holder(group, tp)
            if holder is not None and holder > fence.generation:
                newer[tp] = holder
        if newer:
            raise StoreFenced(op, fence.generation, newer)

    def claim(self, group: str, fence: Fence, persist: Callable[[list[Partition]], None]) -> None:
        """Record ``fence``'s generation for its partitions, or refuse the whole claim if any is newer.

        ``persist`` gets the partitions whose claim rises and must make them durable before they
        count here: a store that crashes after answering must still know the claim on restart."""
        self.check("claim", group, fence)
        rising = [tp for tp in fence.partitions if (self.holder(group, tp) or -1) < fence.generation]
        if rising:
            persist(rising)
            for tp in rising:
                self._claimed[(group, *tp)] = fence.generation
