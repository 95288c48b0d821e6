"""A second office, set up from its files alone (tests/offices/suining): its bulletin in every
format carries its names, lists and standards, its units as in force each month, and nothing of
the shipped demo office.

The events are generated here (a few orders per unit and month, seeded), and every figure the
test checks is counted again from those events, independently of the pipeline.
"""

from __future__ import annotations

import html
import io
import random
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from hotline.reports.bulletin import Bulletin, list_keys
from hotline.reports.edition import assemble
from hotline.reports.render import FORMATS, render
from hotline.schemas.events import TZ
from hotline.schemas.office import Office, load_office
from hotline.schemas.registry import Registry, load_registry
from hotline.settings import Settings
from hotline.sinks.clickhouse import ClickHouseStore
from tests.factories import event, folded

PROFILE = Path(__file__).resolve().parents[2] / "offices" / "suining" / "office.toml"
MONTHS = ("2023-05", "2023-07", "2023-08")  # before and after a rename and a merge on 1 July
# Periods of other kinds whose bounds split no order's events (every order lives inside its month):
# a quarter, a year (across the rename and the merge) and a range of days.
PERIODS = {"2023-Q3": ("2023-07", "2023-08"), "2023": MONTHS, "2023-07-01..2023-08-31": ("2023-07", "2023-08")}
# What only the shipped demo office writes: none of it may reach another office's bulletin.
DEMO_ONLY = ("湘潭", "市长热线", "县市区园区", "市 长 热 线")
PROVINCIAL = "省12345监管平台"


@dataclass
class Order:
    unit: str
    dispatched: datetime
    due: datetime
    completed: datetime | None
    visit: str | None  # satisfied, unsatisfied, unreached


def _days(month: str) -> tuple[date, date]:
    first = date.fromisoformat(f"{month}-01")
    return first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def _orders(month: str, registry: Registry, rng: random.Random) -> list[Order]:
    """Every unit in force: a few orders dispatched in the month's first 20 days, most completed
    (some late), most of those visited; everything inside the month."""
    first, _ = _days(month)
    orders = []
    for unit in registry.during(*_days(month)):
        bias = rng.random()  # some units do well, some badly: the lists and standards have members
        for _ in range(rng.randint(4, 12)):
            at = datetime.combine(first + timedelta(days=rng.randint(0, 19)), datetime.min.time(), TZ) + timedelta(
                hours=9
            )
            due = at + timedelta(days=3)
            done = rng.random() < 0.9
            completed = at + timedelta(days=1 if rng.random() < 0.6 + 0.4 * bias else 5) if done else None
            visit = None
            if completed is not None and rng.random() < 0.85:
                visit = rng.choices(["satisfied", "unsatisfied", "unreached"], [0.3 + bias, 0.35, 0.1])[0]
            orders.append(Order(unit.id, at, due, completed, visit))
    return orders


def _events(month: str, orders: list[Order]) -> list[dict[str, Any]]:
    out = []
    for i, o in enumerate(orders):
        oid = f"{month}-{i}"
        common = {"order_id": oid, "unit_id": o.unit}
        out.append(event("order.dispatched", **common, occurred_at=o.dispatched.isoformat(), due_at=o.due.isoformat()))
        if o.completed is not None:
            out.append(event("order.completed", **common, occurred_at=o.completed.isoformat()))
            if o.visit is not None:
                visited = (o.completed + timedelta(days=1)).isoformat()
                out.append(event("order.visited", **common, occurred_at=visited, outcome=o.visit, citizen_replied=True))
        call = {"call_id": f"C{oid}", "occurred_at": o.dispatched.isoformat()}
        out += [event("call.received", **call), event("call.handled", **call)]
    return out


@dataclass
class Expected:
    """One unit's month, counted from the generated orders."""

    name: str
    dispatched: int = 0
    on_time: int = 0
    visits: int = 0
    satisfied: int = 0
    feedback: bool = False


def _expected(month: str, orders: list[Order], registry: Registry) -> dict[str, Expected]:
    names = registry.during(*_days(month)).by_id
    out: dict[str, Expected] = {}
    for o in orders:
        e = out.setdefault(o.unit, Expected(names[o.unit].name))
        e.dispatched += 1
        e.on_time += o.completed is not None and o.completed <= o.due
        e.feedback |= o.visit is not None
        e.visits += o.visit in ("satisfied", "unsatisfied")
        e.satisfied += o.visit == "satisfied"
    return out


