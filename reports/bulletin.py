"""The bulletin as data: per-unit table, headline (section 一) and data-quality notes.

Counts come from ClickHouse, read by column name; everything printed (rates, '-', order,
lists) is decided here, once, so every output format shows the same figures. Which
figures, their keys, labels and rates are the metric catalogue's (``hotline.schemas.metrics``).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from hotline import seed
from hotline.reports import periods, queries
from hotline.reports.checks import ProvincialChecks, build_checks
from hotline.reports.periods import Period
from hotline.reports.queries import Queryable
from hotline.schemas import metrics as mc
from hotline.schemas.metrics import DASH, Metric, Rate, Tally, rate
from hotline.schemas.office import DEFAULT_PROFILE, Office, current_office
from hotline.schemas.registry import Registry, default_registry

if TYPE_CHECKING:  # the edition's parts (hotline.reports.edition) import this module
    from hotline.reports.charts import DailySeries
    from hotline.reports.compare import Comparison, Withheld
    from hotline.reports.coverage import Coverage
    from hotline.reports.issued import Issue, LateData

TYPE_LABELS = {"complaint": "投诉", "help": "求助", "suggestion": "建议", "consultation": "咨询", "other": "其他"}

# The attachment's columns after 单位, in the seed's order: catalogue metrics, whose names are
# the CSV keys (the seed CSV's header) and whose labels the Chinese headers.
TABLE: tuple[Metric, ...] = (
    mc.DISPATCHED,
    mc.COMPLETED_ON_TIME,
    mc.OVERDUE,
    mc.RETURNED,
    mc.ON_TIME_RATE,
    mc.VISITS,
    mc.VISITS_UNREACHED,
    mc.VISIT_RATE,
    mc.VISITS_SATISFIED,
    mc.SATISFACTION_RATE,
    mc.NOT_REPLIED,
    mc.PHONE_SUPERVISED,
    mc.PHONE_SUPERVISED_REPLIED,
    mc.WRITTEN_SUPERVISED,
    mc.WRITTEN_SUPERVISED_REPLIED,
)
COLUMNS: list[tuple[str, str]] = [("unit", mc.UNIT_LABEL), *((m.name, m.label) for m in TABLE)]
# Columns printed '-' for a unit none of whose feedback (visits, supervision) arrived this month.
FEEDBACK_KEYS = tuple(m.name for m in TABLE if mc.needs_feedback(m))


def month_key(month: str) -> int:
    """``2019-11`` -> 201911 (the month partitions' key); a ValueError names the expected form."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ValueError(f"month must look like 2019-11, got {month!r}")
    return int(month.replace("-", ""))


class UnitCounts(Tally):
    """One unit's counts of the month: every catalogue count the bulletin holds per unit."""

    counted = mc.UNIT_COUNTS
    unit_id: str
    name: str
    group: str
    order: int

    def __init__(self, unit_id: str, name: str, group: str, order: int, **counts: int) -> None:
        super().__init__(**counts)
        self.unit_id, self.name, self.group, self.order = unit_id, name, group, order

    @property
    def has_feedback(self) -> bool:
        """No visit and no supervision data: the unit's data is late and prints '-'."""
        return self[mc.FEEDBACK_EVENTS] > 0

    def row(self) -> dict[str, str]:
        """The printed row: the seed CSV's keys, the bulletin's formatting."""
        out: dict[str, str] = {"unit": self.name}
        for m in TABLE:
            out[m.name] = m.of(self) if isinstance(m, Rate) else str(self[m])
        if not self.has_feedback:
            out.update(dict.fromkeys(FEEDBACK_KEYS, DASH))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"unit_id": self.unit_id, "name": self.name, "group": self.group, "order": self.order, **self.counts()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnitCounts) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]


