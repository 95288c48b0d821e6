"""The live gauges of open orders per unit (在办, 即将到期, 已逾期), current at any instant.

The clock moves these figures, not events: an open order becomes due soon and then
overdue while nothing happens. Rather than a timer rewriting a table as deadlines pass
(Faust tables mutated from a timer can lose changes, faust-streaming #216), each unit keeps
its open orders' deadlines sorted, and a reading at ``now`` counts them by bisection: the
figures are exact at whatever instant they are read, and nothing is written as time passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sortedcontainers import SortedList

from hotline.schemas import metrics as mc
from hotline.schemas.metrics import OrderStatus
from hotline.streams.alerts import awaiting_supervision, is_open
from hotline.streams.windows import Windows


@dataclass(frozen=True)
class Reading:
    """Per unit, each gauge's value at one instant; and when the clock alone next changes one."""

    gauges: dict[str, dict[str, int]]
    next_change: float | None  # epoch seconds


class OpenOrders:
    """Each open order's unit and deadline (epoch seconds), indexed per unit by deadline."""

    def __init__(self) -> None:
        self._orders: dict[str, tuple[str, float]] = {}
        self._due: dict[str, SortedList] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def update(self, order_id: str, unit_id: str | None, due: datetime | None) -> None:
        """The order's state now: open at ``unit_id`` until ``due``, or closed (``None``)."""
        old = self._orders.pop(order_id, None)
        if old is not None:
            self._due[old[0]].remove(old[1])
        if unit_id and due is not None:
            at = due.timestamp()
            self._orders[order_id] = (unit_id, at)
            self._due.setdefault(unit_id, SortedList()).add(at)

    def follow(self, order_id: str, state: Mapping[str, Any] | None) -> None:
        """Track an order from its folded state: open while dispatched and not completed."""
        if is_open(state):
            assert state is not None
            self.update(order_id, state["unit"], datetime.fromisoformat(state["due"]))
        else:
            self.update(order_id, None, None)

    def forget(self, keep: Callable[[str], bool]) -> None:
        """Drop the orders ``keep`` rejects (their partitions moved to another worker)."""
        for order_id in [o for o in self._orders if not keep(o)]:
            self.update(order_id, None, None)

    def read(self, now: float, soon_s: int = mc.DUE_SOON_S) -> Reading:
        gauges: dict[str, dict[str, int]] = {}
        changes: list[float] = []
        for unit, due in self._due.items():
            if not due:
                continue
            overdue = due.bisect_left(now)
            soon = due.bisect_left(now + soon_s)
            by_status = {
                OrderStatus.OVERDUE: overdue,
                OrderStatus.DUE_SOON: soon - overdue,
                OrderStatus.NOT_DUE: len(due) - soon,
            }
            gauges[unit] = {g.name: sum(n for s, n in by_status.items() if g.holds(s)) for g in mc.GAUGES}
            if overdue < len(due):
                changes.append(due[overdue])
            if soon < len(due):
                changes.append(due[soon] - soon_s)
        return Reading(gauges, min(changes) if changes else None)


class AwaitingSupervision:
    """Orders due for supervision and not supervised yet, per unit (the screen's 待督办 and its list).

    Events move it, not the clock: the second unsatisfied visit adds an order, ``order.supervised``
    (or a re-dispatch elsewhere) takes it off or moves it.
    """

    def __init__(self) -> None:
        self._orders: dict[str, tuple[str, str]] = {}  # order_id -> (unit, since: ISO)

    def __len__(self) -> int:
        return len(self._orders)

    def follow(self, order_id: str, state: Mapping[str, Any] | None) -> None:
        if awaiting_supervision(state):
            assert state is not None
            self._orders[order_id] = (state["unit"], state["supervision_due"])
        else:
            self._orders.pop(order_id, None)

    def forget(self, keep: Callable[[str], bool]) -> None:
        for order_id in [o for o in self._orders if not keep(o)]:
            del self._orders[order_id]

    def by_unit(self) -> dict[str, list[dict[str, str]]]:
        """Per unit, its orders awaiting supervision, the longest waiting first."""
        out: dict[str, list[dict[str, str]]] = {}
        for order_id, (unit, since) in sorted(self._orders.items(), key=lambda kv: (kv[1][1], kv[0])):
            out.setdefault(unit, []).append({"order_id": order_id, "since": since})
        return out


@dataclass
class AgentFigures:
    """The screen's reading of the agents' tables (``reports.live.LiveFigures``): the day
    windows and open orders a worker holds, and the months the store has data for."""

    windows: Windows
    open_orders: OpenOrders
    stored_months: set[int]
    awaiting: AwaitingSupervision = field(default_factory=AwaitingSupervision)

    def totals(self, first: date, last: date) -> dict[str, dict[str, int]]:
        return self.windows.totals(first, last)

    def gauges(self, now: float) -> Reading:
        return self.open_orders.read(now)

    def months(self) -> set[int]:
        return self.stored_months | self.windows.months()

    def awaiting_supervision(self) -> dict[str, list[dict[str, str]]]:
        return self.awaiting.by_unit()
