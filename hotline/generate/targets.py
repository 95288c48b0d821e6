"""The bulletin to reproduce, read as exact counts: the seed table's rows and the headline's figures.

Everything else in the generator plans towards these numbers, so they are read and
checked once, here. The headline prints rates and shares, not counts; the counts
behind them are recovered with the bulletin's own rounding (two decimals, half up).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from importlib.resources.abc import Traversable
from typing import Any

from hotline.schemas.events import CallType, Method
from hotline.schemas.registry import Registry

CALL_TYPES: tuple[CallType, ...] = ("complaint", "help", "suggestion", "consultation", "other")


@dataclass(frozen=True)
class UnitRow:
    """One row of the seed table; visit/supervision fields are None where it prints '-'."""

    unit_id: str
    dispatched: int
    on_time: int
    overdue: int
    returned: int
    visits: int | None
    unreached: int | None
    satisfied: int | None
    not_replied: int | None
    phone: int | None
    phone_replied: int | None
    written: int | None
    written_replied: int | None

    @property
    def has_visit_data(self) -> bool:
        """'-' rows must get no visit or supervision event at all, not zeros."""
        return self.visits is not None


@dataclass(frozen=True)
class Targets:
    """Headline figures turned into exact counts."""

    year: int
    month: int
    received: int
    answered: int
    valid: int
    direct: int
    online: int
    by_type: dict[CallType, int]
    top_categories: dict[str, int]
    times_returned: dict[int, int]
    satisfied_after: dict[Method, int]


def pct(numerator: int, denominator: int) -> str:
    """A rate as the bulletin prints it: two decimals, half up, with '%'."""
    value = (Decimal(numerator) * 100 / Decimal(denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return f"{value}%"


def count_for_share(share: str, denominator: int) -> int:
    """The count whose printed share of ``denominator`` is ``share`` (nearest if several)."""
    target = Decimal(share.rstrip("%")) * denominator / 100
    centre = int(target.to_integral_value(ROUND_HALF_UP))
    fits = [n for n in range(max(0, centre - 3), centre + 4) if pct(n, denominator) == share]
    if not fits:
        raise ValueError(f"no count of {denominator} prints as {share}")
    return min(fits, key=lambda n: abs(Decimal(n) - target))


def _cell(value: str) -> int | None:
    return None if value.strip() == "-" else int(value)


def load_table(path: Traversable, registry: Registry) -> list[UnitRow]:
    """Seed table rows in table order; the 总计 row is checked against the sum, not returned."""
    raw = list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))
    rows = [_unit_row(r, registry) for r in raw if r["unit"] != "总计"]
    total = next((r for r in raw if r["unit"] == "总计"), None)
    if total is not None:
        for column, attr in (("dispatched", "dispatched"), ("returned", "returned"), ("visits", "visits")):
            if int(total[column]) != sum(getattr(r, attr) or 0 for r in rows):
                raise ValueError(f"seed table: 总计 {column} is not the sum of the rows")
    return rows


def _unit_row(r: dict[str, str], registry: Registry) -> UnitRow:
    unit = registry.by_name.get(r["unit"])
    if unit is None:
        raise ValueError(f"seed unit {r['unit']!r} is not in the registry")
    row = UnitRow(
        unit_id=unit.id,
        dispatched=int(r["dispatched"]),
        on_time=int(r["completed_on_time"]),
        overdue=int(r["overdue"]),
        returned=int(r["returned"]),
        visits=_cell(r["visits"]),
        unreached=_cell(r["visits_unreached"]),
        satisfied=_cell(r["visits_satisfied"]),
        not_replied=_cell(r["not_replied"]),
        phone=_cell(r["phone_supervised"]),
        phone_replied=_cell(r["phone_supervised_replied"]),
        written=_cell(r["written_supervised"]),
        written_replied=_cell(r["written_supervised_replied"]),
    )
    if row.on_time + row.overdue != row.dispatched:
        raise ValueError(f"seed unit {r['unit']}: on time + overdue != dispatched")
    return row


def load_targets(path: Traversable) -> Targets:
    """Exact counts behind the headline's printed rates and shares."""
    head: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    year, month = (int(x) for x in head["period"].split("-"))
    calls = head["calls"]
    received = int(calls["received"])
    valid = int(calls["valid"])
    return Targets(
        year=year,
        month=month,
        received=received,
        answered=count_for_share(calls["connection_rate"], received),
        valid=valid,
        direct=int(calls["consult_or_suggest_answered_directly"]),
        online=count_for_share(calls["online_resolution_rate"], valid),
        by_type={t: int(head["dispatched_by_type"][t]["count"]) for t in CALL_TYPES},
        top_categories={
            c["category"]: count_for_share(c["share"], received)
            for c in head["top_categories_share_of_all_received_calls"]
        },
        times_returned={int(k): int(v) for k, v in head["returns"]["orders_by_times_returned"].items()},
        satisfied_after={m: int(head["supervision"][m]["satisfied_after"]) for m in ("phone", "written")},
    )
