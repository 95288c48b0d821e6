"""The metric catalogue: every figure of the bulletin and the live screen, declared once.

A metric has one name, spelled the same everywhere it appears (the stream's
day windows' columns, the SQL column aliases, the bulletin's CSV keys and JSON, the
screen's snapshot and page, the Grafana dashboard), the Chinese ``label`` the bulletin
prints and the shorter ``short`` the screen shows, what moves it and how it aggregates:

* :class:`EventCount`: events counted by their own day (the office's local day) and their own
  unit, or city-wide for calls (SPEC: "counts of events are by the event's occurred_at
  month and the event's own unit_id"). What moves one is a :class:`Rule`, event types and
  field conditions, from which both readings are derived: :meth:`Rule.holds`, a pure
  function over the pydantic event (the stream), and :meth:`Rule.sql`, the ``countIf``
  condition over the ``events`` table (the bulletin). Summed over days and units.
* :class:`OrderCount`: orders by their :class:`OrderStatus` (completed on time or late;
  open and overdue, due soon or not due yet), at the unit of their latest dispatch.
  Counted over a **cohort** (the orders first dispatched in a month or on a day: the
  bulletin's 交办数, 按期办结数, 逾期数) and, for those marked ``gauge``, over the orders
  **open at an instant** (the screen's 在办, 即将到期, 已逾期). The status has one
  declaration too (:data:`STATUS_TESTS`), read in Python off an order's folded state and
  in SQL off its events.
* :class:`CheckCount` and :class:`CheckPoints`: the provincial platform's checks (section 二:
  spot-check revisits, test calls, data monitoring), counted or their points summed over the
  month's partition of the ``events`` table when the bulletin is built (a handful a month:
  no day window is kept for them).
* :class:`SupervisionGauge`: orders awaiting supervision (督办) now, read off the agents'
  order states (the screen).
* :class:`Total`: a sum of other counts (the screen's 督办 = phone + written).
* :class:`Rate`: a ratio of catalogue counts, computed after summing and printed by
  :func:`rate` (``99.53%``; ``-`` for a zero denominator).

How each aggregates is its :attr:`Metric.aggregation`: :attr:`Aggregation.DAYS` for what
day windows can hold (a month, a rolling week are sums of days), :attr:`Aggregation.INSTANT`
for what depends on the reading instant (an open order's deadline against the clock) and
is evaluated over order states when read, :attr:`Aggregation.RATIO` for rates.

Readers name metrics through this module only: ``reports/queries.py`` generates its
SELECT lists from it, ``streams/processing.py`` its counter deltas, ``reports/bulletin.py``
its table, ``reports/live.py`` the screen's columns (served to the page with their
labels) and ``deploy/grafana/dashboard.py`` its panels.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, Protocol, Self

DASH = "-"  # what the bulletin prints for a rate without a denominator, or a unit's late data
DUE_SOON_S = 86_400  # "即将到期": an open order due within 24 hours
UNIT_LABEL = "单位"  # the dimension every per-unit table is keyed by


def rate(numerator: int, denominator: int) -> str:
    """``99.53%``, rounded half up on the exact fraction; ``-`` for a zero denominator."""
    if denominator == 0:
        return DASH
    value = Decimal(numerator * 100) / Decimal(denominator)
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}%"


def sql_literal(value: str | bool | int) -> str:
    """A constant as ClickHouse reads it (the catalogue's own constants, never user input)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- what moves an event count: one declaration, read in Python and in SQL -------------------


@dataclass(frozen=True)
class Eq:
    """The event's ``field`` equals ``value`` (a missing or null field equals nothing)."""

    field: str
    value: str | bool

    def holds(self, event: Any) -> bool:
        actual = getattr(event, self.field, None)
        return type(actual) is type(self.value) and actual == self.value

    def sql(self) -> str:
        return f"{self.field} = {sql_literal(self.value)}"


@dataclass(frozen=True)
class In:
    """The event's ``field`` is one of ``values``."""

    field: str
    values: tuple[str, ...]

    def holds(self, event: Any) -> bool:
        return getattr(event, self.field, None) in self.values

    def sql(self) -> str:
        return f"{self.field} IN ({', '.join(sql_literal(v) for v in self.values)})"


@dataclass(frozen=True)
class Empty:
    """The event has no ``field`` (absent in the contract; stored as ``''``)."""

    field: str

    def holds(self, event: Any) -> bool:
        return getattr(event, self.field, None) in (None, "")

    def sql(self) -> str:
        return f"{self.field} = ''"


Condition = Eq | In | Empty


@dataclass(frozen=True)
class Rule:
    """Which events move a count: one of ``types``, with every condition of ``where``."""

    types: tuple[str, ...]
    where: tuple[Condition, ...] = ()

    def holds(self, event: Any) -> bool:
        """The Python reading: a pure function of the (pydantic) event."""
        return getattr(event, "type", None) in self.types and all(c.holds(event) for c in self.where)

    def sql(self) -> str:
        """The SQL reading: a condition over a row of the ``events`` table."""
        kind = Eq("type", self.types[0]) if len(self.types) == 1 else In("type", self.types)
        return " AND ".join(c.sql() for c in (kind, *self.where))

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.where)


