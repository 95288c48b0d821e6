"""Publication formats of the bulletin: the 通报 as Word and Markdown, the 附件 table as Excel.

The model is the real published bulletin (``seed/xiangtan-2019-11-bulletin.txt``).
Its data sections — 一、热线运行基本情况 and （一）–（五） — are rebuilt here from
``Bulletin.headline``, and its attachment from ``Bulletin.rows()``.  The sections that
are written by people rather than computed (the provincial spot checks, 下一步工作要求,
the 退单分析 commentary) are left out on purpose: a generated document must not
pretend to have an opinion.

No figure is recomputed in this module.  Counts and rates are taken exactly as
``hotline.reports.bulletin`` printed them (``'99.53%'``, ``'-'``), so the documents agree
with the CSV and JSON outputs to the character.  The Chinese prose is built once by
:func:`_compose` and laid out by both :func:`to_docx` and :func:`to_markdown`, so the
two formats cannot drift apart.
"""

from __future__ import annotations

import calendar
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt, RGBColor
from docx.styles.style import ParagraphStyle
from docx.table import Table
from openpyxl import Workbook  # type: ignore[import-untyped, unused-ignore]
from openpyxl.styles import Alignment, Border, Font, Side  # type: ignore[import-untyped, unused-ignore]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped, unused-ignore]
from openpyxl.worksheet.worksheet import Worksheet  # type: ignore[import-untyped, unused-ignore]

from hotline.reports.bulletin import COLUMNS, DASH, TYPE_LABELS, Bulletin, month_key
from hotline.schemas import metrics as mc

CITY = "湘潭市"
# A font every Chinese Windows/Office install has; WPS and LibreOffice map it too.
CJK_FONT = "宋体"
HOTLINE = "12345市长热线"

SECTION_BASICS = "一、热线运行基本情况"
SECTION_TYPES = "（一）交办工单话务类型"
SECTION_HOTSPOTS = "（二）交办工单热点问题"
SECTION_VISITS = "（三）回访情况"
SECTION_RETURNS = "（四）退单情况"
SECTION_SUPERVISION = "（五）督办情况"
SECTION_DATA_QUALITY = "数据质量说明"
XLSX_TABLE_SHEET = "附件"
XLSX_HEADLINE_SHEET = "一、基本情况"

# How many units are named where the text lists "the most" (the original names five).
TOP_UNITS = 5
_CN_DIGITS = "零一两三四五六七八九十"  # counting form: 前两位, not 前二位
_INTEGER = re.compile(r"-?\d+")

TABLE_NOTES = (
    "备注：1. 县市区园区按行政区划顺序排列，其余成员单位按交办数从多到少排序；"
    "2. 回访、退单、督办按事件发生的月份统计，可能涉及上月交办的工单，故回访率可超过100%；"
    "3. “-”表示该单位本月没有回访、督办数据（数据未报送），或比率的分母为零。"
)


# --------------------------------------------------------------------------- text


@dataclass(frozen=True)
class _Section:
    """A heading and its paragraphs; level 1 is 一、…, level 2 is （一）…."""

    heading: str
    level: int
    paragraphs: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Text:
    """Everything a document prints besides the table, already in Chinese."""

    title: str
    sections: tuple[_Section, ...]
    attachment_heading: str
    table_title: str
    table_notes: str


def _period(bulletin: Bulletin) -> tuple[int, int, int]:
    """Year, month and last day of the bulletin's month (validated like every other entry point)."""
    key = month_key(bulletin.month)
    year, month = divmod(key, 100)
    return year, month, calendar.monthrange(year, month)[1]


def _table_title(bulletin: Bulletin) -> str:
    year, month, _ = _period(bulletin)
    return f"{year}年{month}月市长热线办理情况统计表"


def _cn_number(n: int) -> str:
    """Chinese numeral for the small counts prose uses (前五位); digits beyond ten."""
    return _CN_DIGITS[n] if 0 <= n <= 10 else str(n)


