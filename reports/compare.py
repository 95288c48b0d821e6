"""Comparisons: every catalogue rate against the previous period (环比) or the same period a year before (同比).

The office writes "按期办结率、回访率较上月有所提升": the change is a difference of two rates,
so it is computed here on the exact fractions behind them (``Rate.terms``), never on the
printed ``99.53%`` strings, and rounded once, half up to hundredths of a point, like every
printed rate (``hotline.schemas.metrics.rate``). Which rates exist is the catalogue's: the
city-wide comparison takes every :class:`~hotline.schemas.metrics.Rate` whose terms the
bulletin holds; per unit, every rate of the attachment's table.

Whether two periods may be compared at all (both complete) is decided before, by
:mod:`hotline.reports.edition` with :mod:`hotline.reports.coverage`; this module only computes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hotline.reports import periods
from hotline.reports.bulletin import TABLE, Bulletin, UnitCounts, month_key, total_of
from hotline.reports.periods import Period
from hotline.schemas import metrics as mc
from hotline.schemas.metrics import DASH, Rate
from hotline.schemas.registry import Registry

# Every rate of the catalogue, in its order: the headline compares each one the bulletin can compute.
RATES: tuple[Rate, ...] = tuple(m for m in mc.CATALOGUE if isinstance(m, Rate))
# Per unit: every rate of the attachment's table (按期办结率, 回访率, 回访满意率).
UNIT_RATES: tuple[Rate, ...] = tuple(m for m in TABLE if isinstance(m, Rate))
PERIOD_OVER_PERIOD = "环比"  # against the previous period of the same kind
YEAR_OVER_YEAR = "同比"  # against the same period a year before
CALL_PREFIX = "calls_"  # a call count's headline key is its name without it (calls_received -> received)
UNCHANGED = "持平"


def previous_month(month: str) -> str:
    """``2019-11`` -> ``2019-10``, ``2020-01`` -> ``2019-12``."""
    year, mon = divmod(month_key(month), 100)
    return f"{year - (mon == 1)}-{(mon - 2) % 12 + 1:02d}"


def lineage(unit_id: str, period: Period, registry: Registry | None = None) -> tuple[str, ...]:
    """The unit ids whose figures in ``period`` are this unit's: a merged unit's predecessors (their
    sum), a renamed unit's own id, as the registry's history says (``Registry.lineage``); without a
    registry, the unit itself."""
    if registry is None:
        return (unit_id,)
    return tuple(sorted(registry.lineage(unit_id, period.start, period.end))) or (unit_id,)


def counterpart(unit: UnitCounts, other: Bulletin, registry: Registry | None = None) -> UnitCounts | None:
    """``unit``'s counts in the other bulletin's period, summed over its :func:`lineage` there; None when absent."""
    by_id = {u.unit_id: u for u in other.units}
    found = [by_id[i] for i in lineage(unit.unit_id, other.period, registry) if i in by_id]
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    merged = total_of(found)
    merged.unit_id, merged.name, merged.group, merged.order = unit.unit_id, unit.name, unit.group, unit.order
    return merged


def half_up_hundredths(value: Fraction) -> Decimal:
    """Exact rounding of a fraction to two places, ties away from zero (ROUND_HALF_UP)."""
    hundredths = math.floor(abs(value) * 100 + Fraction(1, 2))
    return Decimal(hundredths if value >= 0 else -hundredths).scaleb(-2)


@dataclass(frozen=True)
class Change:
    """One rate this month and last, as exact fractions (None: no figure, a '-' in the table)."""

    metric: Rate
    current: Fraction | None
    previous: Fraction | None

    @property
    def points(self) -> Decimal | None:
        """The change in percentage points, or None when either month has no figure."""
        if self.current is None or self.previous is None:
            return None
        return half_up_hundredths((self.current - self.previous) * 100)

    @property
    def text(self) -> str:
        """``提升0.47个百分点``, ``下降1.20个百分点``, ``持平``; empty without a previous figure."""
        points = self.points
        if points is None:
            return ""
        if points == 0:
            return UNCHANGED
        return f"{'提升' if points > 0 else '下降'}{abs(points)}个百分点"

    @property
    def signed(self) -> str:
        """``+0.47``, ``-1.20``, ``0.00`` for tables and CSV; empty without a previous figure."""
        points = self.points
        if points is None:
            return ""
        return f"+{points}" if points > 0 else str(points)

    @property
    def current_text(self) -> str:
        return _printed(self.current)

    @property
    def previous_text(self) -> str:
        return _printed(self.previous)

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric.name,
            "label": self.metric.label,
            "current": self.current_text,
            "previous": self.previous_text,
            "points": None if self.points is None else str(self.points),
            "text": self.text,
        }


def _printed(value: Fraction | None) -> str:
    """The rate as the bulletin prints it (half up on the exact fraction); '-' without one."""
    return DASH if value is None else mc.rate(value.numerator, value.denominator)


def fraction(m: Rate, counts: mc.SupportsCounts) -> Fraction | None:
    """The exact rate of these counts; None without a denominator."""
    numerator, denominator = m.terms(counts)
    return Fraction(numerator, denominator) if denominator else None


def unit_fraction(m: Rate, unit: UnitCounts | None) -> Fraction | None:
    """A unit's rate, None where its row prints '-' (absent, late feedback, no denominator)."""
    if unit is None or (mc.needs_feedback(m) and not unit.has_feedback):
        return None
    return fraction(m, unit)