def on(types: str | tuple[str, ...], *where: Condition) -> Rule:
    return Rule((types,) if isinstance(types, str) else types, where)


# -- what an order's status is: one declaration, read in Python and in SQL ------------------


class OrderStatus(enum.Enum):
    """Where an order stands at an instant; exactly one holds."""

    ON_TIME = "on_time"  # completed at or before its deadline
    LATE = "late"  # completed after its deadline
    OVERDUE = "overdue"  # open, its deadline passed
    DUE_SOON = "due_soon"  # open, due within DUE_SOON_S
    NOT_DUE = "not_due"  # open, due later


OPEN = frozenset({OrderStatus.OVERDUE, OrderStatus.DUE_SOON, OrderStatus.NOT_DUE})
EVERY_STATUS = frozenset(OrderStatus)


@dataclass(frozen=True)
class OrderView:
    """What the status is read from in Python: an order's folded state, and the instant."""

    completed_on_time: bool | None  # None while open (the stream's OrderState)
    due: datetime
    now: datetime
    soon_s: int = DUE_SOON_S


@dataclass(frozen=True)
class StatusTest:
    """One test of :data:`STATUS_TESTS`, in both readings side by side.

    The SQL reads the columns of an order's row (``done``, ``completed_at``, ``due``: see
    ``reports/queries.py``) and the placeholders ``{now}`` and ``{soon}`` (seconds).
    """

    python: Callable[[OrderView], bool]
    sql: str


# In order, the first that holds decides; none holding means NOT_DUE.
STATUS_TESTS: tuple[tuple[OrderStatus, StatusTest], ...] = (
    (OrderStatus.ON_TIME, StatusTest(lambda o: o.completed_on_time is True, "done AND completed_at <= due")),
    (OrderStatus.LATE, StatusTest(lambda o: o.completed_on_time is not None, "done")),
    (OrderStatus.OVERDUE, StatusTest(lambda o: o.due < o.now, "due < {now}")),
    (
        OrderStatus.DUE_SOON,
        StatusTest(lambda o: o.due < o.now + timedelta(seconds=o.soon_s), "due < {now} + toIntervalSecond({soon})"),
    ),
)


def order_status(order: OrderView) -> OrderStatus:
    """The Python reading of an order's status."""
    return next((status for status, test in STATUS_TESTS if test.python(order)), OrderStatus.NOT_DUE)


def status_sql(now: str = "now64(3)", soon: str = str(DUE_SOON_S)) -> str:
    """The SQL reading of an order's status, as a ``multiIf`` yielding the status's value."""
    branches = ", ".join(f"{t.sql.format(now=now, soon=soon)}, {sql_literal(s.value)}" for s, t in STATUS_TESTS)
    return f"multiIf({branches}, {sql_literal(OrderStatus.NOT_DUE.value)})"


# -- the metrics ----------------------------------------------------------------------------