def _names(names: Iterable[str]) -> str:
    """``甲、乙、丙``; ``无`` for an empty list so the sentence still reads."""
    joined = "、".join(names)
    return joined or "无"


def _counted(counts: Mapping[str, int], unit: str = "件") -> str:
    """``雨湖区人民政府119件、岳塘区人民政府43件`` in the given order."""
    return "、".join(f"{name}{n}{unit}" for name, n in counts.items())


def _rate(label: str, value: str) -> str:
    """``接通率97.71%``; a zero denominator ('-') reads as 暂无数据 rather than a stray dash."""
    return f"{label}{value}" if value != DASH else f"{label}暂无数据"


def _with_share(text: str, share: str) -> str:
    """Append ``，占66.22%`` unless the share has no denominator."""
    return f"{text}，占{share}" if share != DASH else text


def _basics(bulletin: Bulletin) -> str:
    year, month, last = _period(bulletin)
    h = bulletin.headline
    calls, orders, visits = h["calls"], h["orders"], h["visits"]
    return (
        f"{year}年{month}月1日至{month}月{last}日，{HOTLINE}共接到群众各类来电{calls['received']}件，"
        f"有效电话{calls['valid']}件，其中咨询建议类电话{calls['consult_or_suggest_answered_directly']}件，"
        f"交办各成员单位处理{calls['dispatched_to_units']}件，办结工单{orders['completed']}件，"
        f"逾期工单{orders['overdue']}件。"
        f"{_rate('接通率', calls['connection_rate'])}，"
        f"{_rate('在线办结率', calls['online_resolution_rate'])}，"
        f"{_rate('按时办结率', orders['on_time_completion_rate'])}，"
        f"有效回访工单数{visits['valid_visits']}件，回访未应答{visits['unreached']}件，"
        f"{_rate('回访满意率', visits['satisfaction_rate'])}。"
    )


def _order_types(bulletin: Bulletin) -> str:
    by_type: dict[str, dict[str, Any]] = bulletin.headline["dispatched_by_type"]
    if not bulletin.headline["calls"]["dispatched_to_units"]:
        return "本月没有交办工单。"
    parts = [_with_share(f"{TYPE_LABELS.get(t, t)}类{e['count']}个", e["share"]) for t, e in by_type.items()]
    return "；".join(parts) + "。"


def _hotspots(bulletin: Bulletin) -> str:
    _, month, _ = _period(bulletin)
    categories: list[dict[str, Any]] = bulletin.headline["top_categories_share_of_all_received_calls"]
    if not categories:
        return f"{month}月份没有已分类的来电。"
    parts = [
        f"{c['category']}{c['share']}" if c["share"] != DASH else f"{c['category']}{c['count']}件" for c in categories
    ]
    return (
        f"{month}月份热线受理量列前{_cn_number(len(categories))}位的大类（占来电总数的比例）为："
        + "、".join(parts)
        + "。"
    )


def _visits(bulletin: Bulletin) -> tuple[str, ...]:
    _, month, _ = _period(bulletin)
    h = bulletin.headline
    v, lists, nr = h["visits"], h["satisfaction_lists"], h["not_replied_to_citizen"]
    summary = (
        f"{month}月共回访办结工单{v['visited_completed_orders']}件，其中有效回访工单数{v['valid_visits']}件，"
        f"回访过程中市民未接、拒接、不愿做出评价等情况的工单{v['unreached']}件。"
        f"从回访工单的情况来看，满意工单{v['satisfied']}件、不满意工单{v['unsatisfied']}件，"
        f"{_rate('回访满意率为', v['satisfaction_rate'])}。"
    )
    ranking = (
        f"回访满意率在80%以上（含80%）的单位有：{_names(lists['at_or_above_80_percent'])}；"
        f"回访满意率低于50%的单位有：{_names(lists['below_50_percent'])}。"
    )
    not_replied = f"成员单位未将办理情况答复当事人工单{nr['total']}件"
    if nr["top_units"]:
        not_replied += f"，其中{_counted(nr['top_units'])}"
    return summary, ranking, not_replied + "。"


