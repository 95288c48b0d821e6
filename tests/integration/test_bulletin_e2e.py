"""November 2019, reproduced from events that went through Kafka, the worker and chDB.

The published table and headline are the expected values; a failure lists every
differing cell. The same month with the worker SIGKILLed twice mid-stream must
match too: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from hotline.client import worker_get
from hotline.replay import produce, read_records, wait_until_sunk
from hotline.reports.bulletin import COLUMNS
from hotline.schemas.registry import default_registry
from hotline.settings import Settings
from tests.integration.conftest import Worker, hotline
from tests.integration.seed import (
    HEADLINE,
    assert_table_matches_seed,
    headline_differences,
    section_two_differences,
    seed_section_two,
)
from tests.reference import distinct_events, orders_of, pct, unit_figures

pytestmark = pytest.mark.integration



def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_seed_month_through_the_pipeline_matches_the_published_bulletin(
    isolated: Settings, worker: Worker, month_file: Path
) -> None:
    hotline(isolated, "replay", str(month_file), "--wait")
    assert_table_matches_seed(hotline(isolated, "bulletin", "--month", "2019-11", "--format", "csv").stdout.decode())

    bulletin = json.loads(hotline(isolated, "bulletin", "--month", "2019-11", "--format", "json").stdout)
    seed = json.loads(HEADLINE.read_text(encoding="utf-8"))
    diffs = headline_differences(bulletin["headline"], seed)
    assert not diffs, "headline differs:\n" + "\n".join(diffs)
    # the two known misprints are reported, not copied
    quality = "\n".join(bulletin["data_quality"])
    assert "原通报印为 1%" in quality and "9.13%" in quality
    assert "66.22%" in quality and "66.21%" in quality and "4.24%" in quality and "4.15%" in quality


def test_the_readme_demo_prints_the_published_table(isolated: Settings) -> None:
    """`./run demo` runs `hotline demo`: Kafka, generate, a worker, replay, bulletin, in one command."""
    out = hotline(isolated, "demo", "--format", "csv").stdout.decode()
    assert_table_matches_seed(out)


def test_the_demo_says_why_it_does_not_compare_with_october(isolated: Settings) -> None:
    """The demo's October holds only the orders dispatched from 8 October: no 环比 with it, and the reason."""
    out = "".join(hotline(isolated, "demo", "--format", "md").stdout.decode().split())
    assert "10月数据自10月8日起，不完整，不作比较。" in out
    assert "个百分点" not in out and "与10月相比" not in out


def test_the_table_equals_counts_computed_directly_from_the_event_file(
    isolated: Settings, worker: Worker, month_file: Path
) -> None:
    hotline(isolated, "replay", str(month_file), "--wait")
    bulletin = worker_get(isolated, "/bulletin/2019-11?format=json")
    records = [json.dumps(json.loads(line)["event"]).encode() for line in month_file.read_text().splitlines()]
    events = distinct_events(records)
    figures = unit_figures(events, orders_of(events))
    for row in bulletin["units"]:
        ref = figures[row["unit_id"]]
        for column in ("dispatched", "completed_on_time", "overdue", "returned"):
            assert int(row[column]) == ref.get(column, 0), (row["unit"], column)
        assert row["on_time_rate"] == pct(ref.get("completed_on_time", 0), ref["dispatched"])
        if row["visits"] != "-":
            for column in ("visits", "visits_unreached", "visits_satisfied", "not_replied", "phone_supervised"):
                assert int(row[column]) == ref.get(column, 0), (row["unit"], column)
    assert {r["unit_id"] for r in bulletin["units"]} == set(figures)
    worker.stop()
    assert_counters_agree(isolated, bulletin)


def assert_counters_agree(settings: Settings, bulletin: dict[str, Any]) -> None:
    """The agents' day windows, summed over the month, give the bulletin's columns too (the
    bulletin reads cohort columns from the order states, so the two readings check each other)."""
    from hotline.schemas import metrics
    from hotline.sinks.clickhouse import ClickHouseStore

    store = ClickHouseStore(settings)
    try:
        names = [m.name for m in metrics.WINDOWED]
        rows = store.query_rows(
            f"SELECT unit_id, {', '.join(f'sum({n}) AS {n}' for n in names)} FROM {{db}}.unit_windows FINAL "
            "WHERE toYYYYMM(day) = 201911 GROUP BY unit_id"
        )
    finally:
        store.close()
    counters = {str(r["unit_id"]): {n: int(r[n]) for n in names} for r in rows}
    same = [m.name for m in metrics.UNIT_COUNTS if m.counter]
    diffs = []
    for counts in bulletin["counts"]:
        mine = counters.get(counts["unit_id"], {})
        for column in same:
            if counts[column] != mine.get(column, 0):
                diffs.append(f"{counts['name']} / {column}: bulletin {counts[column]} != windows {mine.get(column, 0)}")
        still_open = counts["dispatched"] - counts["completed_on_time"] - mine.get("completed_late", 0)
        if counts["overdue"] != mine.get("completed_late", 0) + still_open - counts["open_not_due"]:
            diffs.append(f"{counts['name']} / overdue: {counts['overdue']} vs windows")
    assert not diffs, "\n".join(diffs)