class Kind(enum.Enum):
    ORDER = "order"  # orders by status, at their current unit (a cohort's, or the open ones now)
    EVENT = "event"  # order events by their own day and unit
    CALL = "call"  # call events by their own day, city-wide
    CHECK = "check"  # the provincial platform's checks, over the month's events partition
    TOTAL = "total"  # a sum of other counts
    RATE = "rate"  # a ratio of counts


class Aggregation(enum.Enum):
    DAYS = "days"  # additive over days and units: day windows sum to a month or a rolling week
    INSTANT = "instant"  # depends on the reading instant: evaluated over order states, summed over units
    RATIO = "ratio"  # numerator and denominator summed first, then divided and printed by rate()


@dataclass(frozen=True, kw_only=True)
class Metric:
    name: str  # the one spelling: SQL alias, counter name, CSV/JSON key
    label: str  # as the bulletin prints it
    short: str  # on the live screen

    @property
    def kind(self) -> Kind:
        raise NotImplementedError

    @property
    def aggregation(self) -> Aggregation:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, kw_only=True)
class EventCount(Metric):
    """Events that ``rule`` holds for, by their own day and unit (``per_unit``) or city-wide.

    Every event count is a window counter: the stream keeps it per unit (or city-wide,
    ``CITY``) and local day in the day windows (``unit_windows``).
    """

    rule: Rule
    per_unit: bool = True

    @property
    def counter(self) -> bool:
        return True

    @property
    def kind(self) -> Kind:
        return Kind.EVENT if self.per_unit else Kind.CALL

    @property
    def aggregation(self) -> Aggregation:
        return Aggregation.DAYS

    def moved_by(self, event: Any) -> bool:
        return self.rule.holds(event)


@dataclass(frozen=True, kw_only=True)
class OrderCount(Metric):
    """Orders whose status is one of ``statuses``, at their current unit.

    ``cohort``: counted over the orders of a cohort month (the bulletin) or day (the
    stream's counters, for the clock-free ones); ``gauge``: counted over the orders open at
    an instant (the screen).
    """

    statuses: frozenset[OrderStatus]
    cohort: bool = True
    gauge: bool = False

    @property
    def kind(self) -> Kind:
        return Kind.ORDER

    @property
    def clocked(self) -> bool:
        """Whether the clock alone moves it: it splits the open statuses."""
        return bool(self.statuses & OPEN) and not self.statuses >= OPEN

    @property
    def counter(self) -> bool:
        """The stream keeps it per unit and cohort day: a cohort count the clock does not move."""
        return self.cohort and not self.clocked

    @property
    def aggregation(self) -> Aggregation:
        return Aggregation.DAYS if self.counter else Aggregation.INSTANT

    def holds(self, status: OrderStatus) -> bool:
        return status in self.statuses

    def holds_unclocked(self, completed_on_time: bool | None) -> bool:
        """The Python reading without a clock (an open order is any open status): clock-free counts only."""
        if self.clocked:
            raise ValueError(f"{self.name} moves with the clock: read it with order_status()")
        if completed_on_time is None:
            return self.statuses >= OPEN
        return (OrderStatus.ON_TIME if completed_on_time else OrderStatus.LATE) in self.statuses

    def sql(self, status: str = "status") -> str:
        """The SQL reading: a condition on the order's status column."""
        if self.statuses == EVERY_STATUS:
            return "1"
        values = sorted(s.value for s in self.statuses)
        if len(values) == 1:
            return Eq(status, values[0]).sql()
        return In(status, tuple(values)).sql()


@dataclass(frozen=True, kw_only=True)
class CheckCount(EventCount):
    """Provincial checks (``check.*``) that ``rule`` holds for, per unit (spot checks) or city-wide.

    Counted over the month's partition of the ``events`` table by the bulletin (``countIf`` of
    the rule's SQL), not in the day windows: a few dozen a month, read once a month.
    """

    @property
    def counter(self) -> bool:
        return False

    @property
    def kind(self) -> Kind:
        return Kind.CHECK


