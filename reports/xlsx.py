"""The bulletin's attachment table and section 一's figures as an Excel workbook (openpyxl).

The workbook is for checking and reusing the figures, not for reading the bulletin: sheet 附件 is
the attachment table as printed (counts as numbers Excel can sum, rates as the printed text),
sheet 一、基本情况 the figures the text of section 一 quotes, label by label. The sentences are
not here; headings, notes and the table's cells come from :mod:`hotline.reports.prose`, so the
workbook says what the Word and Markdown files say.
"""

from __future__ import annotations

import io
import re

from openpyxl import Workbook  # type: ignore[import-untyped, unused-ignore]
from openpyxl.styles import Alignment, Border, Font, Side  # type: ignore[import-untyped, unused-ignore]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped, unused-ignore]
from openpyxl.worksheet.worksheet import Worksheet  # type: ignore[import-untyped, unused-ignore]

from hotline.reports.bulletin import COLUMNS, TYPE_LABELS, Bulletin, list_keys
from hotline.reports.docx import edition_date, stable_zip
from hotline.reports.escaping import xml_text
from hotline.reports.prose import (
    SECTION_BASICS,
    SECTION_HOTSPOTS,
    SECTION_RETURNS,
    SECTION_STANDARDS,
    SECTION_SUPERVISION,
    SECTION_TYPES,
    SECTION_VISITS,
    change_table,
    change_title,
    comparison_sentences,
    name_list,
    table_cells,
    table_notes,
    table_title,
)
from hotline.schemas import metrics as mc

XLSX_TABLE_SHEET = "附件"
XLSX_HEADLINE_SHEET = "一、基本情况"
XLSX_CHANGES_SHEET = "环比同比"

_INTEGER = re.compile(r"-?\d+")


def _cell_value(key: str, text: str) -> int | str:
    """The spreadsheet value of one printed cell.

    Integer counts become numbers so Excel can sum, sort and chart them, and
    ``str()`` of the number gives back the printed text.  Rates stay the printed
    strings: storing ``0.9953`` with a percent format would hand the rounding to
    Excel (binary floats, its own rounding rule), and the bulletin's rule — half up
    on the exact fraction — is decided once in ``hotline.reports.bulletin``.  ``'-'`` has no
    numeric meaning and stays text.  Unit names are never converted, even if a
    unit id standing in for an unknown name happens to be digits.
    """
    if key != "unit" and _INTEGER.fullmatch(text):
        return int(text)
    return text