@dataclass
class Bulletin:
    month: str  # the period's key (:attr:`Period.key`): 2019-11 for a month, 2019-W47, 2019-Q4, 2019, a range
    units: list[UnitCounts]
    total: UnitCounts
    headline: dict[str, Any]
    data_quality: list[str] = field(default_factory=list)
    checks: ProvincialChecks = field(default_factory=ProvincialChecks)  # section 二: the province's checks
    # What the office's edition adds (hotline.reports.edition.assemble); None for the bare period.
    comparison: Comparison | None = None  # 环比: against the previous period, when both are complete
    year_over_year: Comparison | None = None  # 同比: against the same period a year before, likewise
    withheld: tuple[Withheld, ...] = ()  # the comparisons not made, and why
    coverage: Coverage | None = None  # the days the store holds complete data for
    late: LateData | None = None  # 补录: the previous month's events that arrived after it was issued
    issue: Issue | None = None  # number, total number and date, once issued
    daily: DailySeries | None = None  # the month's days, for the Word file's chart
    office: Office = field(default_factory=current_office)  # whose bulletin: names, lists, standards, sections

    @property
    def period(self) -> Period:
        return periods.parse(self.month)

    def rows(self) -> list[dict[str, str]]:
        return [u.row() for u in self.units] + [self.total.row()]

    def to_json(self) -> dict[str, Any]:
        period = self.period
        return {
            "month": self.month,
            "period": {
                "key": period.key,
                "kind": period.kind.name.lower(),
                "label": period.label,
                "start": period.start.isoformat(),
                "end": period.end.isoformat(),
            },
            "columns": dict(COLUMNS),
            "units": [dict(u.row(), unit_id=u.unit_id) for u in self.units],
            "total": self.total.row(),
            "headline": self.headline,
            "data_quality": self.data_quality,
            # Section 二 only for an office a provincial platform checks (its profile says so).
            **({"provincial_checks": self.checks.to_json()} if self.office.bulletin.sections.provincial_checks else {}),
            "counts": [u.to_json() for u in self.units],
            **self.edition_json(),
        }

    def edition_json(self) -> dict[str, Any]:
        """The edition's parts, under keys of their own, only when present (the bare period's JSON is unchanged);
        a comparison not made is listed with its reason under ``comparisons_withheld``."""
        parts = {
            "period_over_period": self.comparison,
            "year_over_year": self.year_over_year,
            "coverage": self.coverage,
            "late_data": self.late,
            "issue": self.issue,
            "daily": self.daily,
        }
        out: dict[str, Any] = {key: part.to_json() for key, part in parts.items() if part is not None}
        if self.withheld:
            out["comparisons_withheld"] = [w.to_json() for w in self.withheld]
        return out

    @property
    def comparisons(self) -> tuple[Comparison, ...]:
        """The comparisons made (环比, then 同比) that have any figure to compare."""
        return tuple(c for c in (self.comparison, self.year_over_year) if c is not None and c.has_previous)


def month_days(month: int) -> tuple[date, date]:
    """The first and last day of a ``YYYYMM`` month: the span whose registry names its units."""
    year, number = divmod(month, 100)
    return date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])


def list_keys(office: Office) -> tuple[str, str]:
    """The JSON keys of the two satisfaction lists, named by the office's cut-offs
    (``at_or_above_80_percent``, ``below_50_percent``)."""
    rules = office.bulletin.satisfaction_lists
    return (
        f"at_or_above_{office.percent(rules.high).removesuffix('%')}_percent",
        f"below_{office.percent(rules.low).removesuffix('%')}_percent",
    )


def _below(n: int, d: int, share: Decimal) -> bool:
    """``n / d < share``, exactly (no rounding on the way)."""
    return d > 0 and n < share * d


def below_standard(units: list[UnitCounts], office: Office) -> dict[str, dict[str, Any]]:
    """未达标: per catalogue rate with a minimum standard in the profile, the standard as printed
    and the units below it (a unit without the rate's data, '-', is not judged)."""
    out: dict[str, dict[str, Any]] = {}
    for name, share in office.bulletin.standards.items():
        m = mc.BY_NAME[name]
        if not isinstance(m, Rate):  # the profile's validation admits rates only
            raise TypeError(f"{name} is not a rate")
        judged = [u for u in units if u.has_feedback or not mc.needs_feedback(m)]
        out[name] = {
            "label": m.label,
            "standard": office.percent(share),
            "units": [u.name for u in judged if _below(*m.terms(u), share)],
        }
    return out


def _unit_counts(db: Queryable, period: dict[str, Any], registry: Registry, office: Office) -> list[UnitCounts]:
    units: dict[str, UnitCounts] = {}

    def get(unit_id: str) -> UnitCounts:
        if unit_id not in units:
            known = registry.by_id.get(unit_id)
            units[unit_id] = UnitCounts(
                unit_id,
                known.name if known else unit_id,
                known.group if known else "",
                known.order if known else 10_000,
            )
        return units[unit_id]

    for sql, counted in queries.PER_UNIT:
        for row in db.query_rows(sql, period):
            u = get(str(row["unit_id"]))
            for m in counted:
                u[m] = int(row[m.name])
    return sort_units(list(units.values()), office.bulletin.ordered_groups)


def sort_units(units: list[UnitCounts], ordered_groups: tuple[str, ...] = ()) -> list[UnitCounts]:
    """The office's ordered groups (districts and zones) in registry order, then the other units by
    交办数 descending (ties: registry order)."""
    return sorted(units, key=lambda u: (0, u.order, 0) if u.group in ordered_groups else (1, -u.dispatched, u.order))


