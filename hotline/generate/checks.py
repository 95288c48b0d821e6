"""Section 二 of the bulletin: the province's spot checks, test calls and flags on our uploads.

These events come from a generator of their own (seeded ``"<seed>:checks"``), so adding
or changing them leaves the rest of the month exactly as it was.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from importlib.resources.abc import Traversable
from typing import Any

from hotline.generate.calendar import visit_time, work_time
from hotline.generate.emit import ContractEvent, Ids
from hotline.generate.model import OrderPlan, World
from hotline.schemas.events import CheckSpotVisited, CheckTestCall, CheckUploadFlagged, Deduction
from hotline.schemas.registry import Registry
from hotline.streams.deadlines import TZ


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
