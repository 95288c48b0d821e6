"""The order in which records reach the pipeline: keys interleaved, late uploads, a few exact duplicates.

Each key's events keep their time order; across keys, records arrive by a jittered
arrival time, as they would from many producers, so the pipeline's dedup and
ordering are exercised by the generated month.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hotline.generate.emit import ContractEvent
from hotline.schemas.events import dump_event


def arrival_order(
    seqs: Sequence[list[ContractEvent]],
    rng: random.Random,
    duplicate_share: float,
    extra: Sequence[list[ContractEvent]] = (),
    extra_rng: random.Random | None = None,
) -> list[bytes]:
    """Interleave keys by a jittered arrival time, keep each key in order, repeat a few records.

    ``extra`` sequences arrive among them, timed by ``extra_rng``: the others' arrival (and
    which records repeat) stays what it was without them.
    """
    timed = _with_duplicates(_timed(seqs, rng), rng, duplicate_share)
    if extra:
        late = _timed(extra, extra_rng or random.Random(0))
        timed += [(arrive, len(timed) + i, record) for i, (arrive, _, record) in enumerate(late)]
    timed.sort(key=lambda x: (x[0], x[1]))
    return [record for _, _, record in timed]


def _timed(seqs: Sequence[list[ContractEvent]], rng: random.Random) -> list[tuple[float, int, bytes]]:
    """Each record with its arrival time (each key's records in order) and its index."""
    timed: list[tuple[float, int, bytes]] = []
    for seq in seqs:
        last = float("-inf")
        for event in seq:
            delay = rng.expovariate(1 / 120)
            if rng.random() < 0.02:
                delay += rng.uniform(3600, 12 * 3600)  # a late upload
            arrive = max(event.occurred_at.timestamp() + delay, last + 1)
            last = arrive
            timed.append((arrive, len(timed), dump_event(event)))
    return timed


def _with_duplicates(
    timed: list[tuple[float, int, bytes]], rng: random.Random, share: float
) -> list[tuple[float, int, bytes]]:
    """A few records sent again, later (the same event from another attempt)."""
    count = round(share * len(timed))
    for j, i in enumerate(sorted(rng.sample(range(len(timed)), count))):
        arrive, _, record = timed[i]
        timed.append((arrive + rng.uniform(1, 4 * 3600), len(timed) + j, record))
    return timed
