"""The unit registry: who the member units are, their group and bulletin order."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

REGISTRY_PATH = Path(__file__).parent / "data" / "units.csv"
DISTRICT_GROUP = "县市区园区"


@dataclass(frozen=True)
class Unit:
    id: str
    name: str
    group: str
    order: int


class Registry:
    """Units by id and by Chinese name, in display order."""

    def __init__(self, units: list[Unit]) -> None:
        self.units = sorted(units, key=lambda u: u.order)
        self.by_id = {u.id: u for u in self.units}
        self.by_name = {u.name: u for u in self.units}

    def __contains__(self, unit_id: object) -> bool:
        return unit_id in self.by_id

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.units)

    def __len__(self) -> int:
        return len(self.units)


def load_registry(path: Path = REGISTRY_PATH) -> Registry:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return Registry([Unit(r["id"], r["name"], r["group"], int(r["order"])) for r in rows])


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    return load_registry()


def registry_at(path: Path | None) -> Registry:
    """The office's registry file when one is configured (``HOTLINE_UNITS_FILE``), else the shipped one:
    a unit added there is known at the worker's next start (its dead letters can then be redriven)."""
    return load_registry(path) if path is not None else default_registry()
