"""The unit registry with its history: who the member units are, and were, at any date.

Member units are renamed, merged and retired (机构改革). A period must be reported with the
units in force then, and a comparison must follow a unit across a change, so the registry
is a list of dated rows rather than a fixed list of names:

``unit_id,name,group,order,valid_from,valid_to,successor``

* ``valid_from`` / ``valid_to``: the first and the last day (inclusive, the office's local
  dates) the row is in force; empty means "since always" / "still in force".
* A rename keeps the ``unit_id``: the old name's row ends, the new one's starts the next day.
* A unit that ends with a ``successor`` hands its figures on: a merged unit's earlier
  figures are its predecessors' sum (:meth:`Registry.lineage`); a retired unit has none.

The office's CSV is package data until ``hotline units import`` stores one in ClickHouse;
every worker, the store and the commands then read the stored version
(:func:`hotline.sinks.clickhouse.ClickHouseStore.registry_rows`). The version is a digest of
the rows, so the same rows are the same version wherever they are read.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

COLUMNS = ("unit_id", "name", "group", "order", "valid_from", "valid_to", "successor")
_ALIASES = {"id": "unit_id"}  # the registry's first format had only id, name, group, order


class RegistryError(ValueError):
    """A registry file that cannot be used; the message names the line and the column."""


@dataclass(frozen=True)
class Unit:
    id: str
    name: str
    group: str
    order: int
    valid_from: date | None = None  # first day in force; None: since always
    valid_to: date | None = None  # last day in force (inclusive); None: still in force
    successor: str = ""  # the unit that carries this one's figures on after valid_to

    def in_force(self, first: date, last: date) -> bool:
        """In force on at least one day of ``first``..``last``."""
        return (self.valid_from is None or self.valid_from <= last) and (
            self.valid_to is None or first <= self.valid_to
        )

    def row(self) -> list[str]:
        """The CSV row (and the stored row), dates as ISO strings, empty when open."""
        return [
            self.id,
            self.name,
            self.group,
            str(self.order),
            self.valid_from.isoformat() if self.valid_from else "",
            self.valid_to.isoformat() if self.valid_to else "",
            self.successor,
        ]


@dataclass(frozen=True)
class Change:
    """One dated change of the registry, for ``hotline units changes``."""

    day: date
    kind: str  # added, renamed, merged, succeeded, retired
    unit_id: str
    text: str


@dataclass
class Registry:
    """Units by id and by Chinese name, in display order, as in force over one span of dates
    (all open rows by default), with the whole history to answer for any other span."""

    history: tuple[Unit, ...]
    units: list[Unit] = field(init=False)
    by_id: dict[str, Unit] = field(init=False)
    by_name: dict[str, Unit] = field(init=False)
    version: str = field(init=False)
    _spans: dict[str, list[Unit]] = field(init=False)

    def __init__(self, history: Iterable[Unit], shown: Iterable[Unit] | None = None) -> None:
        self.history = tuple(history)
        _check(self.history)
        chosen = list(shown) if shown is not None else [u for u in self.history if u.valid_to is None]
        self.units = sorted(chosen, key=lambda u: (u.order, u.id))
        self.by_id = {u.id: u for u in self.units}
        self.by_name = {u.name: u for u in self.units}
        self.version = version_of(self.history)
        self._spans = {}
        for u in self.history:
            self._spans.setdefault(u.id, []).append(u)

    def __contains__(self, unit_id: object) -> bool:
        return unit_id in self.by_id

    def __iter__(self) -> Iterator[Unit]:
        return iter(self.units)

    def __len__(self) -> int:
        return len(self.units)

    def during(self, first: date, last: date) -> Registry:
        """The units in force on some day of ``first``..``last``; a unit renamed within it is
        named as it was on its last day in force there."""
        latest: dict[str, Unit] = {}
        for u in self.history:
            if u.in_force(first, last) and (u.id not in latest or _start(u) > _start(latest[u.id])):
                latest[u.id] = u
        return Registry(self.history, latest.values())

    def at(self, day: date) -> Registry:
        """The units in force on ``day``."""
        return self.during(day, day)

    def knows(self, unit_id: str, day: date) -> bool:
        """Whether ``unit_id`` is in force on ``day`` (an event for it then is countable)."""
        return any(u.in_force(day, day) for u in self._spans.get(unit_id, ()))

    def lineage(self, unit_id: str, first: date, last: date) -> frozenset[str]:
        """The unit ids whose figures over ``first``..``last`` count as ``unit_id``'s when a later
        period is compared with that one: the unit itself and, transitively, every unit that
        handed its figures on to it (``successor``) and was in force then. A merged unit's
        earlier figures are its predecessors' sum; a renamed unit that kept its id is itself."""
        found, todo = {unit_id}, [unit_id]
        while todo:
            current = todo.pop()
            for u in self.history:
                if u.successor == current and u.id not in found:
                    found.add(u.id)
                    todo.append(u.id)
        return frozenset(i for i in found if any(u.id == i and u.in_force(first, last) for u in self.history))

    def changes(self) -> list[Change]:
        """Every dated change, oldest first: additions, renames, merges and retirements."""
        out: list[Change] = []
        for u in self.history:
            earlier = [
                p for p in self.history if p.id == u.id and p.valid_to and u.valid_from and p.valid_to < u.valid_from
            ]
            if u.valid_from is not None:
                if earlier:
                    before = max(earlier, key=lambda p: p.valid_to or date.min)
                    out.append(Change(u.valid_from, "renamed", u.id, f"{before.name} → {u.name}"))
                else:
                    kind, text = self._arrival(u)
                    out.append(Change(u.valid_from, kind, u.id, text))
            if u.valid_to is not None and not any(
                n.id == u.id and n.valid_from and n.valid_from > u.valid_to for n in self.history
            ):
                kind = "succeeded" if u.successor else "retired"
                text = f"{u.name} → {u.successor}" if u.successor else u.name
                out.append(Change(u.valid_to, kind, u.id, text))
        return sorted(out, key=lambda c: (c.day, c.unit_id, c.kind))

    def _arrival(self, u: Unit) -> tuple[str, str]:
        """How a unit came to be: merged from several, succeeding one under a new id, or added."""
        before = sorted({p.id for p in self.history if p.successor == u.id})
        if len(before) > 1:
            return "merged", f"{'、'.join(before)} → {u.name}"
        if before:
            return "replaced", f"{before[0]} → {u.name}"
        return "added", u.name


