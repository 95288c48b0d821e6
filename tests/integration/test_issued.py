"""Issued bulletins, late data and month over month, through Kafka, the worker and chDB.

A month is issued with the CLI; an event of that month streamed afterwards shows in
``--diff`` and in the next month's 补录, while the issued document stays the same bytes.
Two generated months give the month-over-month changes, checked against figures computed
here from the two bulletins' own counts.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from docx import Document

from hotline.deploy.worker import settings_env
from hotline.generate import generate, write_jsonl
from hotline.seed import HEADLINE, TABLE
from hotline.settings import Settings
from tests.factories import event, raw
from tests.integration.conftest import REPO, Worker, hotline
from tests.integration.seed import write_month

pytestmark = pytest.mark.integration
ISSUE = ("--issue", "--number", "12", "--total-number", "113", "--date", "2019-12-26")


def _replay(settings: Settings, path: Path) -> None:
    """Stream a file through a worker of its own, then stop it: the CLI opens chDB directly."""
    worker = Worker(settings).start()
    try:
        hotline(settings, "replay", str(path), "--wait")
    finally:
        worker.stop()


def _bulletin(settings: Settings, *args: str) -> bytes:
    return hotline(settings, "bulletin", "--month", *args).stdout


def test_an_issued_month_stays_as_issued_while_late_data_shows_in_diff_and_the_next_month(
    isolated: Settings, tmp_path: Path
) -> None:
    _replay(isolated, write_month(tmp_path / "2019-11.jsonl"))
    out = tmp_path / "issued.docx"
    hotline(isolated, "bulletin", "--month", "2019-11", *ISSUE, "--format", "docx", "--out", str(out))
    issued = _bulletin(isolated, "2019-11", "--issued", "--format", "docx")
    assert issued == out.read_bytes()
    doc = Document(io.BytesIO(issued))
    assert [p.text for p in doc.paragraphs[:2]] == ["市 长 热 线", "第12期（总第113期）"]
    assert len(doc.inline_shapes) == 2

    again = subprocess.run(
        [sys.executable, "-m", "hotline", "bulletin", "--month", "2019-11", *ISSUE],
        cwd=REPO,
        env=settings_env(isolated),
        capture_output=True,
        timeout=300,
    )
    assert again.returncode == 1 and "already issued" in again.stderr.decode() and "--reissue" in again.stderr.decode()
    diff = json.loads(_bulletin(isolated, "2019-11", "--diff", "--format", "json"))
    assert diff["differences"] == []

    # 湘乡市's visits were late in the seed ('-'): one arrives now, after the issue.
    late = event(
        "order.visited",
        order_id="XT2019110001",
        unit_id="xiangxiang",
        occurred_at="2019-11-28T10:00:00+08:00",
        outcome="satisfied",
        citizen_replied=True,
    )
    path = tmp_path / "late.jsonl"
    path.write_bytes(raw(late) + b"\n")
    _replay(isolated, path)

    cells = {
        (d["where"], d["item"]): (d["issued"], d["current"])
        for d in json.loads(_bulletin(isolated, "2019-11", "--diff", "--format", "json"))["differences"]
    }
    assert cells[("湘乡市人民政府", "回访数")] == ("-", "1")
    assert cells[("湘乡市人民政府", "回访满意率")] == ("-", "100.00%")
    assert cells[("总计", "回访数")] == ("2251", "2252")
    assert all(where in {"湘乡市人民政府", "总计", "通报正文"} for where, _ in cells)
    assert "湘乡市人民政府" in _bulletin(isolated, "2019-11", "--diff").decode()

    december = json.loads(_bulletin(isolated, "2019-12", "--format", "json"))
    assert december["late_data"]["units"] == [
        {"unit_id": "xiangxiang", "unit": "湘乡市人民政府", "events": 1, "visits": 1, "visits_satisfied": 1}
    ]
    md = _bulletin(isolated, "2019-12", "--format", "md").decode()
    assert "## 补录情况" in md and "湘乡市人民政府1条（回访数1、回访满意数1）" in md

    assert _bulletin(isolated, "2019-11", "--issued", "--format", "docx") == issued
    hotline(isolated, "bulletin", "--month", "2019-11", *ISSUE, "--reissue", "--format", "json")
    assert json.loads(_bulletin(isolated, "2019-11", "--issued", "--format", "json"))["units"][3]["visits"] == "1"


# --------------------------------------------------------------------------- month over month


def _december(tmp_path: Path) -> Path:
    """A second month: the seed's table with other figures in a few cells, dated December, its
    order and call ids renamed so they cannot meet November's."""
    rows = list(csv.DictReader(io.StringIO(TABLE.read_text(encoding="utf-8"))))
    yuhu, yuetang = rows[0], rows[1]
    yuhu.update(completed_on_time="630", overdue="12", on_time_rate="98.13%", visits_satisfied="300")
    yuetang.update(visits_satisfied="150")
    table = tmp_path / "2019-12-units.csv"
    with table.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    head = json.loads(HEADLINE.read_text(encoding="utf-8"))
    head["period"] = "2019-12"
    head["calls"]["connection_rate"] = "96.50%"
    headline = tmp_path / "2019-12-headline.json"
    headline.write_text(json.dumps(head, ensure_ascii=False), encoding="utf-8")
    records = []
    for record in generate(table, headline, seed=2020, duplicate_share=0.0):
        ev = json.loads(record)
        for key in ("order_id", "call_id"):
            if ev.get(key):
                ev[key] = "D" + ev[key]
        records.append(raw(ev))
    path = tmp_path / "2019-12.jsonl"
    write_jsonl(records, path)
    return path


