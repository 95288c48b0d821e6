"""The bulletin as data: per-unit table, headline (section 一) and data-quality notes.

Counts come from ClickHouse; everything printed (rates, '-', order, lists) is
decided here, once, so every output format shows the same figures.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from hotline import seed
from hotline.reports import queries
from hotline.schemas.registry import DISTRICT_GROUP, Registry, default_registry

TYPE_LABELS = {"complaint": "投诉", "help": "求助", "suggestion": "建议", "consultation": "咨询", "other": "其他"}

# CSV column keys (the seed CSV's header) and the attachment's Chinese headers.
COLUMNS: list[tuple[str, str]] = [
    ("unit", "单位"),
    ("dispatched", "交办数"),
    ("completed_on_time", "按期办结数"),
    ("overdue", "逾期数"),
    ("returned", "退单数"),
    ("on_time_rate", "按期办结率"),
    ("visits", "回访数"),
    ("visits_unreached", "回访未应答"),
    ("visit_rate", "回访率"),
    ("visits_satisfied", "回访满意数"),
    ("satisfaction_rate", "回访满意率"),
    ("not_replied", "成员单位未答复当事人数"),
    ("phone_supervised", "电话督办数"),
    ("phone_supervised_replied", "电话督办回复数"),
    ("written_supervised", "书面督办数"),
    ("written_supervised_replied", "书面督办回复数"),
]
FEEDBACK_KEYS = (
    "visits",
    "visits_unreached",
    "visit_rate",
    "visits_satisfied",
    "satisfaction_rate",
    "not_replied",
    "phone_supervised",
    "phone_supervised_replied",
    "written_supervised",
    "written_supervised_replied",
)
DASH = "-"


class Queryable(Protocol):
    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...


def rate(numerator: int, denominator: int) -> str:
    """``99.53%``, rounded half up on the exact fraction; ``-`` for a zero denominator."""
    if denominator == 0:
        return DASH
    value = Decimal(numerator * 100) / Decimal(denominator)
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}%"


def month_key(month: str) -> int:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ValueError(f"month must look like 2019-11, got {month!r}")
    return int(month.replace("-", ""))


@dataclass
class UnitCounts:
    unit_id: str
    name: str
    group: str
    order: int
    dispatched: int = 0
    completed_on_time: int = 0
    overdue: int = 0
    open_not_due: int = 0
    returned: int = 0
    visits: int = 0
    visits_unreached: int = 0
    visits_satisfied: int = 0
    not_replied: int = 0
    phone_supervised: int = 0
    phone_supervised_replied: int = 0
    phone_satisfied: int = 0
    written_supervised: int = 0
    written_supervised_replied: int = 0
    written_satisfied: int = 0
    feedback_events: int = 0

    @property
    def has_feedback(self) -> bool:
        """No visit and no supervision data: the unit's data is late and prints '-'."""
        return self.feedback_events > 0

    def row(self) -> dict[str, str]:
        """The printed row: the seed CSV's keys, the bulletin's formatting."""
        out: dict[str, str] = {
            "unit": self.name,
            "dispatched": str(self.dispatched),
            "completed_on_time": str(self.completed_on_time),
            "overdue": str(self.overdue),
            "returned": str(self.returned),
            "on_time_rate": rate(self.completed_on_time, self.dispatched),
            "visits": str(self.visits),
            "visits_unreached": str(self.visits_unreached),
            "visit_rate": rate(self.visits + self.visits_unreached, self.dispatched),
            "visits_satisfied": str(self.visits_satisfied),
            "satisfaction_rate": rate(self.visits_satisfied, self.visits),
            "not_replied": str(self.not_replied),
            "phone_supervised": str(self.phone_supervised),
            "phone_supervised_replied": str(self.phone_supervised_replied),
            "written_supervised": str(self.written_supervised),
            "written_supervised_replied": str(self.written_supervised_replied),
        }
        if not self.has_feedback:
            out.update(dict.fromkeys(FEEDBACK_KEYS, DASH))
        return out


@dataclass
class Bulletin:
    month: str
    units: list[UnitCounts]
    total: UnitCounts
    headline: dict[str, Any]
    data_quality: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, str]]:
        return [u.row() for u in self.units] + [self.total.row()]

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "columns": dict(COLUMNS),
            "units": [dict(u.row(), unit_id=u.unit_id) for u in self.units],
            "total": self.total.row(),
            "headline": self.headline,
            "data_quality": self.data_quality,
            "counts": [asdict(u) for u in self.units],
        }


