"""Turn the finished plans into contract-v1 events: ids, then one event sequence per order and call.

Order and call ids are numbered in time order once every plan exists; event ids come
from the seeded generator, so the same seed gives the same events.
"""

from __future__ import annotations

import random
import uuid

from hotline.generate.model import CallPlan, OrderPlan, Step, World
from hotline.schemas.events import (
    CallHandled,
    CallReceived,
    CheckSpotVisited,
    CheckTestCall,
    CheckUploadFlagged,
    OrderCompleted,
    OrderDispatched,
    OrderReturned,
    OrderSupervised,
    OrderSupervisionReplied,
    OrderVisited,
)
from hotline.streams.deadlines import due_at

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

RETURN_REASONS = (
    "非本单位职责范围",
    "辖区插花地带，管辖不明确",
    "诉求地址不详，无法核实",
    "应由属地政府办理",
    "交办单位有误，请重新交办",
)


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
