"""Event contract v1 (SPEC.md): one discriminated union on ``type``.

Validation is strict and unknown fields are refused, so a producer that drifts
from the contract gets a clear error in the dead-letter topic instead of a
silently wrong figure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from hotline.schemas.escaping import printable
from hotline.schemas.office import current_office
from hotline.schemas.personal import mask_free_text, mask_personal, personal_values

SCHEMA_PATH = Path(__file__).with_name("contract-v1.schema.json")

# What storage and date arithmetic can hold: ClickHouse ``Date`` ends in 2149, Python's
# datetime in year 9999, the holiday calendar covers a few years. Events outside these
# years are refused at the door, so no later step can overflow on them.
FIRST_YEAR, LAST_YEAR = 2000, 2099
# The office's time zone: its local days, months and deadlines (read once from the office
# profile, here at the lowest layer: a process serves one office).
TZ: ZoneInfo = current_office().zone
# A contract event is well under 2 KiB; anything this large is not one (and re-sending it
# whole to the dead-letter topic would exceed the producer's request size).
MAX_RECORD_BYTES = 64 * 1024
REASON_LIMIT = 1000  # characters of a dead-letter reason


def within_years(value: datetime) -> datetime:
    """``value`` if its year is one storage and date arithmetic hold; ValueError otherwise.

    Both the year as written and the year of the office's local day: ``2000-01-01T00:00+14:00``
    is 1999-12-31 in the office, and the month it would be counted in is one no table holds."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"year {value.year} is outside the years {FIRST_YEAR} to {LAST_YEAR}")
    local = value.astimezone(TZ).year
    if not FIRST_YEAR <= local <= LAST_YEAR:
        raise ValueError(f"local year {local} ({TZ.key}) is outside the years {FIRST_YEAR} to {LAST_YEAR}")
    return value


# RFC 3339 as the contract writes it; pydantic alone would also take "1573000000" (Unix seconds).
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})")


def rfc3339(value: object) -> object:
    """A timestamp is written as a date-time with its offset, not as a number of seconds."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise ValueError("not an RFC 3339 date-time with a timezone offset, such as 2019-11-04T09:31:00+08:00")
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:  # matches the pattern but is no date (2019-02-30)
        raise ValueError(f"not a date-time: {exc}") from None


Id = Annotated[str, Field(min_length=1, max_length=64)]
# Text a person typed (a return's reason, a check's note): stored with phone numbers masked,
# by the model itself, so every path that builds an event (stream, import, restatement) does it.
FreeText = Annotated[str, AfterValidator(mask_free_text)]
Note = Annotated[str, Field(max_length=500), AfterValidator(mask_free_text)]
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(rfc3339),
    AfterValidator(within_years),
    Field(description=f"RFC 3339 date-time with its UTC offset, in the years {FIRST_YEAR}-{LAST_YEAR}"),
]
# The integer 1: strict, so neither ``1.0`` nor ``true`` passes for it.
SchemaVersion = Annotated[int, Field(strict=True, ge=1, le=1, json_schema_extra={"const": 1})]
CallType = Literal["complaint", "help", "suggestion", "consultation", "other"]
Method = Literal["phone", "written"]
Outcome = Literal["satisfied", "unsatisfied", "unreached"]


class _Event(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    event_id: Id
    occurred_at: Timestamp
    schema_version: SchemaVersion = 1


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
    due_at: Timestamp | None = None
    call_id: Id | None = None


class OrderReturned(_OrderEvent):
    type: Literal["order.returned"] = "order.returned"
    reason: FreeText


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


# -- the provincial platform's checks (additive to contract v1) -------------------------------
# 省12345监管平台五率一度考核: the province revisits orders, makes test calls and monitors the
# data the city uploads. They travel on the orders topic (see TOPIC_OF_PREFIX), a spot check
# keyed by its order, the others by their event id; none of them changes an order's state.


def _points_json(points: Decimal) -> int | float:
    """Points as a JSON number, as producers send them (``2``, ``1.5``), not pydantic's string."""
    return int(points) if points == points.to_integral_value() else float(points)