def _unit_counts(db: Queryable, month: int, registry: Registry) -> list[UnitCounts]:
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

    for unit_id, dispatched, on_time, overdue, open_not_due in db.query(queries.ORDER_COLUMNS, {"month": month}):
        u = get(unit_id)
        u.dispatched, u.completed_on_time, u.overdue, u.open_not_due = dispatched, on_time, overdue, open_not_due
    names = [
        n
        for n in UnitCounts.__dataclass_fields__
        if n not in ("unit_id", "name", "group", "order", "dispatched", "completed_on_time", "overdue", "open_not_due")
    ]
    for unit_id, *values in db.query(queries.EVENT_COLUMNS, {"month": month}):
        u = get(unit_id)
        for name, value in zip(names, values, strict=True):
            setattr(u, name, int(value))
    return sort_units(list(units.values()))


def sort_units(units: list[UnitCounts]) -> list[UnitCounts]:
    """Districts and zones in administrative order, then by 交办数 descending (ties: registry order)."""
    return sorted(units, key=lambda u: (0, u.order, 0) if u.group == DISTRICT_GROUP else (1, -u.dispatched, u.order))


def total_of(units: list[UnitCounts]) -> UnitCounts:
    total = UnitCounts("total", "总计", "", 0)
    for name in UnitCounts.__dataclass_fields__:
        if name not in ("unit_id", "name", "group", "order"):
            setattr(total, name, sum(getattr(u, name) for u in units))
    return total


def _headline(db: Queryable, month: int, units: list[UnitCounts], total: UnitCounts) -> dict[str, Any]:
    ((received, answered, valid, direct, online),) = db.query(queries.CALLS, {"month": month})
    types = dict(db.query(queries.ORDER_TYPES, {"month": month}))
    categories = db.query(queries.CATEGORIES, {"month": month})
    times = {str(t): int(n) for t, n in db.query(queries.TIMES_RETURNED, {"month": month})}
    with_feedback = [u for u in units if u.has_feedback and u.visits]
    not_replied = sorted((u for u in units if u.has_feedback and u.not_replied), key=lambda u: -u.not_replied)
    return {
        "period": f"{str(month)[:4]}-{str(month)[4:]}",
        "calls": {
            "received": received,
            "valid": valid,
            "consult_or_suggest_answered_directly": direct,
            "dispatched_to_units": total.dispatched,
            "connection_rate": rate(answered, received),
            "online_resolution_rate": rate(online, valid),
            "answered": answered,
            "resolved_online": online,
        },
        "orders": {
            "completed": total.completed_on_time,
            "overdue": total.overdue,
            "on_time_completion_rate": rate(total.completed_on_time, total.dispatched),
        },
        "visits": {
            "visited_completed_orders": total.visits + total.visits_unreached,
            "valid_visits": total.visits,
            "unreached": total.visits_unreached,
            "satisfied": total.visits_satisfied,
            "unsatisfied": total.visits - total.visits_satisfied,
            "satisfaction_rate": rate(total.visits_satisfied, total.visits),
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
            "top_units": {u.name: u.not_replied for u in not_replied[:5]},
        },
        "supervision": {
            "phone": {"issued": total.phone_supervised, "satisfied_after": total.phone_satisfied},
            "written": {"issued": total.written_supervised, "satisfied_after": total.written_satisfied},
        },
        "satisfaction_lists": {
            "at_or_above_80_percent": [u.name for u in with_feedback if u.visits_satisfied * 100 >= 80 * u.visits],
            "below_50_percent": [u.name for u in with_feedback if u.visits_satisfied * 100 < 50 * u.visits],
        },
    }


def data_quality(headline: dict[str, Any], printed: dict[str, Any] | None, deadletters: int) -> list[str]:
    """Where a printed figure differs from what the counts imply; plus what the pipeline refused this month."""
    notes: list[str] = []
    if deadletters:
        notes.append(
            f"本月（{headline['period']}）死信队列中有 {deadletters} 条无法解析或校验失败的记录，未计入本期统计。"
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


def printed_headline(month: str) -> dict[str, Any] | None:
    """The published headline for ``month``, when the project ships it (the seed month)."""
    return next((data for data in seed.headlines() if data.get("period") == month), None)


def build_bulletin(
    db: Queryable, month: str, registry: Registry | None = None, printed: dict[str, Any] | None = None
) -> Bulletin:
    key = month_key(month)
    units = _unit_counts(db, key, registry or default_registry())
    total = total_of(units)
    headline = _headline(db, key, units, total)
    ((dead,),) = db.query(queries.DEADLETTERS, {"month": key})
    reference = printed if printed is not None else printed_headline(month)
    return Bulletin(month, units, total, headline, data_quality(headline, reference, int(dead)))