@dataclass(frozen=True, kw_only=True)
class CheckPoints(Metric):
    """Points the province deducted: ``field`` summed over the events ``rule`` holds for, by ``by``.

    ``by`` names the column the points are split by (an indicator, or, with ``arrays``, the
    array of items paired element by element with the array ``field``: a test call's deductions).
    """

    rule: Rule
    field: str
    by: str
    arrays: bool = False

    @property
    def kind(self) -> Kind:
        return Kind.CHECK

    @property
    def aggregation(self) -> Aggregation:
        return Aggregation.DAYS


@dataclass(frozen=True, kw_only=True)
class SupervisionGauge(Metric):
    """Orders due for supervision (a second unsatisfied visit) and not supervised since, now, per
    unit: read off the agents' order states at the instant of reading (the screen)."""

    @property
    def kind(self) -> Kind:
        return Kind.ORDER

    @property
    def aggregation(self) -> Aggregation:
        return Aggregation.INSTANT


@dataclass(frozen=True, kw_only=True)
class Total(Metric):
    """The sum of ``parts``."""

    parts: tuple[EventCount | OrderCount, ...]

    @property
    def kind(self) -> Kind:
        return Kind.TOTAL

    @property
    def aggregation(self) -> Aggregation:
        days = all(p.aggregation is Aggregation.DAYS for p in self.parts)
        return Aggregation.DAYS if days else Aggregation.INSTANT


class SupportsCounts(Protocol):
    def __getitem__(self, name: str, /) -> int: ...


@dataclass(frozen=True, kw_only=True)
class Rate(Metric):
    """``sum(numerator) / denominator``, printed by :func:`rate`."""

    numerator: tuple[EventCount | OrderCount, ...]
    denominator: EventCount | OrderCount

    @property
    def kind(self) -> Kind:
        return Kind.RATE

    @property
    def aggregation(self) -> Aggregation:
        return Aggregation.RATIO

    def terms(self, counts: SupportsCounts) -> tuple[int, int]:
        return sum(counts[m.name] for m in self.numerator), counts[self.denominator.name]

    def of(self, counts: SupportsCounts) -> str:
        """The printed rate of these counts (a unit's, a total's, a period's)."""
        return rate(*self.terms(counts))

    def sql(self, column: Callable[[Metric], str] = str, percent: bool = True) -> str:
        """The ratio as a ClickHouse number rounded to hundredths (NULL without a denominator)."""
        numerator = " + ".join(column(m) for m in self.numerator)
        if len(self.numerator) > 1:
            numerator = f"({numerator})"
        den = column(self.denominator)
        return f"if({den} = 0, NULL, round({'100 * ' if percent else ''}{numerator} / {den}, 2))"


Count = EventCount | OrderCount | Total

_VISIT = "order.visited"
_SUPERVISED = "order.supervised"
_REPLIED = "order.supervision_replied"
_ANSWERED_VISIT = In("outcome", ("satisfied", "unsatisfied"))
_ST = OrderStatus

# Cohort and gauge counts of orders (SPEC: the cohort is the month of an order's first
# dispatch, its unit and deadline those of its latest dispatch).
DISPATCHED = OrderCount(name="dispatched", label="交办数", short="交办", statuses=EVERY_STATUS)
COMPLETED_ON_TIME = OrderCount(
    name="completed_on_time", label="按期办结数", short="按期办结", statuses=frozenset({_ST.ON_TIME})
)
COMPLETED_LATE = OrderCount(name="completed_late", label="逾期办结数", short="逾期办结", statuses=frozenset({_ST.LATE}))
# 逾期数 of the bulletin: completed late, or still open after the deadline; on the screen the
# same test over the open orders is 已逾期.
OVERDUE = OrderCount(
    name="overdue", label="逾期数", short="已逾期", statuses=frozenset({_ST.LATE, _ST.OVERDUE}), gauge=True
)
OPEN_NOT_DUE = OrderCount(
    name="open_not_due", label="在办未到期数", short="未到期", statuses=frozenset({_ST.DUE_SOON, _ST.NOT_DUE})
)
OPEN_ORDERS = OrderCount(name="open", label="在办数", short="在办", statuses=OPEN, cohort=False, gauge=True)
DUE_SOON = OrderCount(
    name="due_soon", label="即将到期数", short="即将到期", statuses=frozenset({_ST.DUE_SOON}), cohort=False, gauge=True
)