def city_counts(bulletin: Bulletin) -> dict[str, int]:
    """Every count behind a city-wide rate, by catalogue name: the table's totals and the headline's calls."""
    calls: Mapping[str, Any] = bulletin.headline["calls"]
    counts = bulletin.total.counts()
    for m in mc.CALL_COUNTS:
        key = m.name.removeprefix(CALL_PREFIX)
        if isinstance(calls.get(key), int):
            counts[m.name] = calls[key]
    return counts


def _city_fraction(m: Rate, bulletin: Bulletin, counts: Mapping[str, int]) -> Fraction | None:
    if mc.needs_feedback(m) and not bulletin.total.has_feedback:
        return None
    return fraction(m, _Counts(counts))


class _Counts:
    """A mapping read as ``SupportsCounts`` (``Rate.terms`` indexes by name)."""

    def __init__(self, counts: Mapping[str, int]) -> None:
        self._counts = counts

    def __getitem__(self, name: str, /) -> int:
        return int(self._counts[name])


@dataclass(frozen=True)
class UnitChange:
    """One unit's (or the total's) rates of :data:`UNIT_RATES` against the previous month."""

    unit_id: str
    name: str
    changes: tuple[Change, ...]

    def of(self, m: Rate) -> Change:
        return next(c for c in self.changes if c.metric is m)

    def to_json(self) -> dict[str, Any]:
        return {"unit_id": self.unit_id, "unit": self.name, **{c.metric.name: c.to_json() for c in self.changes}}


@dataclass(frozen=True)
class Comparison:
    """This period against another one: city-wide rates, then per unit in the table's order.

    ``month`` and ``previous_month`` are the two periods' keys (months for a monthly bulletin)."""

    month: str
    previous_month: str
    headline: tuple[Change, ...]
    units: tuple[UnitChange, ...]
    total: UnitChange
    kind: str = PERIOD_OVER_PERIOD

    @property
    def period(self) -> Period:
        return periods.parse(self.month)

    @property
    def previous(self) -> Period:
        return periods.parse(self.previous_month)

    @property
    def has_previous(self) -> bool:
        """Whether any figure has a previous one to compare with (else nothing is printed)."""
        rows = (*self.units, self.total)
        return any(c.points is not None for c in self.headline) or any(
            c.points is not None for u in rows for c in u.changes
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "month": self.month,
            "previous_month": self.previous_month,
            "previous_label": self.previous.label,
            "headline": [c.to_json() for c in self.headline],
            "units": [u.to_json() for u in self.units],
            "total": self.total.to_json(),
        }


def _unit_change(current: UnitCounts, previous: UnitCounts | None) -> UnitChange:
    changes = tuple(Change(m, unit_fraction(m, current), unit_fraction(m, previous)) for m in UNIT_RATES)
    return UnitChange(current.unit_id, current.name, changes)


def compare(
    current: Bulletin, previous: Bulletin, kind: str = PERIOD_OVER_PERIOD, registry: Registry | None = None
) -> Comparison:
    """``current`` against ``previous`` (built the same way, for the period before or a year before);
    each unit against its :func:`lineage` there (the registry's history: renames and merges)."""
    now, before = city_counts(current), city_counts(previous)
    headline = tuple(
        Change(m, _city_fraction(m, current, now), _city_fraction(m, previous, before))
        for m in RATES
        if set(mc.stored_names((m,))) <= set(now)
    )
    units = tuple(_unit_change(u, counterpart(u, previous, registry)) for u in current.units)
    total = _unit_change(current.total, previous.total)
    return Comparison(current.month, previous.month, headline, units, total, kind)


@dataclass(frozen=True)
class Withheld:
    """A comparison the bulletin does not make, and why: a period it needs is incomplete."""

    kind: str  # PERIOD_OVER_PERIOD or YEAR_OVER_YEAR
    period: str  # the key of the period it would compare with
    reasons: tuple[str, ...]  # 10月数据自10月8日起，不完整

    @property
    def text(self) -> str:
        """``10月数据自10月8日起，不完整，不作比较。``"""
        return "；".join(self.reasons) + "，不作比较。"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "period": self.period, "reasons": list(self.reasons), "text": self.text}
