"""Event contract v1 (SPEC.md): one discriminated union on ``type``.

Validation is strict and unknown fields are refused, so a producer that drifts
from the contract gets a clear error in the dead-letter topic instead of a
silently wrong figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

SCHEMA_PATH = Path(__file__).with_name("contract-v1.schema.json")

Id = Annotated[str, Field(min_length=1, max_length=64)]
CallType = Literal["complaint", "help", "suggestion", "consultation", "other"]
Method = Literal["phone", "written"]
Outcome = Literal["satisfied", "unsatisfied", "unreached"]


class _Event(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    event_id: Id
    occurred_at: AwareDatetime
    schema_version: Literal[1] = 1


class Caller(BaseModel):
    """Personal data: never stored, logged or alerted in clear."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    phone: str | None = None
    name: str | None = None


class CallReceived(_Event):
    type: Literal["call.received"] = "call.received"
    call_id: Id
    answered: bool
    caller: Caller | None = None


class CallHandled(_Event):
    type: Literal["call.handled"] = "call.handled"
    call_id: Id
    valid: bool
    call_type: CallType
    category: Annotated[str, Field(min_length=1, max_length=64)]
    resolved_online: bool
    order_id: Id | None = None


class _OrderEvent(_Event):
    order_id: Id
    unit_id: Id


class OrderDispatched(_OrderEvent):
    type: Literal["order.dispatched"] = "order.dispatched"
    order_type: CallType
    category: Annotated[str, Field(min_length=1, max_length=64)]
    due_at: AwareDatetime | None = None
    call_id: Id | None = None


class OrderReturned(_OrderEvent):
    type: Literal["order.returned"] = "order.returned"
    reason: str


class OrderCompleted(_OrderEvent):
    type: Literal["order.completed"] = "order.completed"


class OrderVisited(_OrderEvent):
    type: Literal["order.visited"] = "order.visited"
    outcome: Outcome
    citizen_replied: bool


class OrderSupervised(_OrderEvent):
    type: Literal["order.supervised"] = "order.supervised"
    method: Method


class OrderSupervisionReplied(_OrderEvent):
    type: Literal["order.supervision_replied"] = "order.supervision_replied"
    method: Method
    satisfied: bool | None = None


class _Alert(_Event):
    alert_id: Id
    order_id: Id
    unit_id: Id
    due_at: AwareDatetime
    emitted_at: AwareDatetime


class AlertDueSoon(_Alert):
    type: Literal["alert.due_soon"] = "alert.due_soon"


class AlertOverdue(_Alert):
    type: Literal["alert.overdue"] = "alert.overdue"


CallEvent = CallReceived | CallHandled
OrderEvent = OrderDispatched | OrderReturned | OrderCompleted | OrderVisited | OrderSupervised | OrderSupervisionReplied
AlertEvent = AlertDueSoon | AlertOverdue
Event = Annotated[CallEvent | OrderEvent | AlertEvent, Field(discriminator="type")]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


class InvalidEvent(ValueError):
    """A record that cannot become an :data:`Event`; ``reason`` is for the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "<record>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def parse_event(raw: bytes | str) -> Event:
    """Decode one Kafka record value; raise :class:`InvalidEvent` with a readable reason."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEvent(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidEvent(f"not a JSON object: {type(data).__name__}")
    if data.get("schema_version", 1) != 1:
        raise InvalidEvent(f"unsupported schema_version {data.get('schema_version')!r} (this build reads 1)")
    try:
        return EVENT_ADAPTER.validate_json(raw if isinstance(raw, bytes) else raw.encode(), strict=True)
    except ValidationError as exc:
        raise InvalidEvent(_describe(exc)) from exc


def dump_event(event: BaseModel) -> bytes:
    """Contract JSON for one event (the form producers send)."""
    return event.model_dump_json(exclude_none=True).encode()


def json_schema() -> dict[str, Any]:
    schema = EVENT_ADAPTER.json_schema()
    schema["title"] = "12345 hotline event, contract v1"
    return schema


def write_json_schema(path: Path = SCHEMA_PATH) -> Path:
    path.write_text(json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