def _returns(bulletin: Bulletin) -> str:
    _, month, _ = _period(bulletin)
    r = bulletin.headline["returns"]
    text = f"{month}月共接受各成员单位退单{r['return_events']}单次"
    if r["share_of_dispatched"] != DASH:
        text += f"，占交办工单数的{r['share_of_dispatched']}"
    times = sorted(((int(t), n) for t, n in r["orders_by_times_returned"].items()), reverse=True)
    if times:
        text += f"，涉及工单{r['orders_returned']}件，其中" + "、".join(f"退单{t}次的工单{n}起" for t, n in times)
    return text + "。"


def _supervision(bulletin: Bulletin) -> str:
    _, month, _ = _period(bulletin)
    s = bulletin.headline["supervision"]
    text = (
        f"{month}月共电话督办{s['phone']['issued']}件，电话督办满意数{s['phone']['satisfied_after']}件；"
        f"书面督办{s['written']['issued']}件，书面督办满意数{s['written']['satisfied_after']}件"
    )
    # The original names the units with the most supervision (phone + written); the
    # headline does not carry that list, so it is read off the per-unit counts.
    supervised = sorted(
        (u for u in bulletin.units if u.has_feedback and u.phone_supervised + u.written_supervised),
        key=lambda u: -(u.phone_supervised + u.written_supervised),
    )[:TOP_UNITS]
    if supervised:
        text += "。其中督办较多的单位为：" + _counted(
            {u.name: u.phone_supervised + u.written_supervised for u in supervised}
        )
    return text + "。"


def _data_quality(bulletin: Bulletin) -> tuple[str, ...]:
    if not bulletin.data_quality:
        return ("本期未发现数据质量问题。",)
    return tuple(f"{i}. {note}" for i, note in enumerate(bulletin.data_quality, start=1))


def _compose(bulletin: Bulletin) -> _Text:
    """The bulletin's prose, built once for every document format."""
    year, month, _ = _period(bulletin)
    table_title = _table_title(bulletin)
    return _Text(
        title=f"{year}年{month}月{CITY}12345热线工作情况通报",
        sections=(
            _Section(SECTION_BASICS, 1, (_basics(bulletin),)),
            _Section(SECTION_TYPES, 2, (_order_types(bulletin),)),
            _Section(SECTION_HOTSPOTS, 2, (_hotspots(bulletin),)),
            _Section(SECTION_VISITS, 2, _visits(bulletin)),
            _Section(SECTION_RETURNS, 2, (_returns(bulletin),)),
            _Section(SECTION_SUPERVISION, 2, (_supervision(bulletin),)),
            _Section(SECTION_DATA_QUALITY, 1, _data_quality(bulletin)),
        ),
        attachment_heading=f"附件：{table_title}",
        table_title=table_title,
        table_notes=TABLE_NOTES,
    )