# Points deducted: positive, at most 100, to hundredths (the events table's Decimal(9, 2)).
Points = Annotated[
    Decimal,
    Field(gt=0, le=100, max_digits=5, decimal_places=2),
    PlainSerializer(_points_json, return_type=int | float, when_used="json"),
]
Label = Annotated[str, Field(min_length=1, max_length=32)]
# The items a test call is usually marked on, in the platform's order (others are accepted).
TEST_CALL_ITEMS = ("服务规范", "业务知识", "首问责任制", "办理时效", "答复质量")


class CheckSpotVisited(_OrderEvent):
    """The province revisited one of our orders (人工抽查回访): reached the citizen or not, and
    if reached, satisfied or not; ``unit_id`` is the unit the order was at."""

    type: Literal["check.spot_visited"] = "check.spot_visited"
    reached: bool
    satisfied: bool | None = None

    @model_validator(mode="after")
    def _satisfied_iff_reached(self) -> CheckSpotVisited:
        """A visit that reached nobody has no verdict, and one that did has one."""
        if self.reached and self.satisfied is None:
            raise ValueError("satisfied is required when reached is true")
        if not self.reached and self.satisfied is not None:
            raise ValueError("satisfied must be absent when reached is false")
        return self


class Deduction(BaseModel):
    """Points one test call lost on one assessment item (服务规范, 业务知识, 首问责任制, …)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    item: Label
    points: Points


class CheckTestCall(_Event):
    """A test call of the province to the hotline (热线服务拨测), with what it lost, item by item."""

    type: Literal["check.test_call"] = "check.test_call"
    deductions: Annotated[tuple[Deduction, ...], Field(max_length=20)] = ()
    note: Note | None = None


class CheckUploadFlagged(_Event):
    """An upload of the city's data the province found inaccurate (数据监测), and the points it cost
    on ``indicator`` (e.g. 规范性)."""

    type: Literal["check.upload_flagged"] = "check.upload_flagged"
    indicator: Label
    points: Points
    note: Note | None = None


class _Alert(_Event):
    alert_id: Id
    order_id: Id
    unit_id: Id
    due_at: Timestamp
    emitted_at: Timestamp


class AlertDueSoon(_Alert):
    type: Literal["alert.due_soon"] = "alert.due_soon"


class AlertOverdue(_Alert):
    type: Literal["alert.overdue"] = "alert.overdue"


class AlertSupervisionDue(_Alert):
    """An order whose second return visit was unsatisfied: due for supervision (督办) by the office.

    ``due_at`` is when it became due (the second unsatisfied visit), ``unsatisfied_visits`` how
    many unsatisfied visits it had then.
    """

    type: Literal["alert.supervision_due"] = "alert.supervision_due"
    unsatisfied_visits: Annotated[int, Field(ge=2)] = 2


class AlertEscalated(_Alert):
    """An overdue alert its unit did not acknowledge (签收) in time, escalated to the supervisors:
    ``overdue_alert_id`` is the alert that went unacknowledged."""

    type: Literal["alert.escalated"] = "alert.escalated"
    overdue_alert_id: Id


class AlertAcknowledged(_Event):
    """A unit has seen an alert (签收): through the signed link its message carried. ``occurred_at``
    is when; the event id is derived from the alert's, so a second click is recognised as such."""

    type: Literal["alert.acknowledged"] = "alert.acknowledged"
    alert_id: Id
    unit_id: Id


CallEvent = CallReceived | CallHandled
OrderEvent = OrderDispatched | OrderReturned | OrderCompleted | OrderVisited | OrderSupervised | OrderSupervisionReplied
CheckEvent = CheckSpotVisited | CheckTestCall | CheckUploadFlagged
AlertEvent = AlertDueSoon | AlertOverdue | AlertSupervisionDue | AlertEscalated | AlertAcknowledged
Event = Annotated[CallEvent | OrderEvent | CheckEvent | AlertEvent, Field(discriminator="type")]

# Which source topic carries an event, by the prefix of its type: one table, read by the worker
# (what each topic accepts), replay and the generator (where each event goes), and import.
CALLS, ORDERS = "calls", "orders"
TOPIC_OF_PREFIX: dict[str, str] = {"call.": CALLS, "order.": ORDERS, "check.": ORDERS}


