"""Which event ids the store may already hold, without asking ClickHouse for every new one.

An event id names one event, whatever its topic or month: a re-sent event is a duplicate,
another event under a stored id a conflict. Looking every id of a batch up in the events
table reads its whole ``event_id`` column once the history is large (a batch's ids hit
nearly every granule of every month), so the read would grow with history. A Bloom filter
(rbloom) over every stored id answers "certainly new" for almost all of them; only the ids
it may hold (re-sends, replays after a crash, one in a thousand false positives) are looked
up, by primary key. Built from the events table when the process starts (month by month),
and told every id stored since.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from rbloom import Bloom

from hotline.sinks.base import Store
from hotline.sinks.store import owned

FALSE_POSITIVES = 0.001
MIN_CAPACITY = 1_000_000


class IdSource(Protocol):
    def event_count(self) -> int: ...

    def event_ids(self) -> Iterable[list[str]]: ...


class KnownIds:
    """A Bloom filter over stored event ids: ``maybe`` keeps the ids worth looking up."""

    def __init__(self, capacity: int = MIN_CAPACITY) -> None:
        self._bloom = Bloom(max(capacity, MIN_CAPACITY), FALSE_POSITIVES)

    @classmethod
    def load(cls, store: IdSource) -> KnownIds:
        """Every id the store holds, with room for as many again before false positives grow."""
        return cls.of(store.event_count(), store.event_ids())

    @classmethod
    def of(cls, count: int, chunks: Iterable[list[str]]) -> KnownIds:
        """``count`` ids (at most), given a chunk at a time, with room for as many again."""
        known = cls(2 * count + MIN_CAPACITY)
        for ids in chunks:
            known.add(ids)
        return known

    def add(self, ids: Iterable[str]) -> None:
        self._bloom.update(ids)

    def maybe(self, ids: Iterable[str]) -> list[str]:
        """The ids the store may hold (all it does hold, and a few it does not)."""
        bloom = self._bloom
        return [i for i in ids if i in bloom]


class EveryId:
    """No filter: every id is worth looking up. A worker storing through ``hotline store`` asks the
    store about all of a batch's ids, and the store filters them (it sees every worker's writes)."""

    def add(self, ids: Iterable[str]) -> None:
        """Nothing to remember here: the store adds what it writes."""

    def maybe(self, ids: Iterable[str]) -> list[str]:
        return list(ids)


def id_filter(store: Store) -> KnownIds | EveryId:
    """The filter a process keeps over ``store``: its own over every stored id when it owns the
    store (it sees every write), none when it stores through ``hotline store``, which keeps the
    one filter of every process's writes and applies it to each id it is asked about."""
    return KnownIds.load(store) if owned(store) else EveryId()
