"""The xlsx/docx/md bulletin documents against the CSV, from a bulletin built on canned query rows.

No ClickHouse: a fake ``db`` answers each query constant of ``hotline.reports.queries`` with
fixed rows keyed by column name, as ``hotline.reports.bulletin`` reads them.  The units cover a normal
district (satisfaction below 50%), a department at or above 80%, a unit with no
feedback events (prints '-'), and a unit with events but nothing dispatched
(zero-denominator rates print '-').
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from docx import Document
from docx.oxml.ns import qn
from openpyxl import load_workbook  # type: ignore[import-untyped, unused-ignore]

from hotline.reports import docx_style, prose, queries, xlsx
from hotline.reports.bulletin import COLUMNS, Bulletin, build_bulletin
from hotline.reports.docx import to_docx
from hotline.reports.markdown import to_markdown
from hotline.reports.render import render, to_csv
from hotline.reports.xlsx import to_xlsx
from hotline.schemas import metrics as mc

ORDER_ROWS = [
    {
        "unit_id": "yuhu",
        "dispatched": 20,
        "completed_on_time": 18,
        "completed_late": 2,
        "overdue": 2,
        "open_not_due": 0,
    },
    {
        "unit_id": "xiangxiang",
        "dispatched": 7,
        "completed_on_time": 7,
        "completed_late": 0,
        "overdue": 0,
        "open_not_due": 0,
    },
    {
        "unit_id": "transport",
        "dispatched": 12,
        "completed_on_time": 12,
        "completed_late": 0,
        "overdue": 0,
        "open_not_due": 0,
    },
]
EVENT_NAMES = (
    "unit_id",
    "returned",
    "visits",
    "visits_unreached",
    "visits_satisfied",
    "not_replied",
    "phone_supervised",
    "phone_supervised_replied",
    "phone_supervision_satisfied",
    "written_supervised",
    "written_supervised_replied",
    "written_supervision_satisfied",
    "feedback_events",
    "supervision_unsatisfied",
)
EVENT_ROWS = [
    dict(zip(EVENT_NAMES, values, strict=True))
    for values in [
        ("yuhu", 3, 10, 4, 4, 6, 5, 5, 3, 2, 2, 1, 30, 2),
        ("transport", 1, 10, 1, 9, 2, 1, 1, 1, 0, 0, 0, 12, 0),
        ("police", 2, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0),
    ]
]
CALL_NAMES = ("calls_received", "calls_answered", "calls_valid", "calls_answered_directly", "calls_resolved_online")
Rows = list[dict[str, Any]]
CANNED: dict[str, Rows] = {
    queries.ORDER_COLUMNS: ORDER_ROWS,
    queries.EVENT_COLUMNS: EVENT_ROWS,
    queries.CALLS: [dict(zip(CALL_NAMES, (100, 97, 80, 41, 60), strict=True))],
    queries.ORDER_TYPES: [
        {"first_type": "complaint", "orders": 25},
        {"first_type": "help", "orders": 10},
        {"first_type": "other", "orders": 4},
    ],
    queries.CATEGORIES: [{"category": "环境保护", "calls": 13}, {"category": "住建房管", "calls": 9}],
    queries.TIMES_RETURNED: [{"times": 3, "orders": 1}, {"times": 1, "orders": 3}],
    queries.DEADLETTERS: [{"deadletters": 2}],
    queries.CHECK_UNITS: [
        {"unit_id": "yuhu", "spot_checked": 3, "spot_not_reached": 0, "spot_unsatisfied": 1},
        {"unit_id": "police", "spot_checked": 2, "spot_not_reached": 1, "spot_unsatisfied": 1},
        {"unit_id": "transport", "spot_checked": 1, "spot_not_reached": 0, "spot_unsatisfied": 0},
    ],
    queries.CHECK_CITY: [{"test_calls": 2, "uploads_flagged": 1}],
    queries.check_points(mc.TEST_CALL_POINTS): [
        {"item": "业务知识", "test_call_points": Decimal("2")},
        {"item": "首问责任制", "test_call_points": Decimal("0.5")},
    ],
    queries.check_points(mc.UPLOAD_POINTS): [{"item": "规范性", "upload_points": Decimal("1")}],
}
EMPTY: dict[str, Rows] = {
    queries.ORDER_COLUMNS: [],
    queries.EVENT_COLUMNS: [],
    queries.CALLS: [dict.fromkeys(CALL_NAMES, 0)],
    queries.ORDER_TYPES: [],
    queries.CATEGORIES: [],
    queries.TIMES_RETURNED: [],
    queries.DEADLETTERS: [{"deadletters": 0}],
    queries.CHECK_UNITS: [],
    queries.CHECK_CITY: [{"test_calls": 0, "uploads_flagged": 0}],
    queries.check_points(mc.TEST_CALL_POINTS): [],
    queries.check_points(mc.UPLOAD_POINTS): [],
}


class FakeDB:
    """Answers each known query constant with canned rows, by column name; anything else is a test bug."""

    def __init__(self, canned: dict[str, Rows]) -> None:
        self.canned = canned

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> Rows:
        assert sql in self.canned, f"unexpected query: {sql[:60]!r}"
        return [dict(r) for r in self.canned[sql]]


@pytest.fixture(scope="module")
def bulletin() -> Bulletin:
    return build_bulletin(FakeDB(CANNED), "2019-11")


@pytest.fixture(scope="module")
def csv_rows(bulletin: Bulletin) -> list[list[str]]:
    return list(csv.reader(io.StringIO(to_csv(bulletin).decode("utf-8"))))[1:]


def test_fixture_covers_normal_dash_and_zero_denominator_units(bulletin: Bulletin) -> None:
    rows = {row["unit"]: row for row in bulletin.rows()}
    assert rows["雨湖区人民政府"]["satisfaction_rate"] == "40.00%"
    assert rows["市交通局"]["satisfaction_rate"] == "90.00%"
    assert rows["湘乡市人民政府"]["visits"] == "-" and rows["湘乡市人民政府"]["on_time_rate"] == "100.00%"
    police = rows["市公安局"]
    assert police["on_time_rate"] == "-" and police["satisfaction_rate"] == "-" and police["visits"] == "0"
    assert bulletin.rows()[-1]["unit"] == "总计"


def test_xlsx_cells_equal_csv_cells(bulletin: Bulletin, csv_rows: list[list[str]]) -> None:
    wb = load_workbook(io.BytesIO(to_xlsx(bulletin)))
    assert wb.sheetnames[0] == xlsx.XLSX_TABLE_SHEET
    ws = wb[xlsx.XLSX_TABLE_SHEET]
    assert ws["A1"].value == "2019年11月市长热线办理情况统计表"
    assert "A1:P1" in {str(r) for r in ws.merged_cells.ranges}
    assert [c.value for c in ws[2]] == [label for _, label in COLUMNS]
    assert all(c.font.bold and c.alignment.wrap_text for c in ws[2])
    assert ws.freeze_panes == "B3"
    assert ws.page_setup.orientation == "landscape"
    assert int(ws.page_setup.paperSize) == int(ws.PAPERSIZE_A4)

    cells = [[c.value for c in row] for row in ws.iter_rows(min_row=3, max_row=2 + len(csv_rows), max_col=len(COLUMNS))]
    assert [[str(v) for v in row] for row in cells] == csv_rows
    assert ws.cell(row=3 + len(csv_rows), column=1).value is None  # nothing glued to the table
    # integers are numbers, rates and '-' the printed strings
    yuhu = cells[0]
    assert yuhu[0] == "雨湖区人民政府" and yuhu[1] == 20 and isinstance(yuhu[1], int)
    assert yuhu[5] == "90.00%"
    assert all(c.font.bold for c in ws[2 + len(csv_rows)])
    assert not ws.cell(row=3, column=1).font.bold

    headline = wb[xlsx.XLSX_HEADLINE_SHEET]
    values = {row[0]: row[1] for row in headline.iter_rows(min_row=2, values_only=True)}
    assert values["来电总数"] == 100 and values["接通率"] == "97.00%"


def test_docx_table_and_text(bulletin: Bulletin, csv_rows: list[list[str]]) -> None:
    doc = Document(io.BytesIO(to_docx(bulletin)))
    assert len(doc.tables) == 1
    table = doc.tables[0]
    assert len(table.columns) == len(COLUMNS)
    cells = [[cell.text for cell in row.cells] for row in table.rows]
    assert cells[0] == [label for _, label in COLUMNS]
    assert cells[1:] == csv_rows

    text = "\n".join(p.text for p in doc.paragraphs)
    assert "2019年11月湘潭市12345热线工作情况通报" in text
    for heading in (
        prose.SECTION_BASICS,
        prose.SECTION_TYPES,
        prose.SECTION_HOTSPOTS,
        prose.SECTION_VISITS,
        prose.SECTION_RETURNS,
        prose.SECTION_SUPERVISION,
        prose.SECTION_DATA_QUALITY,
        "附件：2019年11月市长热线办理情况统计表",
    ):
        assert heading in text
    assert "共接到群众各类来电100件" in text and "接通率97.00%" in text
    assert "回访满意率在80%以上（含80%）的单位有：市交通局；" in text
    assert "回访满意率低于50%的单位有：雨湖区人民政府。" in text
    assert "成员单位未将办理情况答复当事人工单8件，其中雨湖区人民政府6件、市交通局2件。" in text
    assert "退单3次的工单1起、退单1次的工单3起" in text
    assert "共电话督办7件，电话督办满意数4件；书面督办2件，书面督办满意数1件" in text
    assert "投诉类25个，占64.10%" in text
    assert "死信队列中有 2 条" in text
    for note in bulletin.data_quality:
        assert note in text

    normal = doc.styles["Normal"].element.rPr
    assert normal.rFonts.get(qn("w:eastAsia")) == docx_style.CJK_FONT
    annex = doc.sections[-1]
    assert annex.page_width is not None and annex.page_height is not None
    assert annex.page_width > annex.page_height


def test_markdown(bulletin: Bulletin, csv_rows: list[list[str]]) -> None:
    md = to_markdown(bulletin).decode("utf-8")
    lines = md.splitlines()
    assert lines[0] == "# 2019年11月湘潭市12345热线工作情况通报"
    for heading in (
        "## 一、热线运行基本情况",
        "### （一）交办工单话务类型",
        "### （二）交办工单热点问题",
        "### （三）回访情况",
        "### （四）退单情况",
        "### （五）督办情况",
        "## 数据质量说明",
        "## 附件：2019年11月市长热线办理情况统计表",
    ):
        assert heading in lines
    assert "| " + " | ".join(label for _, label in COLUMNS) + " |" in lines
    for row in csv_rows:
        assert "| " + " | ".join(row) + " |" in lines
    assert "回访满意率低于50%的单位有：雨湖区人民政府。" in md


def test_docx_and_markdown_share_the_same_prose(bulletin: Bulletin) -> None:
    doc = Document(io.BytesIO(to_docx(bulletin)))
    md = to_markdown(bulletin).decode("utf-8")
    paragraphs = [p.text for p in doc.paragraphs if p.text and p.style is not None and p.style.name == "Normal"]
    assert len(paragraphs) >= 6
    for paragraph in paragraphs:
        assert paragraph in md


def test_empty_month_renders_without_figures() -> None:
    empty = build_bulletin(FakeDB(EMPTY), "2020-02", printed={})
    md = render(empty, "md").decode("utf-8")
    assert "2月1日至2月29日" in md
    assert "接通率暂无数据" in md and "本月没有交办工单。" in md
    assert "| 总计 | 0 | 0 | 0 | 0 | - |" in md
    doc = Document(io.BytesIO(render(empty, "docx")))
    assert [c.text for c in doc.tables[0].rows[-1].cells][:2] == ["总计", "0"]
    ws = load_workbook(io.BytesIO(render(empty, "xlsx")))[xlsx.XLSX_TABLE_SHEET]
    assert [str(c.value) for c in ws[3]][:6] == ["总计", "0", "0", "0", "0", "-"]
