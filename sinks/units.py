"""The unit registry kept in ClickHouse, so every worker, the store and the commands read one version.

``hotline units import FILE`` adds the file's rows under their version (a digest of the rows:
:func:`hotline.schemas.registry.version_of`); the newest import is the one in force. Until the
first import the table is empty and the office's shipped CSV stands in, so the demo runs
without a step of its own.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from hotline.schemas.registry import Registry, Unit, default_registry
from hotline.sinks.tables import UNIT_REGISTRY, Table

# The newest import's rows (an import repeated keeps its version: DISTINCT folds the copies).
CURRENT = f"""
SELECT DISTINCT version, unit_id, name, unit_group, unit_order, valid_from, valid_to, successor
FROM {{db}}.{UNIT_REGISTRY.name}
WHERE version = (SELECT argMax(version, imported_at) FROM {{db}}.{UNIT_REGISTRY.name})
"""
VERSIONS = f"""
SELECT version, min(imported_at) AS imported_at, count() AS rows
FROM {{db}}.{UNIT_REGISTRY.name}
GROUP BY version
ORDER BY imported_at
"""


class Readable(Protocol):
    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...


class Writable(Readable, Protocol):
    def insert(self, table: Table, rows: list[list[Any]]) -> None: ...


def _day(value: Any) -> date | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _unit(row: dict[str, Any]) -> Unit:
    return Unit(
        str(row["unit_id"]),
        str(row["name"]),
        str(row["unit_group"]),
        int(row["unit_order"]),
        _day(row["valid_from"]),
        _day(row["valid_to"]),
        str(row["successor"]),
    )


def stored_registry(db: Readable, fallback: Registry | None = None) -> Registry:
    """The registry in force: the newest import, or (none yet) ``fallback``, the office's shipped CSV."""
    rows = db.query_rows(CURRENT)
    if not rows:
        return fallback or default_registry()
    return Registry(_unit(r) for r in rows)


def import_registry(db: Writable, registry: Registry) -> bool:
    """Store ``registry`` as the version in force; False when it already is (nothing written)."""
    current = db.query_rows(CURRENT)
    if current and str(current[0]["version"]) == registry.version:
        return False
    db.insert(
        UNIT_REGISTRY,
        [
            [registry.version, u.id, u.name, u.group, u.order, u.valid_from, u.valid_to, u.successor]
            for u in registry.history
        ],
    )
    return True


def versions(db: Readable) -> list[dict[str, Any]]:
    """Every imported version, oldest first, with when it was first imported and its row count."""
    return db.query_rows(VERSIONS)
