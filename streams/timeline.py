"""An order's events in event time: what the fold keeps of each, and the state folded from them.

Why a timeline and not a running state: an order's events come from several writers (the
12345 platform dispatches, the unit's own system completes, the call-back team visits), and
from catch-ups (a unit offline for a day, an import of an old export, a replay after an
outage). Kafka keeps order within a partition, not across the systems that write to it, so
the order in which a worker sees an order's events is not the order in which they happened.
An official figure must not depend on it: the order's state is a function of its events
ordered by ``occurred_at`` (ties by lifecycle step, then event id), whatever their arrival.

So the order keeps one small *fact* per event (its time, id, kind, and for a dispatch its
unit, deadline and type), sorted in event time, and its state is the left fold of the rules
below over them. An event later than every other (the usual case) steps the state forward;
one that lands before others re-folds the order from its facts.

What the order contributes to the cohort counters (its unit and cohort day, open, on time or
late) is a function of that state; when a re-fold changes it, the fold emits the difference
(:func:`contribution_change`): the old contribution retracted, the new one added, as Kafka
Streams forwards a KTable update as the old and the new value of a key. The day windows take
it as one more step at the record's offset, so the ledger's rules (a batch written twice
changes nothing, a crash replays it exactly) hold for corrections as for anything else.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import bisect
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypedDict

from hotline.schemas import metrics
from hotline.schemas.events import (
    Event,
    OrderCompleted,
    OrderDispatched,
    OrderReturned,
    OrderSupervised,
    OrderVisited,
)
from hotline.settings import Settings
from hotline.streams.deadlines import TZ

# A fact: [micros since the epoch, event id, kind, ISO time, unit, ISO deadline, order type];
# the last three only for a dispatch. A list, not a tuple: it is JSON in the order table.
Fact = list[Any]

DISPATCHED, RETURNED, COMPLETED, VISITED, UNSATISFIED, SUPERVISED, OTHER = "d", "r", "c", "v", "u", "s", "o"
# Within one instant, the lifecycle's own order: a dispatch before what the unit does with it.
_RANK = {DISPATCHED: 0, RETURNED: 1, COMPLETED: 2, VISITED: 3, UNSATISFIED: 3, SUPERVISED: 4, OTHER: 5}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

# The most events one order may hold, by default (the setting max_order_events): a real order
# has tens; a fact is at most about 250 bytes, so an order's state stays far below Kafka's 1 MB
# record limit (its changelog record), whatever a sender does.
MAX_ORDER_EVENTS: int = Settings.model_fields["max_order_events"].default

SUPERVISION_AFTER = 2  # the office's rule: the second unsatisfied visit makes an order due for 督办


class OrderState(TypedDict, total=False):
    """An order as the fold keeps it (JSON in the Faust table, so plain values).

    ``facts`` is the order's timeline; every other key is folded from it (see the module).
    ``gen``: the state generation it was written in; a state older than an import or a
    restatement is read again from ClickHouse.
    """

    facts: list[Fact]  # one per event folded in, in event time: a redelivery is a no-op
    unit: str  # of the latest dispatch
    due: str  # ISO deadline of the latest dispatch
    order_type: str  # of the latest dispatch
    first_type: str  # of the first dispatch (the headline's split by type)
    cohort_day: str  # ISO local day of the first dispatch
    completed_on_time: bool | None  # None while open
    completed_at: str  # ISO, once completed
    returns: int
    gen: int
    unsatisfied: int  # unsatisfied return visits so far
    supervision_due: str  # ISO: the second unsatisfied visit made it due for supervision (督办)
    supervised: bool  # an order.supervised folded in
    held: list[list[Any]]  # before its dispatch: what its events would move (unit, day, metric, id, value)
    released: list[str]  # event ids dead-lettered when no dispatch came (streams/orphans.py): not counted yet


_NOT_FOLDED = ("gen", "held", "released")  # kept as they are when the order is folded again from its facts


def local_day(ts: datetime) -> date:
    """The office's day of an instant: cohorts, windows and months are counted by it."""
    return ts.astimezone(TZ).date()


def micros(ts: datetime) -> int:
    """An instant as whole microseconds since the epoch: exact, whatever its offset."""
    return (ts - _EPOCH) // _MICRO


def fact_of(ev: Event, due: datetime | None = None) -> Fact:
    """What the fold keeps of an order event (``due``: a dispatch's deadline, given or computed)."""
    at = [micros(ev.occurred_at), ev.event_id]
    if isinstance(ev, OrderDispatched):
        assert due is not None, "a dispatch's fact needs its deadline"
        return [*at, DISPATCHED, ev.occurred_at.isoformat(), ev.unit_id, due.isoformat(), ev.order_type]
    if isinstance(ev, OrderCompleted):
        return [*at, COMPLETED, ev.occurred_at.isoformat()]
    if isinstance(ev, OrderVisited) and ev.outcome == "unsatisfied":
        return [*at, UNSATISFIED, ev.occurred_at.isoformat()]
    if isinstance(ev, OrderVisited):
        return [*at, VISITED]
    if isinstance(ev, OrderReturned):
        return [*at, RETURNED, ev.occurred_at.isoformat()]
    if isinstance(ev, OrderSupervised):
        return [*at, SUPERVISED]
    return [*at, OTHER]


