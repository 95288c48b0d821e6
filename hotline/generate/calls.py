"""Plan the month's calls: one before each November order, plus direct answers, invalid and abandoned calls.

Their totals (received, answered, valid, direct, online resolution, categories) are
the headline's; the ordered calls take their order's type and category.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from hotline.generate.calendar import at
from hotline.generate.model import CallPlan, World
from hotline.schemas.events import Caller, CallType
from hotline.streams.deadlines import is_workday

CALL_START_S = 7 * 3600  # the hotline answers 07:00-22:00 every day
CALL_END_S = 22 * 3600
CALLER_SHARE = 0.4
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