def _display_width(text: str) -> int:
    """Column width in Excel's character units; CJK glyphs are two wide."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


_THIN = Side(style="thin", color="000000")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_XLSX_FONT = "宋体"


def _table_sheet(ws: Worksheet, bulletin: Bulletin, title: str) -> None:
    """The attachment: merged title, wrapped bold headers, one row per unit, bold 总计."""
    ncols = len(COLUMNS)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncols)
    ws.cell(row=1, column=1, value=title)
    ws.cell(row=1, column=1).font = Font(name=_XLSX_FONT, size=16, bold=True)
    ws.cell(row=1, column=1).alignment = Alignment(horizontal="center", vertical="center")
    ws.row_dimensions[1].height = 30

    for col, (_, label) in enumerate(COLUMNS, start=1):
        cell = ws.cell(row=2, column=col, value=label)
        cell.font = Font(name=_XLSX_FONT, size=10, bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = _BORDER
    ws.row_dimensions[2].height = 54

    rows = table_cells(bulletin, xml_text)
    for r, row in enumerate(rows, start=3):
        is_total = r == len(rows) + 2
        for col, (key, _) in enumerate(COLUMNS, start=1):
            cell = ws.cell(row=r, column=col, value=_cell_value(key, row[col - 1]))
            cell.font = Font(name=_XLSX_FONT, size=10, bold=is_total)
            cell.alignment = Alignment(horizontal="left" if key == "unit" else "center", vertical="center")
            cell.border = _BORDER

    notes_row = len(rows) + 4
    ws.merge_cells(start_row=notes_row, start_column=1, end_row=notes_row, end_column=ncols)
    ws.cell(row=notes_row, column=1, value=table_notes(bulletin))
    ws.cell(row=notes_row, column=1).font = Font(name=_XLSX_FONT, size=9)
    ws.cell(row=notes_row, column=1).alignment = Alignment(wrap_text=True, vertical="top")
    ws.row_dimensions[notes_row].height = 42

    names = [row[0] for row in rows] + [COLUMNS[0][1]]
    ws.column_dimensions["A"].width = min(max(_display_width(n) for n in names) + 2, 34)
    for col in range(2, ncols + 1):
        widest = max(len(row[col - 1]) for row in rows)
        ws.column_dimensions[get_column_letter(col)].width = max(9, widest + 3)

    # Header and unit names stay visible while scrolling the 16 columns.
    ws.freeze_panes = "B3"
    ws.print_title_rows = "1:2"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.6


def _headline_rows(bulletin: Bulletin) -> list[tuple[str, int | str | None, str]]:
    """Section 一's figures as (label, value, share); value ``None`` marks a heading row. What
    events wrote (categories, unit names) goes through :func:`xml_text`."""
    h = bulletin.headline
    calls, orders, visits = h["calls"], h["orders"], h["visits"]
    office = bulletin.office
    cut, (high, low) = office.bulletin.satisfaction_lists, list_keys(office)
    rows: list[tuple[str, int | str | None, str]] = [
        (SECTION_BASICS, None, ""),
        (mc.CALLS_RECEIVED.label, calls["received"], ""),
        (mc.CALLS_ANSWERED.label, calls["answered"], ""),
        (mc.CALLS_VALID.label, calls["valid"], ""),
        (mc.CALLS_ANSWERED_DIRECTLY.label, calls["consult_or_suggest_answered_directly"], ""),
        ("交办成员单位工单", calls["dispatched_to_units"], ""),
        (mc.CALLS_RESOLVED_ONLINE.label, calls["resolved_online"], ""),
        ("办结工单", orders["completed"], ""),
        ("逾期工单", orders["overdue"], ""),
        (mc.CONNECTION_RATE.label, calls["connection_rate"], ""),
        (mc.ONLINE_RESOLUTION_RATE.label, calls["online_resolution_rate"], ""),
        ("按时办结率", orders["on_time_completion_rate"], ""),
        (SECTION_TYPES, None, ""),
    ]
    rows += [(f"{TYPE_LABELS.get(t, t)}类", e["count"], e["share"]) for t, e in h["dispatched_by_type"].items()]
    rows.append((SECTION_HOTSPOTS, None, ""))
    rows += [(xml_text(c["category"]), c["count"], c["share"]) for c in h["top_categories_share_of_all_received_calls"]]
    rows += [
        (SECTION_VISITS, None, ""),
        ("回访办结工单", visits["visited_completed_orders"], ""),
        ("有效回访工单", visits["valid_visits"], ""),
        ("回访未应答", visits["unreached"], ""),
        ("满意工单", visits["satisfied"], ""),
        ("不满意工单", visits["unsatisfied"], ""),
        ("回访满意率", visits["satisfaction_rate"], ""),
        (
            f"回访满意率{office.percent(cut.high)}以上（含）的单位",
            name_list(map(xml_text, h["satisfaction_lists"][high])),
            "",
        ),
        (
            f"回访满意率低于{office.percent(cut.low)}的单位",
            name_list(map(xml_text, h["satisfaction_lists"][low])),
            "",
        ),
        ("未答复当事人工单", h["not_replied_to_citizen"]["total"], ""),
    ]
    rows += [(f"未答复当事人：{xml_text(name)}", n, "") for name, n in h["not_replied_to_citizen"]["top_units"].items()]
    r = h["returns"]
    rows += [
        (SECTION_RETURNS, None, ""),
        ("退单单次", r["return_events"], r["share_of_dispatched"]),
        ("退单工单数", r["orders_returned"], ""),
    ]
    times = sorted(((int(t), n) for t, n in r["orders_by_times_returned"].items()), reverse=True)
    rows += [(f"退单{t}次的工单", n, "") for t, n in times]
    s = h["supervision"]
    rows += [
        (SECTION_SUPERVISION, None, ""),
        ("电话督办", s["phone"]["issued"], ""),
        ("电话督办满意", s["phone"]["satisfied_after"], ""),
        ("书面督办", s["written"]["issued"], ""),
        ("书面督办满意", s["written"]["satisfied_after"], ""),
    ]
    standards = h.get("below_standard") or {}
    if standards:
        rows.append((SECTION_STANDARDS, None, ""))
        rows += [
            (f"{s['label']}未达标（最低标准{s['standard']}）的单位", name_list(map(xml_text, s["units"])), "")
            for s in standards.values()
        ]
    return rows


def _headline_sheet(ws: Worksheet, bulletin: Bulletin) -> None:
    """Section 一 as label/value rows, so the figures quoted in the text can be checked."""
    for col, label in enumerate(("项目", "数值", "占比"), start=1):
        cell = ws.cell(row=1, column=col, value=label)
        cell.font = Font(name=_XLSX_FONT, bold=True)
        cell.border = _BORDER
    for r, (label, value, share) in enumerate(_headline_rows(bulletin), start=2):
        heading = value is None
        ws.cell(row=r, column=1, value=label).font = Font(name=_XLSX_FONT, bold=heading)
        if not heading:
            ws.cell(row=r, column=2, value=_cell_value("value", str(value)))
            ws.cell(row=r, column=2).alignment = Alignment(horizontal="right", wrap_text=True)
            ws.cell(row=r, column=3, value=share or None)
            ws.cell(row=r, column=3).alignment = Alignment(horizontal="right")
    ws.column_dimensions["A"].width = 34
    ws.column_dimensions["B"].width = 60
    ws.column_dimensions["C"].width = 10
    ws.freeze_panes = "A2"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4


def _changes_sheet(ws: Worksheet, bulletin: Bulletin) -> None:
    """环比 and 同比: the sentences (or why a comparison is withheld), then each per-unit table."""
    row = 1
    for sentence in comparison_sentences(bulletin):
        ws.cell(row=row, column=1, value=sentence).font = Font(name=_XLSX_FONT)
        row += 1
    for comparison in bulletin.comparisons:
        row += 1
        ws.cell(row=row, column=1, value=change_title(comparison)).font = Font(name=_XLSX_FONT, bold=True)
        header, cells = change_table(comparison, xml_text)
        for r, values in enumerate([header, *cells], start=row + 1):
            for c, value in enumerate(values, start=1):
                cell = ws.cell(row=r, column=c, value=value)
                cell.font = Font(name=_XLSX_FONT, bold=r == row + 1)
                cell.border = _BORDER
        row += len(cells) + 2
    ws.column_dimensions["A"].width = 28


def to_xlsx(bulletin: Bulletin) -> bytes:
    """The attachment table (sheet 附件), section 一's figures (sheet 一、基本情况) and, in an edition,
    the comparisons (sheet 环比同比: the changes, or why they are withheld)."""
    wb = Workbook()
    table = wb.active
    table.title = XLSX_TABLE_SHEET
    _table_sheet(table, bulletin, table_title(bulletin))
    _headline_sheet(wb.create_sheet(XLSX_HEADLINE_SHEET), bulletin)
    if bulletin.comparisons or bulletin.withheld:
        _changes_sheet(wb.create_sheet(XLSX_CHANGES_SHEET), bulletin)
    out = io.BytesIO()
    wb.save(out)
    return stable_zip(out.getvalue(), edition_date(bulletin))  # the same figures, the same bytes
