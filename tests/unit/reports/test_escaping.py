"""Text that events wrote, in every bulletin format.

A test call's item, a call's category and the ``unit_id`` that names a unit the registry does
not know are free text. A hostile tester put a NUL in an item (the Word bulletin failed with
"All strings must be XML compatible") and ``# 伪造标题\\n\\n| x | y |`` in another (a heading
and a table row in the Markdown bulletin). The bulletins here are built like
``test_documents``' (canned query rows, no ClickHouse), with one hostile string where an event
puts it.
"""

from __future__ import annotations

import copy
import io
import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from docx import Document
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook  # type: ignore[import-untyped, unused-ignore]

from hotline.reports import escaping, queries, xlsx
from hotline.reports.bulletin import COLUMNS, Bulletin, build_bulletin
from hotline.reports.render import render
from hotline.schemas import metrics as mc
from hotline.schemas.office import current_office
from tests.unit.reports.test_documents import CANNED, ORDER_ROWS, FakeDB

# Every character XML 1.0 refuses that an event can carry (a lone surrogate cannot travel in
# JSON's UTF-8, but ``xml_text`` drops it too), around text that must survive.
CONTROLS = "\x00\x01\x08\x0b\x0c\x1b\x1f\ufffe\uffff"
ITEM, ITEM_KEPT = f"答复{CONTROLS}质量", "答复质量"  # not one of the fixture's items
UNIT, UNIT_KEPT = f"外来{CONTROLS}单位", "外来单位"
CATEGORY, CATEGORY_KEPT = f"城市{CONTROLS}管理", "城市管理"
FORGED = "# 伪造标题\n\n| x | y |"
LINE_BREAKS = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def bulletin_with(item: str = "", category: str = "", unit_id: str = "") -> Bulletin:
    """The fixture's month with a test-call item that lost the most points, a category of
    calls and a unit the registry does not know, each only when given."""
    canned = copy.deepcopy(CANNED)
    if item:
        canned[queries.check_points(mc.TEST_CALL_POINTS)].append({"item": item, "test_call_points": Decimal("3")})
    if category:
        canned[queries.CATEGORIES].append({"category": category, "calls": 5})
    if unit_id:
        canned[queries.ORDER_COLUMNS].append({**ORDER_ROWS[1], "unit_id": unit_id})
    return build_bulletin(FakeDB(canned), "2019-11")


def markdown_lines(bulletin: Bulletin) -> list[str]:
    return render(bulletin, "md").decode("utf-8").splitlines()


# --------------------------------------------------------------------------- docx and xlsx


def test_docx_keeps_a_test_call_item_without_the_characters_xml_refuses() -> None:
    doc = Document(io.BytesIO(render(bulletin_with(item=ITEM), "docx")))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert f"其中{ITEM_KEPT}扣3分" in text


def test_docx_keeps_an_unknown_units_id_without_the_characters_xml_refuses() -> None:
    doc = Document(io.BytesIO(render(bulletin_with(unit_id=UNIT), "docx")))
    assert UNIT_KEPT in [row.cells[0].text for row in doc.tables[0].rows]


def test_xlsx_keeps_a_category_without_the_characters_xml_refuses() -> None:
    wb = load_workbook(io.BytesIO(render(bulletin_with(category=CATEGORY), "xlsx")))
    labels = [row[0] for row in wb[xlsx.XLSX_HEADLINE_SHEET].iter_rows(min_row=2, values_only=True)]
    assert CATEGORY_KEPT in labels


def test_xlsx_keeps_an_unknown_units_id_without_the_characters_xml_refuses() -> None:
    wb = load_workbook(io.BytesIO(render(bulletin_with(unit_id=UNIT), "xlsx")))
    names = [row[0] for row in wb[xlsx.XLSX_TABLE_SHEET].iter_rows(min_row=3, values_only=True)]
    assert UNIT_KEPT in names


def test_xml_text_drops_only_what_xml_refuses() -> None:
    allowed = "\t\n\r 伪造~\x7f\x85\ud7ff\ue000\ufffd\U00010000\U0010ffff"
    assert escaping.xml_text(f"{CONTROLS}{allowed}\ud800\udfff") == allowed


# --------------------------------------------------------------------------- markdown


def test_markdown_item_adds_no_table_row() -> None:
    plain = [line for line in markdown_lines(bulletin_with(item="伪造标题")) if line.startswith("|")]
    forged = [line for line in markdown_lines(bulletin_with(item=FORGED)) if line.startswith("|")]
    assert forged == plain


def test_markdown_item_after_a_line_break_adds_no_heading() -> None:
    # Text before the item on its line is the bulletin's: a heading needs a line break first.
    plain = [line for line in markdown_lines(bulletin_with(item="伪造标题")) if line.startswith("#")]
    forged = [line for line in markdown_lines(bulletin_with(item="\n" + FORGED)) if line.startswith("#")]
    assert forged == plain


def test_markdown_unknown_units_id_stays_in_its_cell() -> None:
    bulletin = bulletin_with(unit_id=FORGED)
    lines = markdown_lines(bulletin)
    start = lines.index("| " + " | ".join(label for _, label in COLUMNS) + " |")
    table = lines[start : lines.index("", start)]
    assert len(table) == 2 + len(bulletin.rows())  # header and alignment, then a line per unit and 总计
    assert all(len(UNESCAPED_PIPE.findall(row)) == len(COLUMNS) + 1 for row in table)


@settings(max_examples=300, deadline=None, database=None)
@given(text=st.text())
def test_md_text_reads_back_as_the_text_on_one_line(text: str) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    tokens = markdown_it.MarkdownIt("commonmark").enable("table").parse(f"其中{escaping.md_text(text)}扣3分")
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"]
    children = tokens[1].children or []
    assert "".join(c.content for c in children) == f"其中{escaping.xml_text(LINE_BREAKS.sub(' ', text))}扣3分"


# --------------------------------------------------------------------------- terminal table


def test_table_prints_a_markup_like_item_as_it_is() -> None:
    out = render(bulletin_with(item="[/x] [bold]y"), "table").decode("utf-8")
    assert "其中[/x] [bold]y扣3分" in out


def test_table_shows_an_items_control_characters_escaped() -> None:
    out = render(bulletin_with(item="\x1b[2J伪造\n标题"), "table").decode("utf-8")
    assert "其中\\x1b[2J伪造\\n标题扣3分" in out and "\x1b" not in out


def test_a_chart_draws_a_unit_named_like_mathtext_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    """matplotlib reads ``$…$`` as mathtext: a unit named by an event's id must not fail the chart."""
    from hotline.reports import charts

    monkeypatch.setattr(charts, "satisfaction_points", lambda bulletin: [("$\\foo$", 60.0), ("雨湖区人民政府", 90.0)])
    png = charts.satisfaction_png(SimpleNamespace(office=current_office()))  # type: ignore[arg-type]
    assert png is not None and png.startswith(b"\x89PNG")