# Order events, by their own day and unit.
RETURNED = EventCount(name="returned", label="退单数", short="退单", rule=on("order.returned"))
VISITS = EventCount(name="visits", label="回访数", short="回访", rule=on(_VISIT, _ANSWERED_VISIT))
VISITS_UNREACHED = EventCount(
    name="visits_unreached", label="回访未应答", short="未应答", rule=on(_VISIT, Eq("outcome", "unreached"))
)
VISITS_SATISFIED = EventCount(
    name="visits_satisfied", label="回访满意数", short="回访满意", rule=on(_VISIT, Eq("outcome", "satisfied"))
)
NOT_REPLIED = EventCount(
    name="not_replied",
    label="成员单位未答复当事人数",
    short="未答复当事人",
    rule=on(_VISIT, _ANSWERED_VISIT, Eq("citizen_replied", False)),
)
PHONE_SUPERVISED = EventCount(
    name="phone_supervised", label="电话督办数", short="电话督办", rule=on(_SUPERVISED, Eq("method", "phone"))
)
PHONE_SUPERVISED_REPLIED = EventCount(
    name="phone_supervised_replied",
    label="电话督办回复数",
    short="电话督办回复",
    rule=on(_REPLIED, Eq("method", "phone")),
)
PHONE_SUPERVISION_SATISFIED = EventCount(
    name="phone_supervision_satisfied",
    label="电话督办满意数",
    short="电话督办满意",
    rule=on(_REPLIED, Eq("method", "phone"), Eq("satisfied", True)),
)
WRITTEN_SUPERVISED = EventCount(
    name="written_supervised", label="书面督办数", short="书面督办", rule=on(_SUPERVISED, Eq("method", "written"))
)
WRITTEN_SUPERVISED_REPLIED = EventCount(
    name="written_supervised_replied",
    label="书面督办回复数",
    short="书面督办回复",
    rule=on(_REPLIED, Eq("method", "written")),
)
WRITTEN_SUPERVISION_SATISFIED = EventCount(
    name="written_supervision_satisfied",
    label="书面督办满意数",
    short="书面督办满意",
    rule=on(_REPLIED, Eq("method", "written"), Eq("satisfied", True)),
)
# Whether a unit's feedback (visits, supervision) arrived this month at all: without any,
# the bulletin prints '-' in every feedback column (SPEC: their data arrives late).
FEEDBACK_EVENTS = EventCount(
    name="feedback_events", label="回访督办事件数", short="回访督办事件", rule=on((_VISIT, _SUPERVISED, _REPLIED))
)
SUPERVISED = Total(name="supervised", label="督办数", short="督办", parts=(PHONE_SUPERVISED, WRITTEN_SUPERVISED))
# Supervision replies with the citizen still unsatisfied: the units the bulletin names for 约谈.
SUPERVISION_UNSATISFIED = EventCount(
    name="supervision_unsatisfied",
    label="督办后仍不满意数",
    short="督办后不满意",
    rule=on(_REPLIED, Eq("satisfied", False)),
)
# Orders due for supervision and not supervised yet (the fold marks them: streams/processing.py).
AWAITING_SUPERVISION = SupervisionGauge(name="awaiting_supervision", label="待督办工单数", short="待督办")