def _sunk(settings: Settings) -> int:
    return sum(o + 1 for _, _, o in worker_get(settings, "/status")["offsets"])


def test_worker_killed_twice_mid_stream_still_matches_every_cell(
    isolated: Settings, worker: Worker, month_file: Path
) -> None:
    records = list(read_records(month_file, isolated))
    thirds = [records[i * len(records) // 3 : (i + 1) * len(records) // 3] for i in range(3)]
    last: dict[tuple[str, int], int] = {}
    for n, chunk in enumerate(thirds):
        last.update(asyncio.run(produce(chunk, isolated)))
        if n < 2:
            # let the worker get into the chunk, then kill it mid-batch
            before = _sunk(isolated)
            deadline = time.monotonic() + 60
            while _sunk(isolated) <= before and time.monotonic() < deadline:
                time.sleep(0.05)
            worker.kill()
            worker.start()
    wait_until_sunk(last, isolated, timeout=600)
    assert worker.log.read_text(errors="replace").count("sank") > 0
    assert_table_matches_seed(hotline(isolated, "bulletin", "--month", "2019-11", "--format", "csv").stdout.decode())
    counts = worker_get(isolated, "/status")["counts"]
    assert counts == {"events": len(distinct_events(r.value for r in records)), "deadletter": 0}


def test_bulletin_formats_over_http(isolated: Settings, worker: Worker, month_file: Path, tmp_path: Path) -> None:
    import docx
    import openpyxl

    hotline(isolated, "replay", str(month_file), "--wait")
    csv_text = worker_get(isolated, "/bulletin/2019-11?format=csv").decode()
    assert_table_matches_seed(csv_text)
    expected = [list(r.values())[: len(COLUMNS)] for r in _rows(csv_text)]  # the attachment's columns

    (tmp_path / "b.xlsx").write_bytes(worker_get(isolated, "/bulletin/2019-11?format=xlsx"))
    sheet = openpyxl.load_workbook(tmp_path / "b.xlsx")["附件"]
    cells = [[("" if c is None else str(c)) for c in row] for row in sheet.iter_rows(values_only=True)]
    body = [r for r in cells if r and r[0] in {row[0] for row in expected}]
    assert body == expected

    (tmp_path / "b.docx").write_bytes(worker_get(isolated, "/bulletin/2019-11?format=docx"))
    document = docx.Document(str(tmp_path / "b.docx"))
    table = next(t for t in document.tables if len(t.columns) == len(COLUMNS))  # the attachment, not the changes
    word_rows = [[cell.text for cell in row.cells] for row in table.rows]
    assert word_rows[1:] == expected
    text = "\n".join(p.text for p in document.paragraphs)
    assert "市交通局" in text and "雨湖区人民政府119件" in text.replace(" ", "")
    registry = default_registry()
    assert all(
        name in text
        for name in json.loads(HEADLINE.read_text())["satisfaction_lists"]["below_50_percent"]
        if name in registry.by_name
    )


def assert_section_two_matches_seed(markdown: str, bulletin: dict[str, Any]) -> None:
    """Section 二 in the seed's wording (figures and unit lists) and in the JSON's figures."""
    missing = [sentence for sentence in seed_section_two() if sentence not in markdown]
    assert not missing, "section 二 differs from the seed; missing:\n" + "\n".join(missing)
    diffs = section_two_differences(bulletin["provincial_checks"], json.loads(HEADLINE.read_text(encoding="utf-8")))
    assert not diffs, "section 二 figures differ:\n" + "\n".join(diffs)


def test_section_two_through_the_worker_matches_the_seed(isolated: Settings, worker: Worker, month_file: Path) -> None:
    hotline(isolated, "replay", str(month_file), "--wait")
    markdown = worker_get(isolated, "/bulletin/2019-11?format=md").decode()
    assert_section_two_matches_seed(markdown, worker_get(isolated, "/bulletin/2019-11?format=json"))


def test_section_two_imported_directly_matches_the_seed(isolated: Settings, month_file: Path) -> None:
    """The direct path: ``hotline import`` into ClickHouse, ``hotline bulletin`` without a worker."""
    hotline(isolated, "import", str(month_file))
    markdown = hotline(isolated, "bulletin", "--month", "2019-11", "--format", "md").stdout.decode()
    bulletin = json.loads(hotline(isolated, "bulletin", "--month", "2019-11", "--format", "json").stdout)
    assert_section_two_matches_seed(markdown, bulletin)