@dataclass
class World:
    office: Office
    registry: Registry
    orders: dict[str, list[Order]]
    bulletins: dict[str, Bulletin]
    periods: dict[str, Bulletin]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    office = load_office(PROFILE)
    registry = load_registry(office.registry_path)
    rng = random.Random(2023)
    orders = {month: _orders(month, registry, rng) for month in MONTHS}
    sink = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{tmp_path_factory.mktemp('suining') / 'ch'}"))
    sink.migrate()
    try:
        sink.write(folded([ev for month in MONTHS for ev in _events(month, orders[month])], topic="t"))
        bulletins = {month: assemble(sink, month, registry, office=office) for month in MONTHS}
        periods = {key: assemble(sink, key, registry, office=office) for key in PERIODS}
    finally:
        sink.close()  # chDB holds one path per process
    yield World(office, registry, orders, bulletins, periods)


@pytest.fixture(scope="module")
def august(world: World) -> dict[str, str]:
    """August's bulletin in every format, rendered once, as text (see :func:`_text`)."""
    return {fmt: _text(fmt, render(world.bulletins["2023-08"], fmt)) for fmt in FORMATS}


def _text(fmt: str, data: bytes) -> str:
    """What a reader of the file sees, and what its XML holds (every part of an xlsx or docx, with
    character references resolved: openpyxl writes ``&#33337;`` for 船)."""
    if fmt not in ("xlsx", "docx"):
        return data.decode("utf-8")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        parts = [zf.read(n).decode("utf-8") for n in zf.namelist() if n.endswith((".xml", ".rels"))]
    return html.unescape("\n".join(parts))


def _unwrapped(text: str) -> str:
    """The terminal's text with its wrapping undone (rich folds long lines at the console's width)."""
    return "".join(text.split())


@pytest.mark.parametrize("month", MONTHS)
def test_each_units_month_equals_an_independent_count(world: World, month: str) -> None:
    expected = _expected(month, world.orders[month], world.registry)
    found = {
        u.unit_id: Expected(u.name, u.dispatched, u.completed_on_time, u.visits, u.visits_satisfied, u.has_feedback)
        for u in world.bulletins[month].units
    }
    assert found == expected


@pytest.mark.parametrize("month", MONTHS)
def test_the_units_are_those_in_force_that_month(world: World, month: str) -> None:
    names = {u.name for u in world.bulletins[month].units}
    renamed, merged = ("市银保监分局", "市水务局"), ("金融监管总局遂宁监管分局", "市自然资源和水利局")
    before, after = (renamed, merged) if month < "2023-07" else (merged, renamed)
    assert set(before) <= names and not set(after) & names


def test_the_districts_come_first_in_registry_order(world: World) -> None:
    units = world.bulletins["2023-08"].units
    groups = [u.group for u in units]
    assert groups[:5] == ["区县"] * 5 and "区县" not in groups[5:]
    assert [u.order for u in units[:5]] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("month", MONTHS)
def test_the_satisfaction_lists_use_the_offices_cut_offs(world: World, month: str) -> None:
    expected = _expected(month, world.orders[month], world.registry).values()
    rated = [e for e in expected if e.feedback and e.visits]
    high, low = list_keys(world.office)
    assert (high, low) == ("at_or_above_90_percent", "below_60_percent")
    lists = world.bulletins[month].headline["satisfaction_lists"]
    assert sorted(lists[high]) == sorted(e.name for e in rated if Fraction(e.satisfied, e.visits) >= Fraction(9, 10))
    assert sorted(lists[low]) == sorted(e.name for e in rated if Fraction(e.satisfied, e.visits) < Fraction(6, 10))


