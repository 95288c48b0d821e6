"""The agents' rolling per-unit counters: day windows per source partition, unit and local day.

A window holds every windowed catalogue count (``metrics.WINDOWED``) of one unit (calls:
``metrics.CITY``) on one local day (the office's), as contributed by one source partition. Each
source partition is read by exactly one worker at a time, so its windows have one writer,
and each is written to ClickHouse as an absolute value with ``version`` = the last source
offset applied: a batch written twice changes nothing, and a delta from a record whose
offset the window already covers is not applied again (a batch replayed after a crash).

Why ClickHouse and not a Faust changelog holds them durably: the windows must agree with
the order states (a completion moves a cohort counter and the order's state together), and
two Faust changelogs cannot be flushed atomically. The store writes both in the batch, before
the ledger moves; on assignment a worker reloads its partitions' windows from there, and
the per-window version makes any replay exact. Month-to-date and rolling 7- and 30-day
figures are sums of day windows (:meth:`Windows.totals`), kept summed per day as windows
change, so reading them costs a few dictionary sums, not a scan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import NamedTuple

from hotline.sinks.base import WindowRow

SourceTP = tuple[str, int]  # (topic, partition); imports: ("import", generation)
WindowKey = tuple[str, date]  # (unit_id, day)
WindowId = tuple[SourceTP, WindowKey]
Counts = dict[str, int]


class CounterDelta(NamedTuple):
    """One step of a windowed count, caused by one event (a tuple: several per record)."""

    unit_id: str
    day: date
    metric: str
    event_id: str
    value: int


class Step(NamedTuple):
    """A delta with where its event came from: the window's version is that offset."""

    source: SourceTP
    offset: int
    delta: CounterDelta

    @property
    def window(self) -> WindowId:
        return self.source, (self.delta.unit_id, self.delta.day)


@dataclass
class Window:
    counts: Counts = field(default_factory=dict)
    version: int = -1  # no offset applied yet


Staged = dict[WindowId, Window]


def add(into: Counts, counts: Counts, sign: int = 1) -> None:
    for name, value in counts.items():
        total = into.get(name, 0) + sign * value
        if total:
            into[name] = total
        else:
            into.pop(name, None)


class Windows:
    """Every window this process holds, and their sums per day and unit (over sources)."""

    def __init__(self) -> None:
        self._windows: dict[WindowId, Window] = {}
        self._days: dict[date, dict[str, Counts]] = {}

    def __contains__(self, window: WindowId) -> bool:
        return window in self._windows

    def missing(self, steps: Iterable[Step]) -> set[WindowId]:
        """The windows these steps touch that are not loaded yet (read them from ClickHouse first)."""
        return {s.window for s in steps if s.window not in self._windows}

    def load(self, rows: Iterable[WindowRow], wanted: Iterable[WindowId] = ()) -> None:
        """Windows read from ClickHouse; ``wanted`` ones it does not hold start empty."""
        for row in rows:
            window = ((row.source_topic, row.source_partition), (row.unit_id, row.day))
            if window not in self._windows:  # held here: this process wrote it last
                self._set(window, Window(dict(row.counts), row.version))
        for window in wanted:
            if window not in self._windows:
                self._set(window, Window())

    def stage(self, steps: Iterable[Step], versions: bool = True) -> Staged:
        """The windows these steps change, as new copies: committed only once they are stored.

        A step whose offset the window already covers was applied before (a replayed batch);
        ``versions=False`` applies every step (a restatement, folding in time order, not offset order).
        """
        staged: Staged = {}
        for s in steps:
            window = s.window
            committed = self._windows.get(window)
            if versions and committed is not None and s.offset <= committed.version:
                continue
            if window not in staged:
                base = committed or Window()
                staged[window] = Window(dict(base.counts), base.version)
            current = staged[window]
            add(current.counts, {s.delta.metric: s.delta.value})
            current.version = max(current.version, s.offset)
        return staged

    def commit(self, staged: Staged) -> None:
        for window, new in staged.items():
            self._set(window, new)

    def forget(self, sources: Iterable[SourceTP]) -> None:
        """Drop the windows of partitions this worker no longer reads."""
        gone = set(sources)
        for window in [w for w in self._windows if w[0] in gone]:
            old = self._windows.pop(window)
            self._sum(window, old.counts, -1)

    def forget_before(self, day: date) -> int:
        """Drop the windows of days before ``day`` (ClickHouse holds them; a late step on one reads it
        back, as :meth:`missing` says): what a worker holds follows the recent days, not history."""
        old = [w for w in self._windows if w[1][1] < day]
        for window in old:
            del self._windows[window]
        for gone in [d for d in self._days if d < day]:
            del self._days[gone]
        return len(old)

    def months(self) -> set[int]:
        """The months (YYYYMM) of the days held."""
        return {day.year * 100 + day.month for day in self._days}

    def totals(self, first: date, last: date) -> dict[str, Counts]:
        """Per unit, every windowed count summed over the days ``first``..``last`` and every source."""
        out: dict[str, Counts] = {}
        for day, units in self._days.items():
            if first <= day <= last:
                for unit, counts in units.items():
                    add(out.setdefault(unit, {}), counts)
        return out

    def series(self, unit: str | None, first: date, last: date) -> list[tuple[date, Counts]]:
        """Each day ``first``..``last`` in order with its windowed counts (summed over sources) for
        ``unit``, or summed over every unit when None (the city's calls then included, under their
        own names): a trend's points. Days without a window are empty counts, not left out, so a
        chart's x axis is every day. The counts are copies: the caller may change them."""
        out: list[tuple[date, Counts]] = []
        day = first
        while day <= last:
            units = self._days.get(day, {})
            counts: Counts = {}
            for name, held in units.items():
                if unit is None or name == unit:
                    add(counts, held)
            out.append((day, counts))
            day += timedelta(days=1)
        return out

    def _set(self, window: WindowId, new: Window) -> None:
        old = self._windows.get(window)
        if old is not None:
            self._sum(window, old.counts, -1)
        self._windows[window] = new
        self._sum(window, new.counts, 1)

    def _sum(self, window: WindowId, counts: Counts, sign: int) -> None:
        unit, day = window[1]
        add(self._days.setdefault(day, {}).setdefault(unit, {}), counts, sign)


def rows(staged: Staged) -> list[WindowRow]:
    """The staged windows as the store writes them."""
    return [
        WindowRow(unit, day, topic, partition, w.version, dict(w.counts))
        for ((topic, partition), (unit, day)), w in staged.items()
    ]
