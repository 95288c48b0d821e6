"""Any period's figures, read from the day windows and order cohorts, equal sums computed from the events.

Two synthetic years (``tests/synthetic.py``) are imported; each kind of period is built as the
bulletin builds it and compared, count by count and unit by unit, with ``tests/reference.py``,
which reads the events alone. The printed formats are checked to carry the same figures.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest
from docx import Document
from openpyxl import load_workbook

from hotline.reports.bulletin import COLUMNS, Bulletin, build_bulletin
from hotline.reports.periods import parse
from hotline.reports.render import render
from hotline.schemas import metrics as mc
from tests import reference
from tests.unit.reports.conftest import Stored

PERIODS = ("2020-W10", "2020-W01", "2020-02", "2020-Q1", "2019", "2019-12-28..2020-01-09")
UNIT_COUNTS = (
    "dispatched", "completed_on_time", "overdue", "returned", "visits", "visits_unreached", "visits_satisfied",
    "not_replied", "phone_supervised", "written_supervised", "phone_supervised_replied", "written_supervised_replied",
)  # fmt: skip


def _expected(two_years: Stored, key: str) -> dict[str, Counter[str]]:
    period = parse(key)
    return reference.period_figures(two_years.events, period.start, period.end)


@pytest.fixture(scope="module")
def bulletins(two_years: Stored) -> dict[str, Bulletin]:
    return {key: build_bulletin(two_years.store, key, printed={}) for key in PERIODS}


@pytest.mark.parametrize("key", PERIODS)
def test_each_units_counts_equal_the_events(two_years: Stored, bulletins: dict[str, Bulletin], key: str) -> None:
    expected = _expected(two_years, key)
    got = {u.unit_id: {m: u[m] for m in UNIT_COUNTS} for u in bulletins[key].units}
    assert got == {unit: {m: counts[m] for m in UNIT_COUNTS} for unit, counts in expected.items()}


@pytest.mark.parametrize("key", PERIODS)
def test_the_calls_equal_the_events(two_years: Stored, bulletins: dict[str, Bulletin], key: str) -> None:
    period = parse(key)
    calls = reference.period_calls(two_years.events, period.start, period.end)
    got = bulletins[key].headline["calls"]
    assert (got["received"], got["valid"], got["answered"], got["resolved_online"]) == (
        calls["calls_received"],
        calls["calls_valid"],
        calls["calls_answered"],
        calls["calls_resolved_online"],
    )
    assert got["consult_or_suggest_answered_directly"] == calls["calls_answered_directly"]


@pytest.mark.parametrize("key", PERIODS)
def test_the_returns_distribution_counts_each_order_returned_in_the_period(
    two_years: Stored, bulletins: dict[str, Bulletin], key: str
) -> None:
    period = parse(key)
    returned: dict[str, list[object]] = {}
    for e in two_years.events:
        if e["type"] == "order.returned" and reference.local_day(e) <= period.end:
            returned.setdefault(e["order_id"], []).append(reference.local_day(e))
    in_period = {o: days for o, days in returned.items() if any(period.start <= d <= period.end for d in days)}
    expected = Counter(str(len(days)) for days in in_period.values())
    assert bulletins[key].headline["returns"]["orders_by_times_returned"] == dict(expected)


def _printed(counts: Counter[str]) -> dict[str, str]:
    """The reference's row as the CSV prints it (rates half up; '-' without feedback)."""
    row = {m: str(counts[m]) for m in ("dispatched", "completed_on_time", "overdue", "returned")}
    row["on_time_rate"] = reference.pct(counts["completed_on_time"], counts["dispatched"])
    if counts["feedback_events"]:
        row["satisfaction_rate"] = reference.pct(counts["visits_satisfied"], counts["visits"])
        row["visits"] = str(counts["visits"])
    else:
        row["satisfaction_rate"] = row["visits"] = mc.DASH
    return row


@pytest.mark.parametrize("key", PERIODS)
def test_every_format_prints_the_events_figures(two_years: Stored, bulletins: dict[str, Bulletin], key: str) -> None:
    bulletin = bulletins[key]
    expected = _expected(two_years, key)
    by_name = {u.name: _printed(expected[u.unit_id]) for u in bulletin.units}
    keys = list(next(iter(by_name.values())))
    rows = list(csv.DictReader(io.StringIO(render(bulletin, "csv").decode())))[:-1]
    assert {r["unit"]: {k: r[k] for k in keys} for r in rows} == by_name
    data = json.loads(render(bulletin, "json"))
    assert {r["unit"]: {k: r[k] for k in keys} for r in data["units"]} == by_name
    columns = [k for k, _ in COLUMNS]
    sheet = load_workbook(io.BytesIO(render(bulletin, "xlsx")))["附件"]
    cells = [[str(c.value) for c in row] for row in sheet.iter_rows(min_row=3, max_row=2 + len(bulletin.units))]
    assert {r[0]: {k: r[columns.index(k)] for k in keys} for r in cells} == by_name
    docx_rows = [[c.text for c in row.cells] for row in Document(io.BytesIO(render(bulletin, "docx"))).tables[0].rows]
    assert {r[0]: {k: r[columns.index(k)] for k in keys} for r in docx_rows[1:-1]} == by_name
    md = render(bulletin, "md").decode()
    table = render(bulletin, "table").decode()
    label = parse(key).label
    assert md.startswith(f"# {label}") and label in table
    for name, row in by_name.items():
        assert f"| {name} | {row['dispatched']} | {row['completed_on_time']} | {row['overdue']} |" in md