def _start(u: Unit) -> date:
    return u.valid_from or date.min


def _check(rows: tuple[Unit, ...]) -> None:
    """One row per unit per day, and every successor a unit of the registry."""
    ids = {u.id for u in rows}
    for u in rows:
        if u.valid_from and u.valid_to and u.valid_to < u.valid_from:
            raise RegistryError(f"unit {u.id}: valid_to {u.valid_to} is before valid_from {u.valid_from}")
        if u.successor and u.successor not in ids:
            raise RegistryError(f"unit {u.id}: successor {u.successor!r} is not in the registry")
        if u.successor and u.valid_to is None:
            raise RegistryError(f"unit {u.id}: a successor needs valid_to (the last day before it)")
        for other in rows:
            if other is not u and other.id == u.id and _overlap(u, other):
                raise RegistryError(f"unit {u.id}: two rows in force on the same day ({u.name}, {other.name})")


def _overlap(a: Unit, b: Unit) -> bool:
    return a.in_force(b.valid_from or date.min, b.valid_to or date.max)


def version_of(rows: Iterable[Unit]) -> str:
    """A short digest of the rows: the registry's version, the same wherever it is read."""
    text = "\n".join(",".join(u.row()) for u in sorted(rows, key=lambda u: (u.id, _start(u))))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _date(value: str, line: int, column: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise RegistryError(f"line {line}: {column}: not a date like 2023-06-01: {value!r}") from exc


def _unit(raw: dict[str, str], line: int) -> Unit:
    row = {_ALIASES.get(k, k): (v or "") for k, v in raw.items() if k is not None}
    for column in ("unit_id", "name", "group", "order"):
        if not row.get(column, "").strip():
            raise RegistryError(f"line {line}: {column}: missing")
    try:
        order = int(row["order"])
    except ValueError as exc:
        raise RegistryError(f"line {line}: order: not a whole number: {row['order']!r}") from exc
    return Unit(
        row["unit_id"].strip(),
        row["name"].strip(),
        row["group"].strip(),
        order,
        _date(row.get("valid_from", ""), line, "valid_from"),
        _date(row.get("valid_to", ""), line, "valid_to"),
        row.get("successor", "").strip(),
    )


def parse_registry(text: str) -> Registry:
    """A registry from CSV text (the format above); errors name the line and the column."""
    reader = csv.DictReader(io.StringIO(text))
    units = [_unit(raw, line) for line, raw in enumerate(reader, start=2)]
    if not units:
        raise RegistryError("no units")
    return Registry(units)


def load_registry(path: Path | None = None) -> Registry:
    """The registry in a CSV file; without a path, the current office's."""
    if path is None:
        from hotline.schemas.office import current_office

        path = current_office().registry_path
    return parse_registry(path.read_text(encoding="utf-8"))


def to_csv(registry: Registry) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(u.row() for u in sorted(registry.history, key=lambda u: (u.order, u.id, _start(u))))
    return out.getvalue()


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The current office's shipped registry: what stands in until one is imported."""
    return load_registry()


def registry_at(path: Path | None) -> Registry:
    """The office's registry file when one is configured (``HOTLINE_UNITS_FILE``), else the shipped one:
    a unit added there is known at the worker's next start (its dead letters can then be redriven)."""
    return load_registry(path) if path is not None else default_registry()