def _points(now: tuple[int, int], before: tuple[int, int]) -> str | None:
    """Percentage points apart from the module under test: 50-digit Decimals, quantized half up."""
    if not now[1] or not before[1]:
        return None
    with localcontext() as ctx:
        ctx.prec = 50
        value = Decimal(now[0] * 100) / now[1] - Decimal(before[0] * 100) / before[1]
        return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _counts(bulletin: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["unit_id"]: c for c in bulletin["counts"]}


def test_month_over_month_over_two_generated_months(isolated: Settings, tmp_path: Path) -> None:
    november = write_month(tmp_path / "2019-11.jsonl")
    december = _december(tmp_path)
    both = tmp_path / "both.jsonl"
    both.write_bytes(november.read_bytes() + december.read_bytes())
    _replay(isolated, both)

    dec = json.loads(_bulletin(isolated, "2019-12", "--format", "json"))
    nov = json.loads(_bulletin(isolated, "2019-11", "--format", "json"))
    mom = dec["period_over_period"]
    assert mom["previous_month"] == "2019-11"
    now, before = _counts(dec), _counts(nov)
    checked = 0
    for unit in mom["units"]:
        a, b = now[unit["unit_id"]], before.get(unit["unit_id"])
        if b is None:
            assert unit["on_time_rate"]["points"] is None and unit["satisfaction_rate"]["points"] is None
            continue
        expected = _points((a["completed_on_time"], a["dispatched"]), (b["completed_on_time"], b["dispatched"]))
        assert unit["on_time_rate"]["points"] == expected, unit["unit"]
        late = not (a["feedback_events"] and b["feedback_events"])
        expected = None if late else _points((a["visits_satisfied"], a["visits"]), (b["visits_satisfied"], b["visits"]))
        assert unit["satisfaction_rate"]["points"] == expected, unit["unit"]
        checked += 1
    assert checked >= 50
    calls_now, calls_before = dec["headline"]["calls"], nov["headline"]["calls"]
    headline = {c["metric"]: c for c in mom["headline"]}
    assert headline["connection_rate"]["points"] == _points(
        (calls_now["answered"], calls_now["received"]), (calls_before["answered"], calls_before["received"])
    )
    assert headline["connection_rate"]["text"].startswith("下降")
    yuhu = next(u for u in mom["units"] if u["unit_id"] == "yuhu")
    assert yuhu["on_time_rate"]["text"].startswith("下降") and yuhu["satisfaction_rate"]["text"].startswith("提升")

    md = _bulletin(isolated, "2019-12", "--format", "md").decode()
    assert f"接通率{headline['connection_rate']['text']}" in md
    rows = list(csv.DictReader(io.StringIO(_bulletin(isolated, "2019-12", "--format", "csv").decode())))
    assert rows[0]["unit"] == "雨湖区人民政府" and rows[0]["on_time_rate_change"] == (
        "+" if float(yuhu["on_time_rate"]["points"]) > 0 else ""
    ) + yuhu["on_time_rate"]["points"]