def total_of(units: list[UnitCounts]) -> UnitCounts:
    total = UnitCounts("total", "总计", "", 0)
    for u in units:
        total.add_counts(u)
    return total


def _one(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The single row of an aggregate without GROUP BY."""
    if len(rows) != 1:
        raise ValueError(f"expected one row, got {len(rows)}")
    return rows[0]


def _call_counts(db: Queryable, period: dict[str, Any]) -> dict[str, int]:
    return {name: int(n) for name, n in _one(db.query_rows(queries.CALLS, period)).items()}


def _calls(calls: dict[str, int], total: UnitCounts) -> dict[str, Any]:
    """The headline's calls: what every rate over calls is computed from."""
    return {
        "received": calls[mc.CALLS_RECEIVED.name],
        "valid": calls[mc.CALLS_VALID.name],
        "consult_or_suggest_answered_directly": calls[mc.CALLS_ANSWERED_DIRECTLY.name],
        "dispatched_to_units": total.dispatched,
        "connection_rate": mc.CONNECTION_RATE.of(calls),
        "online_resolution_rate": mc.ONLINE_RESOLUTION_RATE.of(calls),
        "answered": calls[mc.CALLS_ANSWERED.name],
        "resolved_online": calls[mc.CALLS_RESOLVED_ONLINE.name],
    }


def _satisfaction_lists(units: list[UnitCounts], office: Office) -> dict[str, list[str]]:
    """Units at or above the office's high cut-off, and below its low one, by exact fractions."""
    rules = office.bulletin.satisfaction_lists
    with_feedback = [u for u in units if u.has_feedback and u.visits]
    high, low = list_keys(office)
    return {
        high: [u.name for u in with_feedback if not _below(u.visits_satisfied, u.visits, rules.high)],
        low: [u.name for u in with_feedback if _below(u.visits_satisfied, u.visits, rules.low)],
    }


def _headline(
    db: Queryable, period: Period, units: list[UnitCounts], total: UnitCounts, office: Office
) -> dict[str, Any]:
    bound = queries.period_parameters(period)
    calls = _call_counts(db, bound)
    received = calls[mc.CALLS_RECEIVED.name]
    types = {r["first_type"]: int(r["orders"]) for r in db.query_rows(queries.ORDER_TYPES, bound)}
    categories = [(r["category"], int(r["calls"])) for r in db.query_rows(queries.CATEGORIES, bound)]
    returned = db.query_rows(queries.times_returned(period), bound)
    times = {str(r["times"]): int(r["orders"]) for r in returned}
    not_replied = sorted((u for u in units if u.has_feedback and u.not_replied), key=lambda u: -u.not_replied)
    unsatisfied_after = sorted(
        (u for u in units if u.supervision_unsatisfied), key=lambda u: -u.supervision_unsatisfied
    )
    return {
        "period": period.key,
        "calls": _calls(calls, total),
        "orders": {
            "completed": total.completed_on_time,
            "overdue": total.overdue,
            "on_time_completion_rate": mc.ON_TIME_RATE.of(total),
        },
        "visits": {
            "visited_completed_orders": total.visits + total.visits_unreached,
            "valid_visits": total.visits,
            "unreached": total.visits_unreached,
            "satisfied": total.visits_satisfied,
            "unsatisfied": total.visits - total.visits_satisfied,
            "satisfaction_rate": mc.SATISFACTION_RATE.of(total),
        },
        "dispatched_by_type": {
            t: {"count": int(types.get(t, 0)), "share": rate(int(types.get(t, 0)), total.dispatched)}
            for t in TYPE_LABELS
        },
        "top_categories_share_of_all_received_calls": [
            {"category": c, "count": int(n), "share": rate(int(n), received)} for c, n in categories
        ],
        "returns": {
            "return_events": total.returned,
            "orders_returned": sum(times.values()),
            "return_events_to_date_of_those_orders": sum(int(t) * n for t, n in times.items()),
            "share_of_dispatched": rate(total.returned, total.dispatched),
            "orders_by_times_returned": times,
        },
        "not_replied_to_citizen": {
            "total": total.not_replied,
            "top_units": {u.name: u.not_replied for u in not_replied[: office.bulletin.top_units]},
        },
        "supervision": {
            "phone": {"issued": total.phone_supervised, "satisfied_after": total.phone_supervision_satisfied},
            "written": {"issued": total.written_supervised, "satisfied_after": total.written_supervision_satisfied},
        },
        # 约谈: units whose supervised orders stayed unsatisfied after supervision, the most first.
        "unsatisfied_after_supervision": {u.name: u.supervision_unsatisfied for u in unsatisfied_after},
        "satisfaction_lists": _satisfaction_lists(units, office),
        **({"below_standard": below_standard(units, office)} if office.bulletin.standards else {}),
    }


def data_quality(
    headline: dict[str, Any], printed: dict[str, Any] | None, deadletters: int, term: str = periods.Kind.MONTH.value
) -> list[str]:
    """Where a printed figure differs from what the counts imply; plus what the pipeline refused in the
    period (``term``: how the period is called, 本月, 本周, …)."""
    notes: list[str] = []
    if deadletters:
        notes.append(
            f"{term}（{headline['period']}）死信队列中有 {deadletters} 条无法解析或校验失败的记录，未计入本期统计。"
        )
    if not printed:
        return notes
    returns = printed.get("returns", {})
    ours = headline["returns"]
    if "share_as_printed" in returns and returns["share_as_printed"] != ours["share_of_dispatched"]:
        notes.append(
            f"退单占交办工单比例：原通报印为 {returns['share_as_printed']}，按数据计算应为 "
            f"{ours['return_events']}/{headline['calls']['dispatched_to_units']} = {ours['share_of_dispatched']}。"
        )
    if (
        "returns_as_printed" in returns
        and ours["return_events_to_date_of_those_orders"] != returns["returns_as_printed"]
    ):
        notes.append(
            f"退单次数：原通报称 {returns['returns_as_printed']} 单次，即本月退单事件数；按退单次数分布，"
            f"这 {ours['orders_returned']} 件工单截至月底共退单 {ours['return_events_to_date_of_those_orders']} 次"
            f"（部分退单发生在本月之前）。"
        )
    for key, entry in printed.get("dispatched_by_type", {}).items():
        computed = headline["dispatched_by_type"].get(key, {})
        if "share_as_printed" in entry and entry["share_as_printed"] != computed.get("share"):
            fraction = f"{computed.get('count')}/{headline['calls']['dispatched_to_units']}"
            notes.append(
                f"{TYPE_LABELS.get(key, key)}类占比：原通报印为 {entry['share_as_printed']}，"
                f"按 {fraction} 计算应为 {computed.get('share')}。"
            )
    return notes


def printed_headline(month: str, office: Office | None = None) -> dict[str, Any] | None:
    """The published headline for ``month``, when the project ships it (the seed month, the
    shipped office's: another office's month is not checked against it)."""
    if office is not None and office.source != DEFAULT_PROFILE:
        return None
    return next((data for data in seed.headlines() if data.get("period") == month), None)


def period_of(period: str | Period) -> Period:
    """A period as given: already one, or its key (``2019-11``, ``2019-W47``, …; ValueError otherwise)."""
    return period if isinstance(period, Period) else periods.parse(period)


def units_in_force(registry: Registry | None, period: Period) -> Registry:
    """The registry's units in force during the period (names as on their last day in force in it)."""
    return (registry or default_registry()).during(period.start, period.end)


def build_bulletin(
    db: Queryable,
    period: str | Period,
    registry: Registry | None = None,
    printed: dict[str, Any] | None = None,
    office: Office | None = None,
) -> Bulletin:
    """The period's bulletin (a month by default: ``period`` is any :mod:`~hotline.reports.periods` key)."""
    shown = period_of(period)
    bound = queries.period_parameters(shown)
    office = office or current_office()
    registry = units_in_force(registry, shown)
    units = _unit_counts(db, bound, registry, office)
    total = total_of(units)
    headline = _headline(db, shown, units, total, office)
    dead = int(_one(db.query_rows(queries.DEADLETTERS, bound))["deadletters"])
    reference = printed if printed is not None else printed_headline(shown.key, office)
    checks = build_checks(db, bound, registry, [u.unit_id for u in units], office)
    notes = data_quality(headline, reference, dead, shown.kind.value)
    return Bulletin(shown.key, units, total, headline, notes, checks, office=office)


def build_rates(
    db: Queryable, period: str | Period, registry: Registry | None = None, office: Office | None = None
) -> Bulletin:
    """Only what the period's rates are computed from (the table's counts and the calls): the
    period a bulletin compares itself with needs no more, and its reading is halved."""
    shown = period_of(period)
    bound = queries.period_parameters(shown)
    office = office or current_office()
    units = _unit_counts(db, bound, units_in_force(registry, shown), office)
    total = total_of(units)
    headline = {"period": shown.key, "calls": _calls(_call_counts(db, bound), total)}
    return Bulletin(shown.key, units, total, headline, office=office)
