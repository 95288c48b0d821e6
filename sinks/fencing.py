"""Fencing: a worker whose partitions were taken over writes nothing more for them.

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

import time
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


# The most a group's generation can plausibly have risen between two claims this store sees: a
# rebalance raises it by one, and a store restarted after a week of flapping workers would see
# tens or hundreds, not this many.
MAX_GENERATION_STEP = 10_000


class ImplausibleClaim(ValueError):
    """A claim whose generation no real assignment of the group could have: refused as a bad call."""

    def __init__(self, group: str, generation: int) -> None:
        super().__init__(
            f"a claim for group {group!r} under generation {generation} is more than {MAX_GENERATION_STEP} above "
            "every generation this store has seen for the group: refused"
        )


@dataclass
class _Claim:
    generation: int
    renewed: float  # the store's clock at the holder's last claim or fenced call


class Claims:
    """Per consumer group and source partition, the generation that claimed it: the store's rule.

    A claim fences older generations off while its holder is alive: every call it makes under
    that generation renews it, and workers renew their claims every third of ``lease_s`` even
    when idle. A claim its holder has not renewed for ``lease_s`` has lapsed: a claim of any
    generation may take the partition then. That is what lets a consumer group Kafka deleted
    (no member for ``offsets.retention.minutes``, 7 days by default) and re-created, whose
    generations start again at 1, claim its partitions back instead of being refused for good;
    a stalled worker waking after its successor's claim lapsed finds a group with no live
    holder, and its own calls then pass until the next rebalance fences it again.
    """

    def __init__(
        self,
        claimed: Mapping[tuple[str, str, int], int] | None = None,
        lease_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lease_s, self.clock = lease_s, clock
        now = clock()  # claims read back at a store's start count as renewed then: a full lease
        self._claimed: dict[tuple[str, str, int], _Claim] = {k: _Claim(g, now) for k, g in (claimed or {}).items()}

    def holder(self, group: str, tp: Partition) -> int | None:
        """The generation holding ``tp`` for ``group``, if a claim is live (not lapsed)."""
        claim = self._claimed.get((group, *tp))
        return claim.generation if claim is not None and self.clock() - claim.renewed <= self.lease_s else None

    def check(self, op: str, group: str, fence: Fence) -> None:
        """Refuse (:class:`StoreFenced`) if a higher generation holds any of the fence's partitions;
        renew the fence's own claims otherwise.

        A partition nobody holds, or held by this generation or a lower one, passes: the
        generation only ever fences *older* assignments off."""
        newer = {}
        for tp in fence.partitions:
            holder = self.holder(group, tp)
            if holder is not None and holder > fence.generation:
                newer[tp] = holder
        if newer:
            raise StoreFenced(op, fence.generation, newer)
        now = self.clock()
        for tp in fence.partitions:
            claim = self._claimed.get((group, *tp))
            if claim is not None and claim.generation == fence.generation:
                claim.renewed = now

    def plausible(self, group: str, generation: int) -> bool:
        """Whether a group could have reached ``generation``: every rebalance raises it by one, so a
        claim more than :data:`MAX_GENERATION_STEP` above the highest this store has seen for the
        group (lapsed claims included) is from no real assignment; one claim like that, forged with
        the store's token, would otherwise fence every worker off until it lapsed."""
        known = [c.generation for (g, _, _), c in self._claimed.items() if g == group]
        return generation >= 0 and (not known or generation <= max(known) + MAX_GENERATION_STEP)

    def claim(self, group: str, fence: Fence, persist: Callable[[list[Partition]], None]) -> None:
        """Record ``fence``'s generation for its partitions, or refuse the whole claim if a newer live one holds any.

        ``persist`` gets the partitions whose claim changes (a higher generation, or a lapsed one
        taken) and must make them durable before they count here: a store that crashes after
        answering must still know the claim on restart."""
        if not self.plausible(group, fence.generation):
            raise ImplausibleClaim(group, fence.generation)
        self.check("claim", group, fence)
        changing = [tp for tp in fence.partitions if self.holder(group, tp) != fence.generation]
        if changing:
            persist(changing)
            now = self.clock()
            for tp in changing:
                self._claimed[(group, *tp)] = _Claim(fence.generation, now)
