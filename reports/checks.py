"""Section 二 of the bulletin: the provincial platform's checks of the month (五率一度考核).

Read from the month's partition of the ``events`` table (``reports/queries.py``: a few dozen
``check.*`` events a month, never the whole history), counted and summed by the metric
catalogue's :class:`~hotline.schemas.metrics.CheckCount` and
:class:`~hotline.schemas.metrics.CheckPoints`. What is printed (the order of units and items,
which items "lost the most") is decided here, once, for every format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hotline.reports import queries
from hotline.reports.queries import Queryable
from hotline.schemas import metrics as mc
from hotline.schemas.events import TEST_CALL_ITEMS
from hotline.schemas.metrics import Tally
from hotline.schemas.office import Office, current_office
from hotline.schemas.registry import Registry


class SpotCounts(Tally):
    """One unit's spot checks of the month."""

    counted = mc.UNIT_CHECK_COUNTS


@dataclass(frozen=True)
class UnitChecks:
    unit_id: str
    name: str
    counts: SpotCounts

    @property
    def problems(self) -> int:
        """Not revisited or unsatisfied: what the bulletin names the unit for."""
        return self.counts[mc.SPOT_NOT_REACHED] + self.counts[mc.SPOT_UNSATISFIED]


@dataclass
class ProvincialChecks:
    """The month's checks: spot checks per unit (in the bulletin's order), test calls' and data
    monitoring's points by item."""

    units: list[UnitChecks] = field(default_factory=list)
    city: dict[str, int] = field(default_factory=dict)  # city-wide check counts by metric name
    points: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # metric name -> item -> points
    # Items that "lost the most" (扣分较多): at least this share of the largest deduction (the office's).
    most_deducted_share: Decimal = field(default_factory=lambda: current_office().bulletin.most_deducted_share)

    def total(self, m: mc.CheckCount) -> int:
        if m.per_unit:
            return sum(u.counts[m] for u in self.units)
        return self.city.get(m.name, 0)

    def by_unit(self, m: mc.CheckCount) -> dict[str, int]:
        """Units with a count of ``m``, most problems first (then the table's order)."""
        return {u.name: u.counts[m] for u in self.units if u.counts[m]}

    def items(self, m: mc.CheckPoints) -> dict[str, Decimal]:
        """Points by item, the most first (ties: the platform's usual order of items, then name)."""
        found = self.points.get(m.name, {})
        return dict(sorted(found.items(), key=lambda kv: (-kv[1], _item_rank(kv[0]), kv[0])))

    def total_points(self, m: mc.CheckPoints) -> Decimal:
        return sum(self.points.get(m.name, {}).values(), Decimal(0))

    def most_deducted(self, m: mc.CheckPoints) -> list[str]:
        """The items that lost the most (扣分较多): at least the office's share of the largest deduction."""
        items = self.items(m)
        if not items:
            return []
        top = max(items.values())
        return [item for item, points in items.items() if points >= top * self.most_deducted_share]

    def to_json(self) -> dict[str, Any]:
        return {
            "spot_checks": {
                **{m.name: self.total(m) for m in mc.UNIT_CHECK_COUNTS},
                "by_unit": {m.name: self.by_unit(m) for m in (mc.SPOT_NOT_REACHED, mc.SPOT_UNSATISFIED)},
            },
            "test_calls": {
                mc.TEST_CALLS.name: self.total(mc.TEST_CALLS),
                mc.TEST_CALL_POINTS.name: _numbers(self.items(mc.TEST_CALL_POINTS)),
                "most_deducted": self.most_deducted(mc.TEST_CALL_POINTS),
            },
            "data_monitoring": {
                mc.UPLOADS_FLAGGED.name: self.total(mc.UPLOADS_FLAGGED),
                mc.UPLOAD_POINTS.name: _numbers(self.items(mc.UPLOAD_POINTS)),
            },
        }


def _item_rank(item: str) -> int:
    return TEST_CALL_ITEMS.index(item) if item in TEST_CALL_ITEMS else len(TEST_CALL_ITEMS)


def _numbers(points: Mapping[str, Decimal]) -> dict[str, int | float]:
    """Points as JSON numbers: integers where whole."""
    return {item: int(p) if p == p.to_integral_value() else float(p) for item, p in points.items()}


def points_text(points: Decimal) -> str:
    """``2``, ``1.5``: as the bulletin prints points."""
    return f"{points.normalize():f}"


def build_checks(
    db: Queryable, period: dict[str, Any], registry: Registry, table_order: Sequence[str], office: Office | None = None
) -> ProvincialChecks:
    """The period's checks (``period``: :func:`~hotline.reports.queries.period_parameters`); units in
    ``table_order`` (the attachment's unit ids) after most problems."""
    checks = ProvincialChecks(most_deducted_share=(office or current_office()).bulletin.most_deducted_share)
    for row in db.query_rows(queries.CHECK_UNITS, period):
        unit_id = str(row["unit_id"])
        known = registry.by_id.get(unit_id)
        counts = SpotCounts(**{m.name: int(row[m.name]) for m in mc.UNIT_CHECK_COUNTS})
        checks.units.append(UnitChecks(unit_id, known.name if known else unit_id, counts))
    rank = {unit_id: i for i, unit_id in enumerate(table_order)}

    def order(u: UnitChecks) -> tuple[int, int, int]:
        known = registry.by_id.get(u.unit_id)
        return (-u.problems, rank.get(u.unit_id, len(rank)), known.order if known else 10_000)

    checks.units.sort(key=order)
    city = db.query_rows(queries.CHECK_CITY, period)
    checks.city = {m.name: int(city[0][m.name]) if city else 0 for m in mc.CITY_CHECK_COUNTS}
    for m in mc.CHECK_POINTS:
        rows = db.query_rows(queries.check_points(m), period)
        checks.points[m.name] = {str(r["item"]): Decimal(str(r[m.name])) for r in rows}
    return checks