# --------------------------------------------------------------------------- xlsx


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

    rows = bulletin.rows()
    for r, row in enumerate(rows, start=3):
        is_total = r == len(rows) + 2
        for col, (key, _) in enumerate(COLUMNS, start=1):
            cell = ws.cell(row=r, column=col, value=_cell_value(key, row[key]))
            cell.font = Font(name=_XLSX_FONT, size=10, bold=is_total)
            cell.alignment = Alignment(horizontal="left" if key == "unit" else "center", vertical="center")
            cell.border = _BORDER

    notes_row = len(rows) + 4
    ws.merge_cells(start_row=notes_row, start_column=1, end_row=notes_row, end_column=ncols)
    ws.cell(row=notes_row, column=1, value=TABLE_NOTES)
    ws.cell(row=notes_row, column=1).font = Font(name=_XLSX_FONT, size=9)
    ws.cell(row=notes_row, column=1).alignment = Alignment(wrap_text=True, vertical="top")
    ws.row_dimensions[notes_row].height = 42

    names = [row["unit"] for row in rows] + [COLUMNS[0][1]]
    ws.column_dimensions["A"].width = min(max(_display_width(n) for n in names) + 2, 34)
    for col, (key, _) in enumerate(COLUMNS[1:], start=2):
        widest = max(len(row[key]) for row in rows)
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
    """Section 一's figures as (label, value, share); value ``None`` marks a heading row."""
    h = bulletin.headline
    calls, orders, visits = h["calls"], h["orders"], h["visits"]
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
    rows += [(c["category"], c["count"], c["share"]) for c in h["top_categories_share_of_all_received_calls"]]
    rows += [
        (SECTION_VISITS, None, ""),
        ("回访办结工单", visits["visited_completed_orders"], ""),
        ("有效回访工单", visits["valid_visits"], ""),
        ("回访未应答", visits["unreached"], ""),
        ("满意工单", visits["satisfied"], ""),
        ("不满意工单", visits["unsatisfied"], ""),
        ("回访满意率", visits["satisfaction_rate"], ""),
        ("回访满意率80%以上（含）的单位", _names(h["satisfaction_lists"]["at_or_above_80_percent"]), ""),
        ("回访满意率低于50%的单位", _names(h["satisfaction_lists"]["below_50_percent"]), ""),
        ("未答复当事人工单", h["not_replied_to_citizen"]["total"], ""),
    ]
    rows += [(f"未答复当事人：{name}", n, "") for name, n in h["not_replied_to_citizen"]["top_units"].items()]
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


def to_xlsx(bulletin: Bulletin) -> bytes:
    """The attachment table (sheet 附件) and section 一's figures (sheet 一、基本情况)."""
    wb = Workbook()
    table = wb.active
    table.title = XLSX_TABLE_SHEET
    _table_sheet(table, bulletin, _table_title(bulletin))
    _headline_sheet(wb.create_sheet(XLSX_HEADLINE_SHEET), bulletin)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --------------------------------------------------------------------------- docx


def _cjk_style(style: ParagraphStyle, size: float, bold: bool | None = None) -> None:
    """Give a style the CJK font for every script and black text.

    Word picks the East Asian font from ``w:rFonts/@w:eastAsia``, which python-docx's
    ``font.name`` does not set; the built-in headings also name theme fonts, which
    take precedence over explicit names, so those attributes are removed.
    """
    style.font.name = CJK_FONT
    style.font.size = Pt(size)
    if bold is not None:
        style.font.bold = bold
    style.font.color.rgb = RGBColor(0, 0, 0)
    rpr = style.element.get_or_add_rPr()
    fonts = rpr.get_or_add_rFonts()
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(attr), None)
    fonts.set(qn("w:eastAsia"), CJK_FONT)
    lang = rpr.find(qn("w:lang"))
    if lang is None:
        lang = OxmlElement("w:lang")
        rpr.append(lang)
    lang.set(qn("w:eastAsia"), "zh-CN")


def _repeat_header(table: Table) -> None:
    """Repeat the header row on every page, as the printed attachment does."""
    tr_pr = table.rows[0]._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    tr_pr.append(header)
    for row in table.rows:
        cant_split = OxmlElement("w:cantSplit")
        row._tr.get_or_add_trPr().append(cant_split)