# The provincial platform's checks (省12345监管平台五率一度考核, section 二 of the bulletin).
_SPOT = "check.spot_visited"
SPOT_CHECKED = CheckCount(name="spot_checked", label="省平台抽查回访工单数", short="抽查", rule=on(_SPOT))
SPOT_NOT_REACHED = CheckCount(
    name="spot_not_reached", label="省平台未回访工单数", short="抽查未回访", rule=on(_SPOT, Eq("reached", False))
)
SPOT_UNSATISFIED = CheckCount(
    name="spot_unsatisfied",
    label="省平台回访不满意工单数",
    short="抽查不满意",
    rule=on(_SPOT, Eq("reached", True), Eq("satisfied", False)),
)
TEST_CALLS = CheckCount(
    name="test_calls", label="热线服务拨测次数", short="拨测", rule=on("check.test_call"), per_unit=False
)
TEST_CALL_POINTS = CheckPoints(
    name="test_call_points",
    label="拨测扣分",
    short="拨测扣分",
    rule=on("check.test_call"),
    field="deduction_points",
    by="deduction_items",
    arrays=True,
)
UPLOADS_FLAGGED = CheckCount(
    name="uploads_flagged",
    label="数据上传不准确次数",
    short="上传不准确",
    rule=on("check.upload_flagged"),
    per_unit=False,
)
UPLOAD_POINTS = CheckPoints(
    name="upload_points",
    label="数据监测扣分",
    short="数据扣分",
    rule=on("check.upload_flagged"),
    field="points",
    by="indicator",
)

# Calls, by their own day, city-wide (the bulletin's headline; labelled as its figures sheet prints them).
CALLS_RECEIVED = EventCount(
    name="calls_received", label="来电总数", short="来电", rule=on("call.received"), per_unit=False
)
CALLS_ANSWERED = EventCount(
    name="calls_answered", label="接通数", short="接通", rule=on("call.received", Eq("answered", True)), per_unit=False
)
CALLS_VALID = EventCount(
    name="calls_valid", label="有效电话", short="有效", rule=on("call.handled", Eq("valid", True)), per_unit=False
)
CALLS_ANSWERED_DIRECTLY = EventCount(
    name="calls_answered_directly",
    label="咨询建议类电话（直接答复）",
    short="直接答复",
    rule=on("call.handled", Eq("valid", True), Empty("order_id")),
    per_unit=False,
)
CALLS_RESOLVED_ONLINE = EventCount(
    name="calls_resolved_online",
    label="在线办结",
    short="在线办结",
    rule=on("call.handled", Eq("resolved_online", True)),
    per_unit=False,
)

# Rates.
ON_TIME_RATE = Rate(
    name="on_time_rate", label="按期办结率", short="按期办结率", numerator=(COMPLETED_ON_TIME,), denominator=DISPATCHED
)
VISIT_RATE = Rate(
    name="visit_rate", label="回访率", short="回访率", numerator=(VISITS, VISITS_UNREACHED), denominator=DISPATCHED
)
SATISFACTION_RATE = Rate(
    name="satisfaction_rate", label="回访满意率", short="满意率", numerator=(VISITS_SATISFIED,), denominator=VISITS
)
CONNECTION_RATE = Rate(
    name="connection_rate", label="接通率", short="接通率", numerator=(CALLS_ANSWERED,), denominator=CALLS_RECEIVED
)
ONLINE_RESOLUTION_RATE = Rate(
    name="online_resolution_rate",
    label="在线办结率",
    short="在线办结率",
    numerator=(CALLS_RESOLVED_ONLINE,),
    denominator=CALLS_VALID,
)

CATALOGUE: tuple[Metric, ...] = (
    DISPATCHED,
    COMPLETED_ON_TIME,
    COMPLETED_LATE,
    OVERDUE,
    OPEN_NOT_DUE,
    OPEN_ORDERS,
    DUE_SOON,
    RETURNED,
    VISITS,
    VISITS_UNREACHED,
    VISITS_SATISFIED,
    NOT_REPLIED,
    PHONE_SUPERVISED,
    PHONE_SUPERVISED_REPLIED,
    PHONE_SUPERVISION_SATISFIED,
    WRITTEN_SUPERVISED,
    WRITTEN_SUPERVISED_REPLIED,
    WRITTEN_SUPERVISION_SATISFIED,
    FEEDBACK_EVENTS,
    SUPERVISED,
    SUPERVISION_UNSATISFIED,
    AWAITING_SUPERVISION,
    SPOT_CHECKED,
    SPOT_NOT_REACHED,
    SPOT_UNSATISFIED,
    TEST_CALLS,
    TEST_CALL_POINTS,
    UPLOADS_FLAGGED,
    UPLOAD_POINTS,
    CALLS_RECEIVED,
    CALLS_ANSWERED,
    CALLS_VALID,
    CALLS_ANSWERED_DIRECTLY,
    CALLS_RESOLVED_ONLINE,
    ON_TIME_RATE,
    VISIT_RATE,
    SATISFACTION_RATE,
    CONNECTION_RATE,
    ONLINE_RESOLUTION_RATE,
)
BY_NAME: dict[str, Metric] = {m.name: m for m in CATALOGUE}

