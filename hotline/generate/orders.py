"""Plan every order history whose counts reproduce the seed table, cell by cell.

November-cohort orders (one per 交办数, on time, late or still open, some returned by
another unit first), October orders only where a November figure needs them (orders
returned several times, visits after an October completion, supervised orders), then
each unit's visits and its 未答复 marks.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from hotline.generate.calendar import late_completion, on_time_completion, visit_time, work_after, work_time
from hotline.generate.categories import pick_category
from hotline.generate.model import OrderPlan, Progress, Step, World
from hotline.generate.targets import CALL_TYPES, Targets, UnitRow
from hotline.schemas.events import CallType, Method, Outcome
from hotline.streams.deadlines import due_at

DUE_AT_OMITTED_SHARE = 0.3  # dispatches without due_at, so the pipeline's own computation is exercised
NOV_VISIT_SHARE = 0.85  # of a unit's visitable November orders; the rest of its visits are carry-over


@dataclass
class Slot:
    """A November cohort order before scheduling: final unit, status, optional first unit."""

    unit_id: str
    status: Literal["on_time", "late", "open"]
    order_type: CallType = "other"
    returned_by: str | None = None


def november_slots(world: World) -> list[Slot]:
    """One slot per 交办数; a few overdue orders stay open (as the seed month's: one per unit with ≥5 overdue)."""
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