def sort_key(fact: Fact) -> tuple[int, int, str]:
    return fact[0], _RANK[fact[2]], fact[1]


def holds(state: OrderState | None, event_id: str) -> bool:
    """Whether this event is folded into the order already."""
    return bool(state) and any(f[1] == event_id for f in state.get("facts", ()))  # type: ignore[union-attr]


def released(state: OrderState | None, event_id: str) -> bool:
    """Whether this event was dead-lettered as an orphan: in the timeline, but what it moves by
    itself not counted; sent again (a redrive), it counts then (``processing.apply_order_event``)."""
    return bool(state) and event_id in state.get("released", ())  # type: ignore[union-attr]


def add(state: OrderState | None, fact: Fact) -> OrderState:
    """The order with one more event: stepped forward when it is the latest, else folded again."""
    facts = list((state or {}).get("facts", ()))
    key = sort_key(fact)
    if not facts or sort_key(facts[-1]) <= key:
        new = OrderState(**(state or {}))  # type: ignore[typeddict-item]
        facts.append(fact)
        _step(new, fact)
        new["facts"] = facts
        return new
    bisect.insort(facts, fact, key=sort_key)
    new = refold(facts)
    for kept in _NOT_FOLDED:
        if state and kept in state:
            new[kept] = state[kept]  # type: ignore[literal-required]
    return new


def refold(facts: list[Fact]) -> OrderState:
    """The state of an order with these facts (in event-time order)."""
    state = OrderState()
    for fact in facts:
        _step(state, fact)
    state["facts"] = list(facts)
    return state


def _step(state: OrderState, fact: Fact) -> None:
    """One event's rule, applied in event time."""
    kind = fact[2]
    if kind == DISPATCHED:
        _, _, _, at, unit, due, order_type = fact
        if not state.get("unit"):
            state["cohort_day"] = local_day(datetime.fromisoformat(at)).isoformat()
            state["first_type"] = order_type
        # A re-dispatch moves the order (and any completion) to the new unit and reopens it.
        state["unit"], state["due"], state["order_type"] = unit, due, order_type
        state["completed_on_time"] = None
        state.pop("completed_at", None)
    elif kind == COMPLETED:
        # Judged against the deadline in force at the completion's time: the latest dispatch before it.
        if state.get("unit") and state.get("completed_on_time") is None:
            state["completed_on_time"] = datetime.fromisoformat(fact[3]) <= datetime.fromisoformat(state["due"])
            state["completed_at"] = fact[3]
    elif kind == RETURNED:
        state["returns"] = int(state.get("returns", 0)) + 1
    elif kind == UNSATISFIED:
        state["unsatisfied"] = int(state.get("unsatisfied", 0)) + 1
        if state["unsatisfied"] >= SUPERVISION_AFTER and not state.get("supervision_due"):
            state["supervision_due"] = fact[3]
    elif kind == SUPERVISED:
        state["supervised"] = True


# Per outcome (open, on time, late): the catalogue's cohort counters an order counts in.
_COHORT_BY_OUTCOME: dict[bool | None, list[str]] = {
    outcome: [m.name for m in metrics.COHORT_COUNTERS if m.holds_unclocked(outcome)] for outcome in (None, True, False)
}

Contribution = Counter[tuple[str, date, str]]  # (unit, cohort day, cohort counter) -> 1


def contribution(state: OrderState | None) -> Contribution:
    """The cohort counters this order counts in: at its current unit and its cohort day."""
    if not state or not state.get("unit") or "cohort_day" not in state:
        return Counter()
    day = date.fromisoformat(state["cohort_day"])
    return Counter({(state["unit"], day, m): 1 for m in _COHORT_BY_OUTCOME[state.get("completed_on_time")]})


def _cohort_of(state: OrderState | None) -> tuple[str | None, str | None, bool | None]:
    if not state:
        return None, None, None
    return state.get("unit"), state.get("cohort_day"), state.get("completed_on_time")


def contribution_change(before: OrderState | None, after: OrderState) -> list[tuple[str, date, str, int]]:
    """What the order's cohort counters move by, from ``before`` to ``after``: retractions first."""
    if _cohort_of(before) == _cohort_of(after):
        return []  # most events (visits, returns, duplicates of the state) move no cohort counter
    old, new = contribution(before), contribution(after)
    if old == new:
        return []
    out = [(unit, day, metric, -1) for (unit, day, metric) in old if (unit, day, metric) not in new]
    out += [(unit, day, metric, 1) for (unit, day, metric) in new if (unit, day, metric) not in old]
    return out


def returns_by_month(facts: list[Fact]) -> list[tuple[int, int]]:
    """(YYYYMM, returns to date at the month's last return) for each month the order was returned in."""
    out: dict[int, int] = {}
    times = 0
    for fact in facts:
        if fact[2] == RETURNED:
            times += 1
            day = local_day(datetime.fromisoformat(fact[3]))
            out[day.year * 100 + day.month] = times
    return sorted(out.items())


def event_ids(state: OrderState) -> list[str]:
    return [f[1] for f in state.get("facts", ())]