@pytest.mark.parametrize("month", MONTHS)
def test_units_below_the_offices_standards_are_listed(world: World, month: str) -> None:
    expected = _expected(month, world.orders[month], world.registry).values()
    found = world.bulletins[month].headline["below_standard"]
    satisfaction = [
        e.name for e in expected if e.feedback and e.visits and Fraction(e.satisfied, e.visits) < Fraction(85, 100)
    ]
    on_time = [e.name for e in expected if e.dispatched and Fraction(e.on_time, e.dispatched) < Fraction(92, 100)]
    assert sorted(found["satisfaction_rate"]["units"]) == sorted(satisfaction) != []
    assert sorted(found["on_time_rate"]["units"]) == sorted(on_time) != []
    assert (found["satisfaction_rate"]["standard"], found["on_time_rate"]["standard"]) == ("85%", "92%")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_carries_the_offices_units_and_no_demo_office(
    world: World, august: dict[str, str], fmt: str
) -> None:
    bulletin = world.bulletins["2023-08"]
    text = august[fmt]
    assert all(u.name in text for u in bulletin.units)
    assert [word for word in DEMO_ONLY if word in text] == []


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f not in ("csv", "json")])
def test_every_document_carries_the_offices_titles(world: World, august: dict[str, str], fmt: str) -> None:
    text = august[fmt]
    assert "2023年8月12345热线成员单位办理情况统计表" in text
    assert fmt == "table" or "区县按行政区划顺序排列" in text  # the terminal prints no notes


@pytest.mark.parametrize("fmt", ["table", "md", "docx"])
def test_the_text_names_the_office_and_prints_no_provincial_section(
    world: World, august: dict[str, str], fmt: str
) -> None:
    text = _unwrapped(august[fmt])
    assert "2023年8月遂宁市12345热线运行情况通报" in text
    assert "12345政务服务便民热线共接到群众各类来电" in text
    assert "回访满意率在90%以上（含90%）的单位有" in text and "回访满意率低于60%的单位有" in text
    assert PROVINCIAL not in text


@pytest.mark.parametrize("fmt", ["table", "md", "docx", "xlsx"])
def test_the_below_standard_list_is_printed(world: World, august: dict[str, str], fmt: str) -> None:
    bulletin = world.bulletins["2023-08"]
    text = _unwrapped(august[fmt])
    for found in bulletin.headline["below_standard"].values():
        said = "{label}未达标（最低标准{standard}）" if fmt == "xlsx" else "{label}最低标准为{standard}"
        assert said.format(**found) in text
        assert "、".join(found["units"]) in text


def test_the_json_has_no_provincial_checks(world: World) -> None:
    assert "provincial_checks" not in world.bulletins["2023-08"].to_json()


def test_the_csv_marks_each_unit_below_a_standard(world: World) -> None:
    bulletin = world.bulletins["2023-08"]
    lines = render(bulletin, "csv").decode().splitlines()
    header = lines[0].split(",")
    column = header.index("below_standard")
    below = bulletin.headline["below_standard"]
    for line, unit in zip(lines[1:], bulletin.units, strict=False):
        missed = [s["label"] for s in below.values() if unit.name in s["units"]]
        assert line.split(",")[column] == "、".join(missed)


def test_the_word_files_masthead_and_author_are_the_offices(august: dict[str, str]) -> None:
    xml = august["docx"]
    assert "政 务 服 务 热 线" in xml
    assert "<dc:creator>市政务服务和大数据局</dc:creator>" in xml


def _summed(months: tuple[str, ...], world: World, first: date, last: date) -> dict[str, Expected]:
    """The months' independent counts added up per unit, named as the registry names them over the period."""
    names = world.registry.during(first, last).by_id
    out: dict[str, Expected] = {}
    for month in months:
        for unit, e in _expected(month, world.orders[month], world.registry).items():
            total = out.setdefault(unit, Expected(names[unit].name))
            total.dispatched += e.dispatched
            total.on_time += e.on_time
            total.visits += e.visits
            total.satisfied += e.satisfied
            total.feedback |= e.feedback
    return out


@pytest.mark.parametrize("key", list(PERIODS))
def test_a_quarter_a_year_and_a_range_equal_the_sum_of_independent_counts(world: World, key: str) -> None:
    bulletin = world.periods[key]
    expected = _summed(PERIODS[key], world, bulletin.period.start, bulletin.period.end)
    found = {
        u.unit_id: Expected(u.name, u.dispatched, u.completed_on_time, u.visits, u.visits_satisfied, u.has_feedback)
        for u in bulletin.units
    }
    assert found == expected


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", list(PERIODS))
def test_every_period_in_every_format_carries_the_offices_names_and_no_demo_office(
    world: World, key: str, fmt: str
) -> None:
    bulletin = world.periods[key]
    text = _text(fmt, render(bulletin, fmt))
    assert all(u.name in text for u in bulletin.units)
    assert [word for word in DEMO_ONLY if word in text] == []