def prefixes(topic: str) -> tuple[str, ...]:
    """The type prefixes a source topic (``calls`` or ``orders``) carries."""
    return tuple(prefix for prefix, t in TOPIC_OF_PREFIX.items() if t == topic)


SOURCE_PREFIXES = tuple(TOPIC_OF_PREFIX)  # every type a source topic may carry


def route_of(event: dict[str, Any]) -> tuple[str, str | None]:
    """The source topic (logical name) and key of an event's JSON: a call by its call, an order's
    event by its order, a check by its order when it has one, otherwise by its own id."""
    kind = str(event.get("type", ""))
    topic = next((t for prefix, t in TOPIC_OF_PREFIX.items() if kind.startswith(prefix)), ORDERS)
    key = event.get("call_id") if topic == CALLS else event.get("order_id") or event.get("event_id")
    return topic, str(key) if key else None


EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


class InvalidEvent(ValueError):
    """A record that cannot become an :data:`Event`; ``reason`` is for the dead-letter topic.

    The reason is made printable and masked here, once: it often quotes the input, and it
    goes to logs, Kafka headers and ClickHouse, none of which may carry raw control
    characters or a caller's phone number. ``personal`` are the personal values of the
    record it is about (see :func:`~hotline.schemas.personal.personal_values`): a caller's
    name has no shape to recognise it by, so where the reason quotes it (as the type tag,
    say) it is masked only if known.
    """

    def __init__(self, reason: str, personal: Iterable[str] = ()) -> None:
        reason = printable(mask_personal(reason, personal), REASON_LIMIT)
        super().__init__(reason)
        self.reason = reason


# A member name the contract could have: what a reason may name under ``caller``.
_MEMBER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _location(loc: tuple[int | str, ...]) -> str:
    """Where an error is, as ``call.received.caller.phone``; under ``caller``, a member name that
    is not an identifier is not quoted (``caller.***``): it may be the phone or the name itself."""
    parts = [str(p) for p in loc]
    if "caller" in parts[:2]:  # the top-level member, after the type tag when there is one
        at = parts.index("caller") + 1
        parts[at:] = [p if _MEMBER_NAME.fullmatch(p) else "***" for p in parts[at:]]
    return ".".join(parts) or "<record>"


def _describe(exc: ValidationError) -> str:
    """The errors of one record, one clause each. Only the type tag and the schema version are
    quoted (masked by :class:`InvalidEvent`), never the value of ``caller``: pydantic's messages
    for its members (optional strings, no constraints) name the expected type, not the input,
    and :func:`_location` keeps a member name under it that could be a phone or a name out."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = _location(err["loc"])
        if err["type"] == "json_invalid":
            parts.append(f"not JSON: {err['msg']}")
        elif err["type"] == "dict_type" and not err["loc"]:
            parts.append("not a JSON object")
        elif err["loc"][-1:] == ("schema_version",):
            parts.append(f"unsupported schema_version {err.get('input')!r} (this build reads the integer 1)")
        else:
            parts.append(f"{loc}: {err['msg']}")
    return "; ".join(dict.fromkeys(parts))


def parse_event(raw: bytes | str) -> Event:
    """Decode one Kafka record value; raise :class:`InvalidEvent` with a readable reason.

    One pass of pydantic's JSON parser: it refuses bad UTF-8 and nesting deeper than its
    recursion limit with a ValidationError, where ``json.loads`` raised RecursionError.
    """
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", errors="surrogateescape")
    if len(data) > MAX_RECORD_BYTES:
        raise InvalidEvent(f"record of {len(data):,} bytes exceeds the limit of {MAX_RECORD_BYTES:,}")
    try:
        return EVENT_ADAPTER.validate_json(data, strict=True)
    except ValidationError as exc:
        # The record's own caller values, so the reason masks them wherever it quotes them.
        personal = personal_values(data.decode("utf-8", errors="replace"))
        raise InvalidEvent(_describe(exc), personal) from exc


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