ORDER_COUNTS: tuple[OrderCount, ...] = tuple(m for m in CATALOGUE if isinstance(m, OrderCount))
COHORT_COUNTS: tuple[OrderCount, ...] = tuple(m for m in ORDER_COUNTS if m.cohort)
GAUGES: tuple[OrderCount, ...] = tuple(m for m in ORDER_COUNTS if m.gauge)
UNIT_EVENT_COUNTS: tuple[EventCount, ...] = tuple(
    m for m in CATALOGUE if isinstance(m, EventCount) and m.kind is Kind.EVENT
)
CALL_COUNTS: tuple[EventCount, ...] = tuple(m for m in CATALOGUE if isinstance(m, EventCount) and m.kind is Kind.CALL)
# The provincial checks: counts per unit (spot checks) and city-wide, and points by item.
CHECK_COUNTS: tuple[CheckCount, ...] = tuple(m for m in CATALOGUE if isinstance(m, CheckCount))
UNIT_CHECK_COUNTS: tuple[CheckCount, ...] = tuple(m for m in CHECK_COUNTS if m.per_unit)
CITY_CHECK_COUNTS: tuple[CheckCount, ...] = tuple(m for m in CHECK_COUNTS if not m.per_unit)
CHECK_POINTS: tuple[CheckPoints, ...] = tuple(m for m in CATALOGUE if isinstance(m, CheckPoints))
# What the bulletin holds per unit: every cohort count and every unit event count.
UNIT_COUNTS: tuple[EventCount | OrderCount, ...] = (*COHORT_COUNTS, *UNIT_EVENT_COUNTS)
COHORT_COUNTERS: tuple[OrderCount, ...] = tuple(m for m in COHORT_COUNTS if m.counter)
EVENT_COUNTERS: tuple[EventCount, ...] = tuple(m for m in UNIT_EVENT_COUNTS if m.counter)
# What the stream keeps per unit (calls: city-wide) and local day: the day windows' columns.
WINDOWED: tuple[EventCount | OrderCount, ...] = (*COHORT_COUNTERS, *EVENT_COUNTERS, *CALL_COUNTS)
CITY = ""  # the unit_id of the city-wide windows (calls have no unit)


class Matcher:
    """The Python reading of many event counts at once: which of ``counted`` an event moves.

    The same answer as ``[m.name for m in counted if m.moved_by(event)]``, computed per event
    type from the distinct conditions of that type's rules, each evaluated once, and memoised
    on their outcomes: the stream asks it for every event, so it must not cost a rule walk.
    """

    def __init__(self, counted: Iterable[EventCount]) -> None:
        self._by_type: dict[str, tuple[tuple[Condition, ...], tuple[tuple[str, tuple[int, ...]], ...]]] = {}
        metrics_ = tuple(counted)
        for kind in dict.fromkeys(t for m in metrics_ for t in m.rule.types):
            mine = [m for m in metrics_ if kind in m.rule.types]
            conditions = tuple(dict.fromkeys(c for m in mine for c in m.rule.where))
            index = {c: i for i, c in enumerate(conditions)}
            self._by_type[kind] = (conditions, tuple((m.name, tuple(index[c] for c in m.rule.where)) for m in mine))
        self._memo: dict[tuple[str, tuple[bool, ...]], list[str]] = {}

    def names(self, event: Any) -> list[str]:
        kind = getattr(event, "type", None)
        if not isinstance(kind, str) or kind not in self._by_type:
            return []
        entry = self._by_type[kind]
        conditions, rules = entry
        outcome = tuple(c.holds(event) for c in conditions)
        key = (kind, outcome)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = [name for name, needs in rules if all(outcome[i] for i in needs)]
        return found