def _docx_table(doc: DocxDocument, bulletin: Bulletin, usable_width_mm: float) -> Table:
    rows = bulletin.rows()
    table: Table = doc.add_table(rows=1 + len(rows), cols=len(COLUMNS))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    first = 36.0
    other = (usable_width_mm - first) / (len(COLUMNS) - 1)
    widths = [Mm(first)] + [Mm(other)] * (len(COLUMNS) - 1)
    # A fixed-layout table takes its widths from the grid; cells repeat them for other readers.
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width

    def fill(r: int, values: list[str], bold: bool) -> None:
        for c, text in enumerate(values):
            cell = table.cell(r, c)
            cell.width = widths[c]
            paragraph = cell.paragraphs[0]
            paragraph.alignment = WD_ALIGN_PARAGRAPH.LEFT if c == 0 and r else WD_ALIGN_PARAGRAPH.CENTER
            run = paragraph.add_run(text)
            run.font.size = Pt(8)
            run.bold = bold

    fill(0, [label for _, label in COLUMNS], bold=True)
    for r, row in enumerate(rows, start=1):
        fill(r, [row[key] for key, _ in COLUMNS], bold=r == len(rows))
    _repeat_header(table)
    return table


def to_docx(bulletin: Bulletin) -> bytes:
    """The whole bulletin in Word: A4 portrait text, then the attachment on A4 landscape."""
    text = _compose(bulletin)
    doc = Document()
    _cjk_style(doc.styles["Normal"], 12)
    _cjk_style(doc.styles["Title"], 20, bold=True)
    _cjk_style(doc.styles["Heading 1"], 14, bold=True)
    _cjk_style(doc.styles["Heading 2"], 12, bold=True)
    doc.core_properties.title = text.title
    doc.core_properties.language = "zh-CN"

    body = doc.sections[0]
    body.orientation = WD_ORIENT.PORTRAIT
    body.page_width, body.page_height = Mm(210), Mm(297)
    body.left_margin = body.right_margin = Mm(28)
    body.top_margin, body.bottom_margin = Mm(37), Mm(35)

    doc.add_heading(text.title, level=0).alignment = WD_ALIGN_PARAGRAPH.CENTER
    for section in text.sections:
        doc.add_heading(section.heading, level=section.level)
        for paragraph in section.paragraphs:
            p = doc.add_paragraph(paragraph)
            p.paragraph_format.first_line_indent = Pt(24)
    doc.add_paragraph(text.attachment_heading)

    annex = doc.add_section(WD_SECTION.NEW_PAGE)
    annex.orientation = WD_ORIENT.LANDSCAPE
    annex.page_width, annex.page_height = Mm(297), Mm(210)
    annex.left_margin = annex.right_margin = Mm(15)
    annex.top_margin = annex.bottom_margin = Mm(15)
    doc.add_paragraph("附件")
    doc.add_heading(text.table_title, level=1).alignment = WD_ALIGN_PARAGRAPH.CENTER
    _docx_table(doc, bulletin, 297 - 30)
    notes = doc.add_paragraph()
    notes.add_run(text.table_notes).font.size = Pt(9)

    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


# --------------------------------------------------------------------------- markdown


def _md_cell(text: str) -> str:
    """A table cell: pipes and backslashes would break the row."""
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _md_table(bulletin: Bulletin) -> list[str]:
    header = [label for _, label in COLUMNS]
    align = [":---" if key == "unit" else "---:" for key, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for row in bulletin.rows():
        lines.append("| " + " | ".join(_md_cell(row[key]) for key, _ in COLUMNS) + " |")
    return lines


def to_markdown(bulletin: Bulletin) -> bytes:
    """The whole bulletin as Markdown: # title, ## 一/数据质量/附件, ### （一）–（五）, a pipe table."""
    text = _compose(bulletin)
    lines = [f"# {text.title}", ""]
    for section in text.sections:
        lines += ["#" * (section.level + 1) + f" {section.heading}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
    lines += [f"## {text.attachment_heading}", "", *_md_table(bulletin), "", text.table_notes, ""]
    return "\n".join(lines).encode("utf-8")


def prose(bulletin: Bulletin) -> str:
    """The bulletin's sections as plain text, for the terminal (the table follows it there)."""
    text = _compose(bulletin)
    lines = [text.title, ""]
    for section in text.sections:
        lines += [section.heading, *(f"    {p}" for p in section.paragraphs), ""]
    lines.append(text.attachment_heading)
    return "\n".join(lines)
