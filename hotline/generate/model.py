"""The plan of the month before it becomes events: orders, their steps, calls, and the shared state.

Orders and calls are planned first (times, units, outcomes) and only turned into
contract events once every plan is complete and numbered, so the planners share
these mutable records and the :class:`World` that holds them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from hotline.generate.calendar import Month
from hotline.generate.targets import Targets, UnitRow
from hotline.schemas.events import Caller, CallType, Method, Outcome

Progress = Callable[[str], None]
StepKind = Literal["dispatched", "returned", "completed", "visited", "supervised", "replied"]


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