def metric(name: str) -> Metric:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no metric {name!r} in the catalogue") from None


def needs_feedback(m: Metric) -> bool:
    """Moved by feedback events only (visits, supervision): '-' for a unit none of whose feedback arrived."""
    if isinstance(m, EventCount):
        return m is not FEEDBACK_EVENTS and set(m.rule.types) <= set(FEEDBACK_EVENTS.rule.types)
    if isinstance(m, Total):
        return all(needs_feedback(p) for p in m.parts)
    if isinstance(m, Rate):
        return all(needs_feedback(p) for p in m.numerator)
    return False


def stored_names(metrics: Iterable[Metric]) -> tuple[str, ...]:
    """The counted metrics behind these (a total's parts, a rate's terms), each once, in order."""
    out: dict[str, None] = {}
    for m in metrics:
        if isinstance(m, Total):
            out.update(dict.fromkeys(p.name for p in m.parts))
        elif isinstance(m, Rate):
            out.update(dict.fromkeys(p.name for p in (*m.numerator, m.denominator)))
        else:
            out[m.name] = None
    return tuple(out)


class Tally:
    """Counts of a fixed set of catalogue metrics (``counted``), by name.

    Read as ``t.visits``, ``t["visits"]`` or ``t[VISITS]``; built as ``T(visits=2)`` (an
    unknown name is a TypeError, so no figure can hide under a misspelling); ``add`` folds
    a part of a :class:`Total` into it. A total's value is its own count, not derived.
    """

    counted: ClassVar[tuple[Metric, ...]] = ()
    _values: dict[str, int]

    def __init__(self, **values: int) -> None:
        names = self.names()
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise TypeError(f"{type(self).__name__} has no metric {', '.join(unknown)}")
        object.__setattr__(self, "_values", {n: int(values.get(n, 0)) for n in names})

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(m.name for m in cls.counted)

    def __getattr__(self, name: str) -> int:
        values = self.__dict__.get("_values", {})
        if name in values:
            return int(values[name])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__.get("_values", {}):
            self._values[name] = int(value)
        else:
            object.__setattr__(self, name, value)

    def __getitem__(self, key: str | Metric) -> int:
        return self._values[str(key)]

    def __setitem__(self, key: str | Metric, value: int) -> None:
        name = str(key)
        if name not in self._values:
            raise KeyError(f"{type(self).__name__} has no metric {name!r}")
        self._values[name] = int(value)

    def add(self, key: str | Metric, value: int) -> None:
        """Add to a metric, or to the total this metric is a part of."""
        name = str(key)
        if name in self._values:
            self._values[name] += int(value)
            return
        totals = [m.name for m in self.counted if isinstance(m, Total) and name in {p.name for p in m.parts}]
        if not totals:
            raise KeyError(f"{type(self).__name__} has no metric {name!r}")
        for total in totals:
            self._values[total] += int(value)

    def add_counts(self, other: Tally) -> None:
        for name in self._values:
            self._values[name] += other[name]

    def __iadd__(self, other: Tally) -> Self:
        self.add_counts(other)
        return self

    def counts(self) -> dict[str, int]:
        return dict(self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tally):
            return NotImplemented
        return type(self) is type(other) and self._values == other._values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self._values.items() if v)
        return f"{type(self).__name__}({shown})"


def _validate() -> None:
    """The catalogue's own invariants, checked on import: a broken declaration fails loudly."""
    names = [m.name for m in CATALOGUE]
    if len(set(names)) != len(names):
        raise AssertionError(f"metric names repeat: {sorted(n for n in names if names.count(n) > 1)}")
    for m in CATALOGUE:
        for part in (*getattr(m, "parts", ()), *getattr(m, "numerator", ())):
            if BY_NAME.get(part.name) is not part:
                raise AssertionError(f"{m.name}: {part.name} is not in the catalogue")


_validate()
