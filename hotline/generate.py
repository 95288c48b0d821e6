"""Deterministic generator of a month of contract-v1 events that reproduces the seed bulletin.

The pipeline computes every figure of the monthly table from raw events, so the
only convincing end-to-end test is a stream whose aggregates are known in
advance. This module reads the seed table (``seed/*-units.csv``, :data:`hotline.seed.TABLE`) and headline
(``seed/*-headline.json``, :data:`hotline.seed.HEADLINE`) and plans, order by order and call by call, a
realistic history whose counts reproduce every cell exactly under the counting
rules of SPEC.md:

* November-cohort orders: one per 交办数 of the final unit, on time or overdue,
  237 of them first dispatched to (and returned by) another unit;
* October-cohort orders only where a November figure needs them: orders
  returned several times (the times-returned distribution), orders visited in
  November after an October completion (备注 2), and supervised orders (two
  unsatisfied visits: one in October, one in November);
* calls: received, answered, handled (valid / direct / ordered), with the
  category and type totals of the headline.

Everything is driven by one ``random.Random(seed)``, so the same seed yields
byte-identical output; records come in a plausible arrival order (keys
interleaved, each key's events in time order) with a few exact duplicates.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

from hotline.schemas.events import (
    Caller,
    CallHandled,
    CallReceived,
    CallType,
    CheckSpotVisited,
    CheckTestCall,
    CheckUploadFlagged,
    Deduction,
    Method,
    OrderCompleted,
    OrderDispatched,
    OrderReturned,
    OrderSupervised,
    OrderSupervisionReplied,
    OrderVisited,
    Outcome,
    dump_event,
    route_of,
)
from hotline.schemas.registry import DISTRICT_GROUP, Registry, default_registry
from hotline.streams.deadlines import DEFAULT_LIMITS, TZ, due_at, is_workday

Progress = Callable[[str], None]
ContractEvent = (
    CallReceived
    | CallHandled
    | OrderDispatched
    | OrderReturned
    | OrderCompleted
    | OrderVisited
    | OrderSupervised
    | OrderSupervisionReplied
    | CheckSpotVisited
    | CheckTestCall
    | CheckUploadFlagged
)
StepKind = Literal["dispatched", "returned", "completed", "visited", "supervised", "replied"]

CALL_TYPES: tuple[CallType, ...] = ("complaint", "help", "suggestion", "consultation", "other")
WORK_START_S = 8 * 3600 + 30 * 60  # 08:30, office hours for dispatch, returns, completions
WORK_END_S = 17 * 3600 + 30 * 60  # 17:30
CALL_START_S = 7 * 3600  # the hotline answers 07:00-22:00 every day
CALL_END_S = 22 * 3600
VISIT_START_S = 9 * 3600  # return visits by the front desk, every day
VISIT_END_S = 20 * 3600
DUE_AT_OMITTED_SHARE = 0.3  # dispatches without due_at, so the pipeline's own computation is exercised
CALLER_SHARE = 0.4
NOV_VISIT_SHARE = 0.85  # of a unit's visitable November orders; the rest of its visits are carry-over

# Categories after the headline's top five; their counts are spread flatly so
# that each stays below the fifth category, as the bulletin's ranking implies.
OTHER_CATEGORIES: tuple[tuple[str, float], ...] = (
    ("社会保障", 1.35),
    ("医疗卫生", 1.3),
    ("市场监管", 1.25),
    ("教育培训", 1.2),
    ("公安政法", 1.15),
    ("劳动就业", 1.1),
    ("民政服务", 1.05),
    ("农业农村", 1.0),
    ("国土资源", 0.95),
    ("规划建设", 0.95),
    ("文化旅游", 0.9),
    ("水利水务", 0.85),
    ("邮政通信", 0.85),
    ("金融保险", 0.8),
    ("食品药品", 0.8),
    ("户籍证照", 0.75),
    ("税务", 0.7),
    ("消防安全", 0.65),
    ("企业服务", 0.6),
    ("退役军人", 0.55),
    ("宗教民族", 0.45),
    ("其他", 1.0),
)

DISTRICT_CATEGORIES = ("环境保护", "城市管理", "住建房管", "交通管理")
# What each unit is usually asked about; districts take the general urban mix.
UNIT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "police": ("公安政法", "交通管理", "户籍证照"),
    "jiaofa-group": ("交通管理",),
    "housing": ("住建房管",),
    "transport": ("交通管理",),
    "zhonghuan-water": ("供水电气",),
    "chengfa-group": ("住建房管", "城市管理"),
    "xinao-gas": ("供水电气",),
    "health": ("医疗卫生",),
    "natural-resources": ("国土资源", "规划建设"),
    "hr-social-security": ("社会保障", "劳动就业"),
    "ecology-environment": ("环境保护",),
    "medical-insurance": ("社会保障", "医疗卫生"),
    "state-grid": ("供水电气",),
    "education": ("教育培训",),
    "urban-management": ("城市管理",),
    "banking-insurance-regulation": ("金融保险",),
    "china-mobile": ("邮政通信",),
    "jianglu-group": ("劳动就业", "社会保障"),
    "china-telecom": ("邮政通信",),
    "market-regulation": ("市场监管", "食品药品"),
    "industrial-investment": ("住建房管",),
    "agriculture": ("农业农村",),
    "taxation": ("税务",),
    "china-unicom": ("邮政通信",),
    "postal-administration": ("邮政通信",),
    "radio-tv": ("邮政通信",),
    "industry-it": ("企业服务",),
    "veterans-affairs": ("退役军人",),
    "xiangdun-group": ("公安政法",),
    "emergency-management": ("消防安全",),
    "civil-air-defense": ("住建房管",),
    "development-reform": ("市场监管",),
    "culture-tourism-sports": ("文化旅游",),
    "housing-provident-fund": ("住建房管",),
    "disabled-persons": ("民政服务",),
    "china-post": ("邮政通信",),
    "guoan-network": ("邮政通信",),
    "civil-affairs": ("民政服务",),
    "water-resources": ("水利水务",),
    "youju-center": ("住建房管",),
    "ethnic-religious-affairs": ("宗教民族",),
    "justice": ("公安政法",),
    "commerce": ("市场监管",),
    "medical-vocational-college": ("教育培训",),
}

RETURN_REASONS = (
    "非本单位职责范围",
    "辖区插花地带，管辖不明确",
    "诉求地址不详，无法核实",
    "应由属地政府办理",
    "交办单位有误，请重新交办",
)
CALLER_NAMES = ("张先生", "李女士", "王先生", "刘女士", "陈先生", "杨女士", "赵先生", "周女士")
DIRECT_TYPES: tuple[tuple[CallType, float], ...] = (
    ("consultation", 0.7),
    ("suggestion", 0.15),
    ("help", 0.1),
    ("complaint", 0.05),
)
INVALID_TYPES: tuple[tuple[CallType, float], ...] = (
    ("other", 0.45),
    ("consultation", 0.35),
    ("help", 0.1),
    ("complaint", 0.1),
)


# --------------------------------------------------------------------------- seed


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


# --------------------------------------------------------------------------- time


@dataclass(frozen=True)
class Month:
    """Month M and its neighbours, in Asia/Shanghai."""

    start: datetime
    end: datetime  # exclusive
    prev_start: datetime

    @classmethod
    def of(cls, year: int, month: int) -> Month:
        start = datetime(year, month, 1, tzinfo=TZ)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=TZ)
        prev_start = datetime(year - (month == 1), (month - 2) % 12 + 1, 1, tzinfo=TZ)
        return cls(start, end, prev_start)

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()

    def days(self, previous: bool = False) -> list[date]:
        first = (self.prev_start if previous else self.start).date()
        stop = (self.start if previous else self.end).date()
        return [first + timedelta(days=i) for i in range((stop - first).days)]

    def workdays(self, previous: bool = False) -> list[date]:
        return [d for d in self.days(previous) if is_workday(d)]


def at(day: date, seconds: int) -> datetime:
    """Local time ``seconds`` after midnight of ``day``."""
    return datetime.combine(day, time(), tzinfo=TZ) + timedelta(seconds=seconds)


def work_time(day: date, rng: random.Random) -> datetime:
    return at(day, rng.randint(WORK_START_S, WORK_END_S))


def next_workday(day: date) -> date:
    day += timedelta(days=1)
    while not is_workday(day):
        day += timedelta(days=1)
    return day


def workday_after(day: date, n: int) -> date:
    for _ in range(n):
        day = next_workday(day)
    return day


def next_work_moment(t: datetime, rng: random.Random) -> datetime:
    """``t`` if it is in office hours, else shortly after the next opening."""
    seconds = t.hour * 3600 + t.minute * 60 + t.second
    day = t.date()
    if is_workday(day) and WORK_START_S <= seconds <= WORK_END_S:
        return t
    if not (is_workday(day) and seconds < WORK_START_S):
        day = next_workday(day)
    return at(day, WORK_START_S + rng.randint(0, 2700))


def work_after(t: datetime, rng: random.Random, min_minutes: int, max_minutes: int) -> datetime:
    """An office-hours moment strictly after ``t``: an office step that takes a while."""
    return next_work_moment(t + timedelta(minutes=rng.randint(min_minutes, max_minutes)), rng)


def visit_time(day: date, rng: random.Random) -> datetime:
    return at(day, rng.randint(VISIT_START_S, VISIT_END_S))


def on_time_completion(
    dispatched: datetime, order_type: str, rng: random.Random, close_by: date | None = None
) -> datetime:
    """1-4 working days after dispatch, never after the deadline.

    With ``close_by`` (the month's last day) units hurry to close the month, as
    they do: the delay is capped so the completion stays in the month, down to
    a same-day completion for orders that arrive on the last working day.
    """
    limit = DEFAULT_LIMITS.get(order_type, DEFAULT_LIMITS["other"])
    day = dispatched.date()
    delays = range(1, max(1, min(4, limit - 1)) + 1)
    if close_by is not None:
        delays = range(1, 1 + sum(workday_after(day, d) <= close_by for d in delays)) or range(1, 2)
        seconds = dispatched.hour * 3600 + dispatched.minute * 60 + dispatched.second
        if workday_after(day, 1) > close_by and seconds + 3600 <= WORK_END_S:
            return at(day, rng.randint(seconds + 1800, WORK_END_S))
    done = work_time(workday_after(day, rng.choice(delays)), rng)
    deadline = due_at(dispatched, order_type)
    return done if dispatched < done <= deadline else deadline


def late_completion(dispatched: datetime, order_type: str, rng: random.Random) -> datetime:
    """1-3 working days after the deadline's day, so strictly after the deadline."""
    return work_time(workday_after(due_at(dispatched, order_type).date(), rng.randint(1, 3)), rng)


# --------------------------------------------------------------------------- plans


@dataclass
class Step:
    """One order event before ids are known."""

    at: datetime
    kind: StepKind
    unit_id: str
    outcome: Outcome | None = None
    citizen_replied: bool = True
    method: Method | None = None
    satisfied: bool | None = None
    with_due: bool = True


@dataclass
class OrderPlan:
    """An order's history; ``steps`` is kept in time order."""

    order_type: CallType
    category: str
    steps: list[Step]
    order_id: str = ""
    call: CallPlan | None = None

    @property
    def first_dispatch(self) -> datetime:
        return self.steps[0].at

    @property
    def last(self) -> datetime:
        return self.steps[-1].at

    def completion(self) -> datetime | None:
        return next((s.at for s in self.steps if s.kind == "completed"), None)

    def final_unit(self) -> str:
        return [s.unit_id for s in self.steps if s.kind == "dispatched"][-1]


@dataclass
class CallPlan:
    """A call's history; ``handled`` is None for an abandoned call."""

    received: datetime
    handled: datetime | None
    valid: bool = False
    call_type: CallType = "other"
    category: str = "其他"
    resolved_online: bool = False
    order: OrderPlan | None = None
    caller: Caller | None = None
    call_id: str = ""


@dataclass
class Slot:
    """A November cohort order before scheduling: final unit, status, optional first unit."""

    unit_id: str
    status: Literal["on_time", "late", "open"]
    order_type: CallType = "other"
    returned_by: str | None = None


@dataclass
class World:
    """Everything planned so far, shared by the planning steps."""

    rng: random.Random
    month: Month
    rows: list[UnitRow]
    targets: Targets
    category_left: dict[str, int]
    districts: frozenset[str]
    november: list[OrderPlan] = field(default_factory=list)
    october: list[OrderPlan] = field(default_factory=list)
    calls: list[CallPlan] = field(default_factory=list)

    @property
    def unit_weights(self) -> tuple[list[str], list[int]]:
        return [r.unit_id for r in self.rows], [r.dispatched for r in self.rows]

    def random_unit(self, *exclude: str | None) -> str:
        """A unit drawn like real dispatches (big units more often), none of ``exclude``."""
        ids, weights = self.unit_weights
        while True:
            unit = self.rng.choices(ids, weights=weights)[0]
            if unit not in exclude:
                return unit


def category_targets(targets: Targets) -> dict[str, int]:
    """Handled calls per category: the top five exactly, the rest spread flatly below them."""
    rest = targets.answered - sum(targets.top_categories.values())
    weights = [w for _, w in OTHER_CATEGORIES]
    raw = [Decimal(rest) * Decimal(str(w)) / Decimal(str(sum(weights))) for w in weights]
    counts = [int(x) for x in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in by_remainder[: rest - sum(counts)]:
        counts[i] += 1
    result = dict(targets.top_categories)
    floor = min(targets.top_categories.values())
    for (name, _), n in zip(OTHER_CATEGORIES, counts, strict=True):
        if n >= floor or name in result:
            raise ValueError(f"category {name} would get {n} calls, breaking the top-five ranking")
        result[name] = n
    return result


def pick_category(world: World, unit_id: str, *, consume: bool) -> str:
    """A category typical for the unit; ``consume`` draws from the month's call totals."""
    rng = world.rng
    preferred = UNIT_CATEGORIES.get(unit_id)
    if preferred is None and unit_id in world.districts:
        preferred = DISTRICT_CATEGORIES if rng.random() < 0.6 else None
    left = world.category_left
    if preferred is not None and rng.random() < 0.85:
        open_ = [c for c in preferred if left.get(c, 0) > 0 or not consume]
        if open_:
            choice = rng.choice(open_)
            if consume:
                left[choice] -= 1
            return choice
    names = [c for c, n in left.items() if n > 0]
    choice = rng.choices(names, weights=[left[c] for c in names])[0]
    if consume:
        left[choice] -= 1
    return choice


def november_slots(world: World) -> list[Slot]:
    """One slot per 交办数; a few overdue orders stay open (市民宗局's, one per unit with ≥5 overdue)."""
    slots: list[Slot] = []
    for row in world.rows:
        never = row.overdue if row.dispatched == row.overdue else int(row.overdue >= 5)
        slots += [Slot(row.unit_id, "on_time") for _ in range(row.on_time)]
        slots += [Slot(row.unit_id, "late") for _ in range(row.overdue - never)]
        slots += [Slot(row.unit_id, "open") for _ in range(never)]
    types = [t for t in CALL_TYPES for _ in range(world.targets.by_type[t])]
    if len(types) != len(slots):
        raise ValueError(f"orders by type sum to {len(types)}, the table's 交办数 to {len(slots)}")
    world.rng.shuffle(types)
    for slot, order_type in zip(slots, types, strict=True):
        slot.order_type = order_type
    return slots


def return_slots(world: World) -> tuple[list[str], list[tuple[str, int]]]:
    """Split the month's returns: (returning units of November orders, (unit, k) of October ones).

    Each order with a return in M has exactly one return in M (the table's 301
    return events equal the 301 orders of the distribution), so an order
    returned k times has k-1 returns before M: those are October orders.
    """
    units = [r.unit_id for r in world.rows for _ in range(r.returned)]
    dist = world.targets.times_returned
    if sum(dist.values()) != len(units):
        raise ValueError(f"{sum(dist.values())} returned orders but {len(units)} return events in M")
    world.rng.shuffle(units)
    multi = [k for k in sorted(dist, reverse=True) if k > 1 for _ in range(dist[k])]
    return units[len(multi) :], list(zip(units[: len(multi)], multi, strict=True))


def mark_returns(world: World, slots: list[Slot], returners: list[str]) -> None:
    """Give each November return to an order that ends at another unit."""
    order = list(range(len(slots)))
    world.rng.shuffle(order)
    used: set[int] = set()
    for unit in returners:
        index = next((i for i in order if i not in used and slots[i].unit_id != unit), None)
        if index is None:
            raise ValueError(f"no order left to be returned by {unit}")
        used.add(index)
        slots[index].returned_by = unit


def schedule_november(world: World, slot: Slot) -> OrderPlan:
    """Times for one November order: (dispatch, return, re-dispatch,) completion."""
    rng, month = world.rng, world.month
    workdays = month.workdays()
    while True:
        first = work_time(rng.choice(workdays), rng)
        steps = [Step(first, "dispatched", slot.returned_by or slot.unit_id)]
        final = first
        if slot.returned_by is not None:
            back = work_after(first, rng, 60, 26 * 60)
            final = work_after(back, rng, 10, 240)
            steps += [Step(back, "returned", slot.returned_by), Step(final, "dispatched", slot.unit_id)]
        deadline = due_at(final, slot.order_type)
        if final < month.end and (slot.status != "open" or deadline < month.end):
            break
    if slot.status == "on_time":
        done = on_time_completion(final, slot.order_type, rng, month.last_day)
        steps.append(Step(done, "completed", slot.unit_id))
    elif slot.status == "late":
        steps.append(Step(late_completion(final, slot.order_type, rng), "completed", slot.unit_id))
    category = pick_category(world, slot.unit_id, consume=True)
    return OrderPlan(slot.order_type, category, steps)


def random_type(rng: random.Random, targets: Targets) -> CallType:
    return rng.choices(CALL_TYPES, weights=[targets.by_type[t] for t in CALL_TYPES])[0]


def october_chain(world: World, unit_id: str, times: int) -> OrderPlan:
    """An October order returned ``times - 1`` times in October, then once in M by ``unit_id``."""
    rng, month = world.rng, world.month
    workdays = month.workdays(previous=True)
    units: list[str] = []
    for i in range(times - 1):
        last = unit_id if i == times - 2 else None
        units.append(world.random_unit(units[-1] if units else None, last))
    units.append(unit_id)
    while True:
        t = work_time(rng.choice(workdays[: max(1, len(workdays) // 2)]), rng)
        steps = [Step(t, "dispatched", units[0])]
        for previous, following in itertools.pairwise(units):
            t = work_after(t, rng, 60, 30 * 60)
            steps.append(Step(t, "returned", previous))
            t = work_after(t, rng, 10, 240)
            steps.append(Step(t, "dispatched", following))
        if t < month.start:
            break
    back = work_time(rng.choice(month.workdays()[: len(month.workdays()) * 2 // 3]), rng)
    final_unit = world.random_unit(unit_id)
    again = work_after(back, rng, 10, 240)
    order_type = random_type(rng, world.targets)
    steps += [Step(back, "returned", unit_id), Step(again, "dispatched", final_unit)]
    steps.append(Step(on_time_completion(again, order_type, rng, month.last_day), "completed", final_unit))
    return OrderPlan(order_type, pick_category(world, final_unit, consume=False), steps)


def october_completed(world: World, unit_id: str, latest_done: date) -> OrderPlan:
    """An October order of ``unit_id`` completed on time by ``latest_done``."""
    rng = world.rng
    workdays = [d for d in world.month.workdays(previous=True) if d < latest_done]
    order_type = random_type(rng, world.targets)
    while True:
        dispatched = work_time(rng.choice(workdays), rng)
        done = on_time_completion(dispatched, order_type, rng, latest_done)
        if done.date() <= latest_done:
            break
    steps = [Step(dispatched, "dispatched", unit_id), Step(done, "completed", unit_id)]
    return OrderPlan(order_type, pick_category(world, unit_id, consume=False), steps)


def visit_step(order: OrderPlan, when: datetime, outcome: Outcome) -> Step:
    return Step(when, "visited", order.final_unit(), outcome=outcome)


def supervised_order(world: World, unit_id: str, method: Method, replied: bool) -> OrderPlan:
    """Two unsatisfied visits (October, then M) trigger 督办 in M, answered if ``replied``."""
    rng, month = world.rng, world.month
    order = october_completed(world, unit_id, month.start.date() - timedelta(days=4))
    done = order.completion()
    assert done is not None
    first_visit = visit_time(done.date() + timedelta(days=rng.randint(1, 3)), rng)
    order.steps.append(visit_step(order, first_visit, "unsatisfied"))
    days = month.days()
    while True:
        second = visit_time(rng.choice(days[: len(days) * 2 // 3]), rng)
        supervised = work_after(second, rng, 60, 2 * 24 * 60)
        answer = work_after(supervised, rng, 120, 3 * 24 * 60)
        if answer < month.end:
            break
    order.steps += [
        visit_step(order, second, "unsatisfied"),
        Step(supervised, "supervised", unit_id, method=method),
    ]
    if replied:
        order.steps.append(Step(answer, "replied", unit_id, method=method))
    return order


def plan_supervision(world: World) -> dict[str, list[OrderPlan]]:
    """Supervised October orders per unit; 'satisfied after' spread over all replies."""
    by_unit: dict[str, list[OrderPlan]] = {}
    replies: dict[Method, list[Step]] = {"phone": [], "written": []}
    for row in world.rows:
        if not row.has_visit_data:
            continue
        orders: list[OrderPlan] = []
        batches: tuple[tuple[Method, int, int], ...] = (
            ("phone", row.phone or 0, row.phone_replied or 0),
            ("written", row.written or 0, row.written_replied or 0),
        )
        for method, issued, answered in batches:
            if answered > issued:
                raise ValueError(f"{row.unit_id}: more {method} supervision replies than issued")
            batch = [supervised_order(world, row.unit_id, method, i < answered) for i in range(issued)]
            replies[method] += [s for o in batch for s in o.steps if s.kind == "replied"]
            orders += batch
        by_unit[row.unit_id] = orders
    for method, steps in replies.items():
        wanted = world.targets.satisfied_after[method]
        if wanted > len(steps):
            raise ValueError(f"{wanted} satisfied after {method} supervision but {len(steps)} replies")
        happy = set(world.rng.sample(range(len(steps)), wanted))
        for i, step in enumerate(steps):
            step.satisfied = True if i in happy else (None if world.rng.random() < 0.1 else False)
    return by_unit


def visit_outcomes(world: World, row: UnitRow, free: int) -> list[Outcome]:
    """Outcomes of a unit's ``free`` non-supervised visits in M, shuffled."""
    supervised = (row.phone or 0) + (row.written or 0)
    satisfied = row.satisfied or 0
    unsatisfied = (row.visits or 0) - satisfied - supervised
    if unsatisfied < 0:
        raise ValueError(f"{row.unit_id}: fewer unsatisfied visits than supervised orders")
    counts: tuple[tuple[Outcome, int], ...] = (
        ("satisfied", satisfied),
        ("unsatisfied", unsatisfied),
        ("unreached", row.unreached or 0),
    )
    outcomes = [outcome for outcome, n in counts for _ in range(n)]
    world.rng.shuffle(outcomes)
    return outcomes


def plan_unit_visits(world: World, row: UnitRow, supervised: list[OrderPlan]) -> None:
    """Visits in M for one unit: its own November orders first, October carry-over for the rest."""
    rng, month = world.rng, world.month
    free = (row.visits or 0) + (row.unreached or 0) - len(supervised)
    outcomes = visit_outcomes(world, row, free)
    visitable = [
        o
        for o in world.november
        if o.final_unit() == row.unit_id and (c := o.completion()) is not None and c.date() < month.last_day
    ]
    chosen = rng.sample(visitable, min(free, round(len(visitable) * NOV_VISIT_SHARE)))
    carry = [
        october_completed(world, row.unit_id, month.start.date() - timedelta(days=1)) for _ in range(free - len(chosen))
    ]
    world.october += carry
    spans = [3] * len(chosen) + [20] * len(carry)  # carry-over orders wait for the new visit desk
    for order, outcome, span in zip(chosen + carry, outcomes, spans, strict=True):
        done = order.completion()
        assert done is not None
        first = max(done.date() + timedelta(days=1), month.start.date())
        last = min(first + timedelta(days=rng.randint(0, span)), month.last_day)
        day = first + timedelta(days=rng.randint(0, (last - first).days))
        order.steps.append(visit_step(order, visit_time(day, rng), outcome))
    mark_not_replied(world, row, chosen + carry + supervised)


def mark_not_replied(world: World, row: UnitRow, orders: list[OrderPlan]) -> None:
    """成员单位未答复当事人: mostly on unsatisfied visits, where it is most plausible."""
    rng, month = world.rng, world.month
    counted = [
        s for o in orders for s in o.steps if s.kind == "visited" and s.at >= month.start and s.outcome != "unreached"
    ]
    if (row.not_replied or 0) > len(counted):
        raise ValueError(f"{row.unit_id}: more 未答复 than satisfied/unsatisfied visits")
    ranked = sorted(counted, key=lambda s: rng.random() + (0.6 if s.outcome == "satisfied" else 0.0))
    for step in ranked[: row.not_replied or 0]:
        step.citizen_replied = False
    for o in orders:
        for s in o.steps:
            if s.kind == "visited" and s.outcome == "unreached":
                s.citizen_replied = rng.random() < 0.85


def plan_orders(world: World, progress: Progress) -> None:
    """All order histories: November cohort, October chains, supervision, visits."""
    slots = november_slots(world)
    november_returners, october_returners = return_slots(world)
    mark_returns(world, slots, november_returners)
    world.november = [schedule_november(world, s) for s in slots]
    progress(f"planned {len(world.november)} orders of the month")
    world.october = [october_chain(world, unit, k) for unit, k in october_returners]
    supervision = plan_supervision(world)
    world.october += [o for orders in supervision.values() for o in orders]
    for row in world.rows:
        if row.has_visit_data:
            plan_unit_visits(world, row, supervision.get(row.unit_id, []))
    for plan in world.november + world.october:
        plan.steps.sort(key=lambda s: s.at)
        for step in plan.steps:
            step.with_due = world.rng.random() >= DUE_AT_OMITTED_SHARE
    progress(f"planned {len(world.october)} orders of the previous month")


# --------------------------------------------------------------------------- calls


def call_moment(world: World) -> datetime:
    """Any day of M, 07:00-22:00, a little busier on workdays."""
    days = world.month.days()
    day = world.rng.choices(days, weights=[1.0 if is_workday(d) else 0.75 for d in days])[0]
    return at(day, world.rng.randint(CALL_START_S, CALL_END_S - 1200))


def fake_caller(rng: random.Random) -> Caller | None:
    if rng.random() >= CALLER_SHARE:
        return None
    return Caller(phone=f"1380000{rng.randint(0, 9999):04d}", name=rng.choice(CALLER_NAMES))


def weighted_type(rng: random.Random, table: tuple[tuple[CallType, float], ...]) -> CallType:
    return rng.choices([t for t, _ in table], weights=[w for _, w in table])[0]


def plan_calls(world: World) -> None:
    """Calls of M: one per November order, direct answers, invalid and abandoned calls."""
    rng, t = world.rng, world.targets
    online_ordered = set(rng.sample(range(len(world.november)), t.online - min(t.direct, t.online)))
    for i, order in enumerate(world.november):
        received = order.first_dispatch - timedelta(seconds=rng.randint(10 * 60, 90 * 60))
        handled = received + timedelta(seconds=rng.randint(90, 8 * 60))
        order.call = CallPlan(
            received,
            handled,
            True,
            order.order_type,
            order.category,
            i in online_ordered,
            order,
            fake_caller(rng),
        )
        world.calls.append(order.call)
    direct_online = min(t.direct, t.online)
    others = [True] * t.direct + [False] * (t.answered - t.valid)
    categories = [c for c, n in world.category_left.items() for _ in range(n)]
    if len(categories) != len(others):
        raise ValueError("category totals do not match the handled calls")
    rng.shuffle(categories)
    for i, (valid, category) in enumerate(zip(others, categories, strict=True)):
        received = call_moment(world)
        handled = received + timedelta(seconds=rng.randint(60, 15 * 60))
        call_type = weighted_type(rng, DIRECT_TYPES if valid else INVALID_TYPES)
        online = valid and i < direct_online
        world.calls.append(CallPlan(received, handled, valid, call_type, category, online, None, fake_caller(rng)))
    for _ in range(t.received - t.answered):
        world.calls.append(CallPlan(call_moment(world), None, caller=fake_caller(rng)))


# --------------------------------------------------------------------------- events


def assign_ids(world: World) -> None:
    """Human-readable ids numbered in time order, like a call centre's."""
    for prefix, plans in (("XT", world.november), ("XT", world.october)):
        for n, plan in enumerate(sorted(plans, key=lambda p: p.first_dispatch), start=1):
            stamp = plan.first_dispatch.strftime("%Y%m")
            plan.order_id = f"{prefix}{stamp}{n:04d}"
    for n, call in enumerate(sorted(world.calls, key=lambda c: c.received), start=1):
        call.call_id = f"C{call.received.strftime('%Y%m')}{n:04d}"


class Ids:
    """Event ids: UUID-shaped, from the seeded generator, so reproducible and unique."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seen: set[str] = set()

    def next(self) -> str:
        value = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        if value in self.seen:
            raise RuntimeError("event id collision")
        self.seen.add(value)
        return value


def order_event(plan: OrderPlan, step: Step, ids: Ids, rng: random.Random) -> ContractEvent:
    """The contract event of one planned step."""
    eid, when, oid, uid = ids.next(), step.at, plan.order_id, step.unit_id
    if step.kind == "dispatched":
        first = step is plan.steps[0]
        return OrderDispatched(
            event_id=eid,
            occurred_at=when,
            order_id=oid,
            unit_id=uid,
            order_type=plan.order_type,
            category=plan.category,
            due_at=due_at(when, plan.order_type) if step.with_due else None,
            call_id=plan.call.call_id if plan.call is not None and first else None,
        )
    if step.kind == "returned":
        return OrderReturned(
            event_id=eid, occurred_at=when, order_id=oid, unit_id=uid, reason=rng.choice(RETURN_REASONS)
        )
    if step.kind == "completed":
        return OrderCompleted(event_id=eid, occurred_at=when, order_id=oid, unit_id=uid)
    if step.kind == "visited":
        assert step.outcome is not None
        return OrderVisited(
            event_id=eid,
            occurred_at=when,
            order_id=oid,
            unit_id=uid,
            outcome=step.outcome,
            citizen_replied=step.citizen_replied,
        )
    assert step.method is not None
    if step.kind == "supervised":
        return OrderSupervised(event_id=eid, occurred_at=when, order_id=oid, unit_id=uid, method=step.method)
    return OrderSupervisionReplied(
        event_id=eid, occurred_at=when, order_id=oid, unit_id=uid, method=step.method, satisfied=step.satisfied
    )


def call_events(call: CallPlan, ids: Ids) -> list[ContractEvent]:
    events: list[ContractEvent] = [
        CallReceived(
            event_id=ids.next(),
            occurred_at=call.received,
            call_id=call.call_id,
            answered=call.handled is not None,
            caller=call.caller,
        )
    ]
    if call.handled is not None:
        events.append(
            CallHandled(
                event_id=ids.next(),
                occurred_at=call.handled,
                call_id=call.call_id,
                valid=call.valid,
                call_type=call.call_type,
                category=call.category,
                resolved_online=call.resolved_online,
                order_id=call.order.order_id if call.order is not None else None,
            )
        )
    return events


def sequences(world: World) -> list[list[ContractEvent]]:
    """Per-key event sequences (each in time order), orders then calls, by id."""
    ids = Ids(world.rng)
    plans = sorted(world.november + world.october, key=lambda p: p.order_id)
    result = [[order_event(p, s, ids, world.rng) for s in p.steps] for p in plans]
    result += [call_events(c, ids) for c in sorted(world.calls, key=lambda c: c.call_id)]
    return result


def arrival_order(
    seqs: Sequence[list[ContractEvent]],
    rng: random.Random,
    duplicate_share: float,
    extra: Sequence[list[ContractEvent]] = (),
    extra_rng: random.Random | None = None,
) -> list[bytes]:
    """Interleave keys by a jittered arrival time, keep each key in order, repeat a few records.

    ``extra`` sequences arrive among them, timed by ``extra_rng``: the others' arrival (and
    which records repeat) stays what it was without them.
    """
    timed = _with_duplicates(_timed(seqs, rng), rng, duplicate_share)
    if extra:
        late = _timed(extra, extra_rng or random.Random(0))
        timed += [(arrive, len(timed) + i, record) for i, (arrive, _, record) in enumerate(late)]
    timed.sort(key=lambda x: (x[0], x[1]))
    return [record for _, _, record in timed]


def _timed(seqs: Sequence[list[ContractEvent]], rng: random.Random) -> list[tuple[float, int, bytes]]:
    """Each record with its arrival time (each key's records in order) and its index."""
    timed: list[tuple[float, int, bytes]] = []
    for seq in seqs:
        last = float("-inf")
        for event in seq:
            delay = rng.expovariate(1 / 120)
            if rng.random() < 0.02:
                delay += rng.uniform(3600, 12 * 3600)  # a late upload
            arrive = max(event.occurred_at.timestamp() + delay, last + 1)
            last = arrive
            timed.append((arrive, len(timed), dump_event(event)))
    return timed


def _with_duplicates(
    timed: list[tuple[float, int, bytes]], rng: random.Random, share: float
) -> list[tuple[float, int, bytes]]:
    """A few records sent again, later (the same event from another attempt)."""
    count = round(share * len(timed))
    for j, i in enumerate(sorted(rng.sample(range(len(timed)), count))):
        arrive, _, record = timed[i]
        timed.append((arrive + rng.uniform(1, 4 * 3600), len(timed) + j, record))
    return timed


# --------------------------------------------------------------------------- provincial checks


@dataclass(frozen=True)
class CheckTargets:
    """Section 二 of the bulletin: the province's spot checks, test calls and data monitoring."""

    sampled: int
    not_visited: dict[str, int]  # unit_id -> orders the province could not revisit
    unsatisfied: dict[str, int]  # unit_id -> revisits unsatisfied
    test_calls: list[tuple[dict[str, Decimal], str]]  # each call's deductions by item, and its story
    uploads: int
    upload_points: Decimal
    indicator: str


def load_checks(path: Traversable, registry: Registry) -> CheckTargets | None:
    """The headline's section 二 figures (unit names as printed), or None where it has none."""
    head: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    spot = head.get("provincial_spot_check")
    if spot is None:
        return None
    calls = head.get("provincial_test_calls", {}).get("calls", [])
    data = head.get("provincial_data_monitoring", {})

    def by_unit(key: str) -> dict[str, int]:
        return {registry.by_name[name].id: int(n) for name, n in spot.get(key, {}).items()}

    return CheckTargets(
        sampled=int(spot["sampled"]),
        not_visited=by_unit("not_visited_by_unit"),
        unsatisfied=by_unit("unsatisfied_by_unit"),
        test_calls=[({i: Decimal(str(p)) for i, p in c["deductions"].items()}, str(c.get("note", ""))) for c in calls],
        uploads=int(data.get("inaccurate_uploads", 0)),
        upload_points=Decimal(str(data.get("points_deducted", 0))),
        indicator=str(data.get("indicator", "规范性")),
    )


def spot_checkable(world: World) -> dict[str, list[OrderPlan]]:
    """Per unit, the November orders completed (and visited) early enough for the province to revisit them in M."""
    latest = world.month.end - timedelta(days=3)
    out: dict[str, list[OrderPlan]] = {}
    for plan in sorted(world.november, key=lambda p: p.order_id):
        if plan.completion() is not None and plan.last < latest:
            out.setdefault(plan.final_unit(), []).append(plan)
    return out


def spot_checks(world: World, targets: CheckTargets, rng: random.Random, ids: Ids) -> list[list[ContractEvent]]:
    """The province's revisits: the printed units' failures, the rest of the sample satisfied."""
    pool = spot_checkable(world)
    verdicts: list[tuple[str, bool, bool | None]] = [
        *((u, False, None) for u, n in targets.not_visited.items() for _ in range(n)),
        *((u, True, False) for u, n in targets.unsatisfied.items() for _ in range(n)),
    ]
    others = sorted(pool)
    verdicts += [(rng.choice(others), True, True) for _ in range(targets.sampled - len(verdicts))]
    out: list[list[ContractEvent]] = []
    for unit_id, reached, satisfied in verdicts:
        plan = pool[unit_id].pop(rng.randrange(len(pool[unit_id])))
        when = visit_time(plan.last.astimezone(TZ).date() + timedelta(days=rng.randint(1, 2)), rng)
        event = CheckSpotVisited(
            event_id=ids.next(),
            occurred_at=when,
            order_id=plan.order_id,
            unit_id=unit_id,
            reached=reached,
            satisfied=satisfied,
        )
        out.append([event])
    return out


def city_checks(world: World, targets: CheckTargets, rng: random.Random, ids: Ids) -> list[list[ContractEvent]]:
    """The province's test calls and its flags on our uploads, on random workdays of M."""
    days = world.month.workdays()
    out: list[list[ContractEvent]] = []
    for deductions, note in targets.test_calls:
        items = tuple(Deduction(item=i, points=p) for i, p in deductions.items())
        when = work_time(rng.choice(days), rng)
        out.append([CheckTestCall(event_id=ids.next(), occurred_at=when, deductions=items, note=note or None)])
    share = (targets.upload_points / targets.uploads).quantize(Decimal("0.01")) if targets.uploads else Decimal(0)
    for n in range(targets.uploads):
        points = share if n < targets.uploads - 1 else targets.upload_points - share * (targets.uploads - 1)
        when = work_time(rng.choice(days), rng)
        out.append(
            [CheckUploadFlagged(event_id=ids.next(), occurred_at=when, indicator=targets.indicator, points=points)]
        )
    return out


def check_sequences(world: World, targets: CheckTargets | None, seed: int) -> list[list[ContractEvent]]:
    """Section 二's events, from a generator of their own: the rest of the month stays as it was."""
    if targets is None:
        return []
    rng = random.Random(f"{seed}:checks")
    ids = Ids(rng)
    return spot_checks(world, targets, rng, ids) + city_checks(world, targets, rng, ids)


# --------------------------------------------------------------------------- API


def generate(
    table_csv: Traversable,
    headline_json: Traversable,
    seed: int = 2019,
    duplicate_share: float = 0.03,
    progress: Progress | None = None,
) -> list[bytes]:
    """Contract-v1 records (``dump_event`` output) in arrival order, duplicates included."""
    say: Progress = progress or (lambda _msg: None)
    registry = default_registry()
    rows = load_table(table_csv, registry)
    targets = load_targets(headline_json)
    if targets.direct + sum(r.dispatched for r in rows) != targets.valid:
        raise ValueError("direct answers + dispatched orders != valid calls")
    rng = random.Random(seed)
    districts = frozenset(u.id for u in registry.units if u.group == DISTRICT_GROUP)
    month = Month.of(targets.year, targets.month)
    world = World(rng, month, rows, targets, category_targets(targets), districts)
    plan_orders(world, say)
    plan_calls(world)
    assign_ids(world)
    say(f"planned {len(world.calls)} calls")
    checks = check_sequences(world, load_checks(headline_json, registry), seed)
    records = arrival_order(sequences(world), rng, duplicate_share, checks, random.Random(f"{seed}:arrivals"))
    say(f"generated {len(records)} records")
    return records


def route(record: bytes) -> tuple[str, str]:
    """Kafka topic (logical name) and key of a record (``schemas.events.route_of``)."""
    topic, key = route_of(json.loads(record))
    return topic, str(key)


def write_jsonl(records: Iterable[bytes], out: Path) -> int:
    """One line per record: ``{"topic", "key", "event"}``, the event bytes kept verbatim."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = 0
    with out.open("wb") as fh:
        for record in records:
            topic, key = route(record)
            head = json.dumps({"topic": topic, "key": key}, ensure_ascii=False)[:-1]
            fh.write(head.encode() + b', "event": ' + record + b"}\n")
            lines += 1
    return lines
