"""Publication formats of the bulletin: the 通报 as Word and Markdown, the 附件 table as Excel.

The model is the real published bulletin (``seed/xiangtan-2019-11-bulletin.txt``).
Its data sections — 一、热线运行基本情况 and （一）–（五） — are rebuilt here from
``Bulletin.headline``, section 二 (the provincial platform's checks) from ``Bulletin.checks``,
and its attachment from ``Bulletin.rows()``.  The sections that are written by people rather
than computed (下一步工作要求, the 退单分析 commentary, the stories of single test calls) are
left out on purpose: a generated document must not pretend to have an opinion.

No figure is recomputed in this module.  Counts and rates are taken exactly as
``hotline.reports.bulletin`` printed them (``'99.53%'``, ``'-'``), so the documents agree
with the CSV and JSON outputs to the character.  The Chinese prose is built once by
:func:`_compose` and laid out by both :func:`to_docx` and :func:`to_markdown`, so the
two formats cannot drift apart.

The Word file is laid out as the office issues it, after GB/T 9704-2012 (党政机关公文格式):
the masthead (市 长 热 线 in red, the issuing office, 第N期（总第T期）, the date, a red line),
the standard's type (title 2号方正小标宋简体, body 3号仿宋_GB2312, headings 3号黑体 and
楷体_GB2312, page numbers 4号宋体 as ``— 1 —``), its margins (top 37 mm, left 28 mm, a
156 × 225 mm type area) and the attachment table on a landscape page with fixed column
widths and no wrapping inside a figure. The fonts are named as the standard names them; a
machine without them substitutes (Word by the font table's ``altName``, LibreOffice by its
replacement table and fontconfig: on a Linux box with only WenQuanYi Zen Hei, that one).
The file is deterministic: its dates are the issue date (or the month's last day for a
draft) and its zip entries carry that date, so an issue renders to the same bytes again.
"""

from __future__ import annotations

import calendar
import io
import re
import string
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_TAB_ALIGNMENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.section import Section
from docx.shared import Length, Mm, Pt, RGBColor
from docx.styles.style import ParagraphStyle
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph
from openpyxl import Workbook  # type: ignore[import-untyped, unused-ignore]
from openpyxl.styles import Alignment, Border, Font, Side  # type: ignore[import-untyped, unused-ignore]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped, unused-ignore]
from openpyxl.worksheet.worksheet import Worksheet  # type: ignore[import-untyped, unused-ignore]

from hotline.reports.bulletin import COLUMNS, DASH, TYPE_LABELS, Bulletin, month_key
from hotline.reports.checks import points_text
from hotline.reports.compare import UNIT_RATES, Comparison
from hotline.schemas import metrics as mc

CITY = "湘潭市"
HOTLINE = "12345市长热线"
MASTHEAD = "市 长 热 线"
OFFICE = "市长热线管理办公室"

# GB/T 9704-2012's type, named as the standard names it; the second name is what the font
# table offers Word as a substitute (altName) where the first is not installed.
FONT_TITLE = "方正小标宋简体"  # 发文机关标志 and 标题: 小标宋体
FONT_BODY = "仿宋_GB2312"  # 正文: 仿宋体
FONT_HEADING_1 = "黑体"  # 一级标题
FONT_HEADING_2 = "楷体_GB2312"  # 二级标题
FONT_PAGE_NUMBER = "宋体"  # 页码: 半角宋体阿拉伯数字
FONT_SUBSTITUTES = {FONT_TITLE: "宋体", FONT_BODY: "仿宋", FONT_HEADING_2: "楷体", FONT_HEADING_1: "SimHei"}
CJK_FONT = FONT_BODY  # the Normal style's East Asian font
# Chinese type sizes in points (号).
SIZE_1 = 42.0  # 初号: the masthead
SIZE_2 = 22.0  # 2号: the title
SIZE_SMALL_2 = 18.0  # 小2号: the attachment table's title
SIZE_3 = 16.0  # 3号: body and headings
SIZE_4 = 14.0  # 4号: page numbers
TABLE_SIZES = (10.5, 10.0, 9.0, 8.0, 7.5)  # 五号 down: the largest at which the table fits
# A4 and the type area: 156 x 225 mm, 22 lines of 28 characters of 3号.
PAGE_W_MM, PAGE_H_MM = 210.0, 297.0
TOP_MM, LEFT_MM, AREA_W_MM, AREA_H_MM = 37.0, 28.0, 156.0, 225.0
LINES_PER_PAGE = 22
LINE_PITCH = Pt(AREA_H_MM / 25.4 * 72 / LINES_PER_PAGE)  # exact spacing: 22 lines fill the type area
PAGE_NUMBER_BELOW_MM = 7.0  # 一字线上距版心下边缘 7 mm
RED = RGBColor(0xFF, 0x00, 0x00)
CELL_PADDING_MM = 1.0  # left and right, in every table cell
MASTHEAD_STYLE = "版头"
CAPTION_STYLE = "图题"

SECTION_BASICS = "一、热线运行基本情况"
SECTION_TYPES = "（一）交办工单话务类型"
SECTION_HOTSPOTS = "（二）交办工单热点问题"
SECTION_VISITS = "（三）回访情况"
SECTION_RETURNS = "（四）退单情况"
SECTION_SUPERVISION = "（五）督办情况"
SECTION_CHECKS = "二、省12345监管平台五率一度考核情况"
SECTION_SPOT_CHECKS = "（一）人工抽查回访情况"
SECTION_TEST_CALLS = "（二）热线服务拨测情况"
SECTION_DATA_MONITORING = "（三）热线数据监测情况"
SECTION_DATA_QUALITY = "数据质量说明"
SECTION_LATE = "补录情况"
SECTION_CHANGES = "各成员单位按期办结率、回访满意率较上月变化"
FIGURE_DAILY = "daily"
FIGURE_SATISFACTION = "satisfaction"
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


# --------------------------------------------------------------------------- text from events

# What an event supplies is free text: a test call's item, a data-monitoring indicator, a call's
# category, and the ``unit_id`` that names a unit the registry does not know. Each format hands
# its own function to :func:`_compose`, :func:`table_cells` and :func:`change_table`, which
# apply it to that text and to nothing else (the figures and the sentences are this module's).
EventText = Callable[[str], str]

# The complement of XML 1.0's ``Char``: what no part of a .docx or .xlsx package may hold.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# CommonMark lets a backslash make any ASCII punctuation literal, and every construct text could
# open starts with some: a heading (#), quote (>), list (- + * 1.), fence (` ~), a table cell's
# edge (|), emphasis (* _ ~), a link or image ([ ] ( ) !), raw HTML or an entity (< > &), an
# autolink (: @ .). Escaping all of it needs no list of contexts. Line breaks (whatever
# ``str.splitlines`` ends a line at) become spaces.
_MD_TEXT = {
    **{ord(c): "\\" + c for c in string.punctuation},
    **dict.fromkeys(map(ord, "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"), " "),
}


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 does not allow: C0 controls other than tab, line
    feed and carriage return, lone surrogates, U+FFFE and U+FFFF (for docx and xlsx).

    A NUL in a test call's item made python-docx refuse the whole Word bulletin ("All strings
    must be XML compatible", a 500); openpyxl raises IllegalCharacterError on the same text.
    The characters are dropped, not replaced: none of them shows anything to a reader.
    """
    return _NOT_XML.sub("", text)


def md_text(text: str) -> str:
    """``text`` as literal Markdown on one line: ASCII punctuation backslash-escaped, line breaks
    turned into spaces (in table cells as well: no ``<br>``, a name or an item has no lines to keep),
    the other control characters dropped as :func:`xml_text` drops them (an ESC would drive any
    terminal the file is shown in).

    An item ``# 伪造标题\\n\\n| x | y |`` forged a heading and a table row in the Markdown
    bulletin. Without a line break the text cannot start a line, so it opens no block (heading,
    list, quote, fence, table row); escaped, it opens no inline construct and ends no cell.
    """
    return xml_text(text.translate(_MD_TEXT))


# --------------------------------------------------------------------------- text


@dataclass(frozen=True)
class _Section:
    """A heading and its paragraphs; level 1 is 一、…, level 2 is （一）…."""

    heading: str
    level: int
    paragraphs: tuple[str, ...] = ()
    figure: str = ""  # a chart the Word file draws after the paragraphs (FIGURE_*)
    caption: str = ""


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


def _counted(counts: Mapping[str, int], escape: EventText, unit: str = "件") -> str:
    """``雨湖区人民政府119件、岳塘区人民政府43件`` in the given order, each name through ``escape``."""
    return "、".join(f"{escape(name)}{n}{unit}" for name, n in counts.items())


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


def _hotspots(bulletin: Bulletin, escape: EventText) -> str:
    _, month, _ = _period(bulletin)
    categories: list[dict[str, Any]] = bulletin.headline["top_categories_share_of_all_received_calls"]
    if not categories:
        return f"{month}月份没有已分类的来电。"
    parts = [
        f"{escape(c['category'])}{c['share']}" if c["share"] != DASH else f"{escape(c['category'])}{c['count']}件"
        for c in categories
    ]
    return (
        f"{month}月份热线受理量列前{_cn_number(len(categories))}位的大类（占来电总数的比例）为："
        + "、".join(parts)
        + "。"
    )


def _visits(bulletin: Bulletin, escape: EventText) -> tuple[str, ...]:
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
        f"回访满意率在80%以上（含80%）的单位有：{_names(map(escape, lists['at_or_above_80_percent']))}；"
        f"回访满意率低于50%的单位有：{_names(map(escape, lists['below_50_percent']))}。"
    )
    not_replied = f"成员单位未将办理情况答复当事人工单{nr['total']}件"
    if nr["top_units"]:
        not_replied += f"，其中{_counted(nr['top_units'], escape)}"
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


def _supervision(bulletin: Bulletin, escape: EventText) -> str:
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
            {u.name: u.phone_supervised + u.written_supervised for u in supervised}, escape
        )
    text += "。"
    # 约谈: the units whose supervised orders stayed unsatisfied after supervision.
    unsatisfied = bulletin.headline.get("unsatisfied_after_supervision") or {}
    if unsatisfied:
        text += (
            f"督办后市民仍不满意的工单涉及{len(unsatisfied)}个单位：{_counted(unsatisfied, escape)}，"
            "对多次督办办理成效仍不理想的，将约谈相关责任人。"
        )
    return text


def _spot_checks(bulletin: Bulletin, escape: EventText) -> str:
    """（一）: the province's revisits of our orders, units named by what went wrong."""
    _, month, _ = _period(bulletin)
    checks = bulletin.checks
    sampled = checks.total(mc.SPOT_CHECKED)
    if not sampled:
        return f"{month}月份，省平台未对我市热线工单进行人工抽查回访。"
    not_reached, unsatisfied = checks.total(mc.SPOT_NOT_REACHED), checks.total(mc.SPOT_UNSATISFIED)
    text = (
        f"{month}月份，省平台对我市随机抽取了{sampled}件热线工单进行回访，"
        f"有{not_reached}件未回访，{unsatisfied}个回访不满意。"
    )
    named = [
        f"{label}的" + "，".join(f"{escape(name)}{n}件" for name, n in checks.by_unit(m).items())
        for label, m in (("未回访", mc.SPOT_NOT_REACHED), ("回访不满意", mc.SPOT_UNSATISFIED))
        if checks.total(m)
    ]
    return text + ("其中，" + "；".join(named) + "。" if named else "")


def _test_calls(bulletin: Bulletin, escape: EventText) -> str:
    """（二）: the province's test calls, points lost by item."""
    _, month, _ = _period(bulletin)
    checks = bulletin.checks
    calls = checks.total(mc.TEST_CALLS)
    if not calls:
        return f"{month}月份省平台未对我市热线进行拨测。"
    items = checks.items(mc.TEST_CALL_POINTS)
    if not items:
        return f"{month}月份省平台对我市热线拨测{calls}次，未扣分。"
    return (
        f"{month}月份我市在省平台随机拨测中，{'、'.join(map(escape, checks.most_deducted(mc.TEST_CALL_POINTS)))}"
        f"扣分较多。本月省平台拨测{calls}次，共扣{points_text(checks.total_points(mc.TEST_CALL_POINTS))}分，其中"
        + "、".join(f"{escape(item)}扣{points_text(p)}分" for item, p in items.items())
        + "。"
    )


def _data_monitoring(bulletin: Bulletin, escape: EventText) -> str:
    """（三）: uploads the province found inaccurate, and the points they cost."""
    _, month, _ = _period(bulletin)
    checks = bulletin.checks
    flagged = checks.total(mc.UPLOADS_FLAGGED)
    if not flagged:
        return f"{month}月份我市热线未出现数据上传不准确现象。"
    cost = "、".join(f"{escape(item)}指标被扣{points_text(p)}分" for item, p in checks.items(mc.UPLOAD_POINTS).items())
    return f"{month}月份我市热线出现{flagged}次数据上传不准确现象，{cost}。"


def month_over_month(bulletin: Bulletin) -> str:
    """``与上月相比，按期办结率提升0.47个百分点，…。``; empty when no rate has last month's figure."""
    comparison = bulletin.comparison
    if comparison is None:
        return ""
    parts = [f"{c.metric.label}{c.text}" for c in comparison.headline if c.text]
    if not parts:
        return ""
    _, previous = (int(x) for x in comparison.previous_month.split("-"))
    return f"与{previous}月相比，" + "，".join(parts) + "。"


def _late(bulletin: Bulletin, escape: EventText) -> tuple[str, ...]:
    """补录: the previous month's events that arrived after its bulletin was issued, by unit."""
    late = bulletin.late
    if late is None:
        return ()
    year, month = (int(x) for x in late.month.split("-"))
    issued = f"{year}年{month}月通报（{late.issue.numbering}，{late.issue.date_text}）"
    if not late.units:
        return (f"{issued}签发后，未收到该月补录数据。",)
    head = (
        f"{issued}签发后，又收到{month}月份数据{late.events}条（已计入{month}月数据，"
        f"未在该期通报中体现），按单位列示如下："
    )
    lines = [f"{escape(u.name)}{u.events}条" + (f"（{u.counted()}）" if u.counts else "") for u in late.units]
    return head, "；".join(lines) + "。"


def _data_quality(bulletin: Bulletin) -> tuple[str, ...]:
    if not bulletin.data_quality:
        return ("本期未发现数据质量问题。",)
    return tuple(f"{i}. {note}" for i, note in enumerate(bulletin.data_quality, start=1))


def _compose(bulletin: Bulletin, escape: EventText) -> _Text:
    """The bulletin's prose, built once for every document format; what events wrote goes
    through the format's ``escape`` (:func:`xml_text`, :func:`md_text`, …)."""
    year, month, _ = _period(bulletin)
    table_title = _table_title(bulletin)
    changes = month_over_month(bulletin)
    late = _late(bulletin, escape)
    sections = (
        _Section(
            SECTION_BASICS,
            1,
            (_basics(bulletin), *((changes,) if changes else ())),
            FIGURE_DAILY,
            f"图1  {month}月每日{mc.DISPATCHED.label.removesuffix('数')}与{mc.OVERDUE.label.removesuffix('数')}工单"
            "（按交办日）",
        ),
        _Section(SECTION_TYPES, 2, (_order_types(bulletin),)),
        _Section(SECTION_HOTSPOTS, 2, (_hotspots(bulletin, escape),)),
        _Section(
            SECTION_VISITS,
            2,
            _visits(bulletin, escape),
            FIGURE_SATISFACTION,
            f"图2  {month}月各成员单位{mc.SATISFACTION_RATE.label}",
        ),
        _Section(SECTION_RETURNS, 2, (_returns(bulletin),)),
        _Section(SECTION_SUPERVISION, 2, (_supervision(bulletin, escape),)),
        _Section(SECTION_CHECKS, 1),
        _Section(SECTION_SPOT_CHECKS, 2, (_spot_checks(bulletin, escape),)),
        _Section(SECTION_TEST_CALLS, 2, (_test_calls(bulletin, escape),)),
        _Section(SECTION_DATA_MONITORING, 2, (_data_monitoring(bulletin, escape),)),
        *((_Section(SECTION_LATE, 1, late),) if late else ()),
        _Section(SECTION_DATA_QUALITY, 1, _data_quality(bulletin)),
    )
    return _Text(
        title=f"{year}年{month}月{CITY}12345热线工作情况通报",
        sections=sections,
        attachment_heading=f"附件：{table_title}",
        table_title=table_title,
        table_notes=TABLE_NOTES,
    )


def table_cells(bulletin: Bulletin, escape: EventText) -> list[list[str]]:
    """The attachment's rows as printed, in :data:`COLUMNS`' order, each unit's name through
    ``escape`` (a unit the registry does not know is named by the events' ``unit_id``)."""
    return [[escape(row[key]) if key == "unit" else row[key] for key, _ in COLUMNS] for row in bulletin.rows()]


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
    ws.cell(row=notes_row, column=1, value=TABLE_NOTES)
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
        ("回访满意率80%以上（含）的单位", _names(map(xml_text, h["satisfaction_lists"]["at_or_above_80_percent"])), ""),
        ("回访满意率低于50%的单位", _names(map(xml_text, h["satisfaction_lists"]["below_50_percent"])), ""),
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


def change_table(comparison: Comparison, escape: EventText) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-unit month-over-month table (units, then 总计), shared by every
    format; each unit's name through the format's ``escape``."""
    header = [mc.UNIT_LABEL]
    for m in UNIT_RATES:
        header += [f"{m.label}（本月）", f"{m.label}（上月）", f"{m.label}较上月"]
    rows = []
    for unit in (*comparison.units, comparison.total):
        row = [escape(unit.name)]
        for m in UNIT_RATES:
            change = unit.of(m)
            row += [change.current_text, change.previous_text, change.text or DASH]
        rows.append(row)
    return header, rows


def _fonts(element: Any, font: str) -> None:
    """Name ``font`` for every script of a style's or run's ``rPr`` (Word reads East Asian text
    from ``w:eastAsia``, which python-docx's ``font.name`` leaves alone); drop theme fonts,
    which would take precedence over explicit names."""
    rpr = element.get_or_add_rPr()
    fonts = rpr.get_or_add_rFonts()
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(attr), None)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), font)


def _cjk_style(style: ParagraphStyle, font: str, size: float, bold: bool = False) -> None:
    """A style in one of the standard's fonts and sizes, black, without the template's spacing."""
    style.font.size = Pt(size)
    style.font.bold = bold
    style.font.italic = False
    style.font.color.rgb = RGBColor(0, 0, 0)
    _fonts(style.element, font)
    rpr = style.element.get_or_add_rPr()
    lang = rpr.find(qn("w:lang"))
    if lang is None:
        lang = OxmlElement("w:lang")
        rpr.append(lang)
    lang.set(qn("w:eastAsia"), "zh-CN")
    fmt = style.paragraph_format
    fmt.space_before = fmt.space_after = Pt(0)
    fmt.line_spacing = LINE_PITCH
    # The template's headings draw a border under the title; the standard has none.
    ppr = style.element.pPr
    if ppr is not None:
        for border in ppr.findall(qn("w:pBdr")):
            ppr.remove(border)


def _run(paragraph: Paragraph, text: str, font: str, size: float, bold: bool = False, colour: RGBColor | None = None):  # type: ignore[no-untyped-def]
    run = paragraph.add_run(text)
    run.font.size = Pt(size)
    run.bold = bold
    if colour is not None:
        run.font.color.rgb = colour
    _fonts(run._r, font)
    return run


def _single(paragraph: Paragraph) -> None:
    """Single line spacing: exact spacing would clip large type and pictures."""
    paragraph.paragraph_format.line_spacing = 1.0
    paragraph.paragraph_format.space_before = paragraph.paragraph_format.space_after = Pt(0)


def _bottom_border(paragraph: Paragraph, colour: str, eighths: int) -> None:
    """A line under the paragraph across the type area (the masthead's red separator)."""
    ppr = paragraph._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    bottom.set(qn("w:val"), "single")
    bottom.set(qn("w:sz"), str(eighths))
    bottom.set(qn("w:space"), "4")
    bottom.set(qn("w:color"), colour)
    borders.append(bottom)
    # pBdr comes before spacing/ind/jc in CT_PPr's sequence.
    anchor = next((c for c in ppr if c.tag in {qn(t) for t in _PPR_AFTER_BORDER}), None)
    if anchor is not None:
        anchor.addprevious(borders)
    else:
        ppr.append(borders)


_PPR_AFTER_BORDER = (
    "w:shd",
    "w:tabs",
    "w:suppressAutoHyphens",
    "w:kinsoku",
    "w:wordWrap",
    "w:overflowPunct",
    "w:topLinePunct",
    "w:autoSpaceDE",
    "w:autoSpaceDN",
    "w:bidi",
    "w:adjustRightInd",
    "w:snapToGrid",
    "w:spacing",
    "w:ind",
    "w:contextualSpacing",
    "w:mirrorIndents",
    "w:suppressOverlap",
    "w:jc",
    "w:textDirection",
    "w:textAlignment",
    "w:textboxTightWrap",
    "w:outlineLvl",
    "w:divId",
    "w:cnfStyle",
    "w:rPr",
    "w:sectPr",
    "w:pPrChange",
)


def _masthead(doc: DocxDocument, bulletin: Bulletin) -> None:
    """版头: 市 长 热 线 in red, 第N期（总第T期）, the office and the date, a red line under them."""
    issue = bulletin.issue
    numbering = issue.numbering if issue else "第　期（总第　期）"
    when = issue.date_text if issue else "　　年　月　日"
    title = doc.add_paragraph(style=MASTHEAD_STYLE)
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _single(title)
    _run(title, MASTHEAD, FONT_TITLE, SIZE_1, colour=RED)
    number = doc.add_paragraph(style=MASTHEAD_STYLE)
    number.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _single(number)
    number.paragraph_format.space_before = Pt(6)
    _run(number, numbering, FONT_BODY, SIZE_3)
    office = doc.add_paragraph(style=MASTHEAD_STYLE)
    _single(office)
    office.paragraph_format.tab_stops.add_tab_stop(Mm(AREA_W_MM), WD_TAB_ALIGNMENT.RIGHT)
    _run(office, f"{OFFICE}\t{when}", FONT_BODY, SIZE_3)
    _bottom_border(office, "FF0000", 12)


def _page_number(footer_paragraph: Paragraph, align_right: bool) -> None:
    """``— 1 —`` in 4号宋体, one character in from the outer edge (GB/T 9704-2012 7.5)."""
    p = footer_paragraph
    p.alignment = WD_ALIGN_PARAGRAPH.RIGHT if align_right else WD_ALIGN_PARAGRAPH.LEFT
    indent = Pt(SIZE_4)
    if align_right:
        p.paragraph_format.right_indent = indent
    else:
        p.paragraph_format.left_indent = indent
    _single(p)
    _run(p, "— ", FONT_PAGE_NUMBER, SIZE_4)
    for kind, text in (("begin", None), (None, " PAGE "), ("separate", None), (None, "1"), ("end", None)):
        run = _run(p, "", FONT_PAGE_NUMBER, SIZE_4)
        if kind is not None:
            char = OxmlElement("w:fldChar")
            char.set(qn("w:fldCharType"), kind)
            run._r.append(char)
        elif text == " PAGE ":
            instr = OxmlElement("w:instrText")
            instr.set(qn("xml:space"), "preserve")
            instr.text = text
            run._r.append(instr)
        else:
            run.text = text or ""
    _run(p, " —", FONT_PAGE_NUMBER, SIZE_4)


def _page_numbers(section: Section, odd_right: bool) -> None:
    """Odd pages and even pages on opposite sides (odd right on portrait pages, left on landscape tables)."""
    section.footer.is_linked_to_previous = False
    section.even_page_footer.is_linked_to_previous = False
    _page_number(section.footer.paragraphs[0], align_right=odd_right)
    _page_number(section.even_page_footer.paragraphs[0], align_right=not odd_right)


def _footer_distance() -> Length:
    """From the page's bottom edge to the page number line: 7 mm under the type area."""
    bottom = PAGE_H_MM - TOP_MM - AREA_H_MM
    line_mm = SIZE_4 * 1.3 / 72 * 25.4
    return Mm(bottom - PAGE_NUMBER_BELOW_MM - line_mm)


def _portrait(section: Section) -> None:
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(PAGE_W_MM), Mm(PAGE_H_MM)
    section.top_margin, section.left_margin = Mm(TOP_MM), Mm(LEFT_MM)
    section.right_margin = Mm(PAGE_W_MM - LEFT_MM - AREA_W_MM)
    section.bottom_margin = Mm(PAGE_H_MM - TOP_MM - AREA_H_MM)
    section.footer_distance = _footer_distance()


def _landscape(section: Section) -> None:
    """The portrait page turned: binding edge on top, the same 225 x 156 mm type area lying down."""
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Mm(PAGE_H_MM), Mm(PAGE_W_MM)
    section.top_margin, section.bottom_margin = Mm(LEFT_MM), Mm(PAGE_W_MM - LEFT_MM - AREA_W_MM)
    section.left_margin, section.right_margin = Mm(TOP_MM), Mm(PAGE_H_MM - TOP_MM - AREA_H_MM)
    section.footer_distance = Mm(12)


def text_width_pt(text: str, size: float) -> float:
    """A generous estimate of a line's width: CJK and full-width glyphs 1 em, ``%`` 0.85 em,
    other half-width glyphs 0.62 em (宋体 draws digits 0.5 em, WenQuanYi Zen Hei 0.6 em)."""
    em = sum(1.0 if ord(ch) > 0x2E80 else 0.85 if ch == "%" else 0.62 for ch in text)
    return em * size


def column_widths(header: list[str], rows: list[list[str]], available_pt: float) -> tuple[float, list[float]] | None:
    """The largest of :data:`TABLE_SIZES` at which every body cell fits on one line, and the widths.

    Each column gets its widest cell (plus padding) at least; what the type area has left goes to
    the columns whose header would otherwise wrap the most. None when even the smallest size
    does not fit.
    """
    pad = 2 * CELL_PADDING_MM / 25.4 * 72 + 3
    for size in TABLE_SIZES:
        body = [max(text_width_pt(r[c], size) for r in rows) + pad for c in range(len(header))]
        if sum(body) > available_pt:
            continue
        heads = [text_width_pt(h, size) + pad for h in header]
        want = [max(b, h / 3) for b, h in zip(body, heads, strict=True)]  # a header may take three lines
        spare = available_pt - sum(want)
        if spare >= 0:
            return size, [w + spare / len(want) for w in want]
        spare = available_pt - sum(body)
        short = [w - b for w, b in zip(want, body, strict=True)]
        return size, [b + spare * s / sum(short) for b, s in zip(body, short, strict=True)]
    return None


def _repeat_header(table: Table) -> None:
    """Repeat the header row on every page, as the printed attachment does; no row splits across pages."""
    tr_pr = table.rows[0]._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    tr_pr.append(header)
    for row in table.rows:
        cant_split = OxmlElement("w:cantSplit")
        row._tr.get_or_add_trPr().append(cant_split)


def _cell_margins(table: Table) -> None:
    """The padding the widths were computed with, stated on the table instead of left to the reader."""
    tbl_pr = table._tbl.tblPr
    margins = OxmlElement("w:tblCellMar")
    for side in ("left", "right"):
        m = OxmlElement(f"w:{side}")
        m.set(qn("w:w"), str(round(CELL_PADDING_MM / 25.4 * 1440)))
        m.set(qn("w:type"), "dxa")
        margins.append(m)
    look = tbl_pr.find(qn("w:tblLook"))
    if look is not None:
        look.addprevious(margins)
    else:
        tbl_pr.append(margins)


def _no_wrap(cell: Any) -> None:
    tc_pr = cell._tc.get_or_add_tcPr()
    tc_pr.append(OxmlElement("w:noWrap"))


def _grid_table(doc: DocxDocument, header: list[str], rows: list[list[str]], available_mm: float) -> Table:
    """A fixed-layout table, widths from its widest cells, body cells on one line, last row bold."""
    fitted = column_widths(header, rows, available_mm / 25.4 * 72)
    if fitted is None:
        smallest = TABLE_SIZES[-1]
        raise ValueError(f"a table of {len(header)} columns does not fit {available_mm} mm even at {smallest} pt")
    size, widths_pt = fitted
    widths = [Pt(w) for w in widths_pt]
    table: Table = doc.add_table(rows=1 + len(rows), cols=len(header))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    _cell_margins(table)
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width

    def fill(r: int, values: list[str], bold: bool) -> None:
        # Cells straight from the row's XML: table.cell() rebuilds the whole grid on every call.
        cells = [_Cell(tc, table) for tc in table.rows[r]._tr.tc_lst]
        for c, text in enumerate(values):
            cell = cells[c]
            cell.width = widths[c]
            if r:
                _no_wrap(cell)
            cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER
            paragraph = cell.paragraphs[0]
            _single(paragraph)
            paragraph.paragraph_format.first_line_indent = Pt(0)
            paragraph.alignment = WD_ALIGN_PARAGRAPH.LEFT if c == 0 and r else WD_ALIGN_PARAGRAPH.CENTER
            _run(paragraph, text, FONT_BODY, size, bold=bold)

    fill(0, header, bold=True)
    for r, row in enumerate(rows, start=1):
        fill(r, row, bold=r == len(rows))
    _repeat_header(table)
    return table


def _figure(doc: DocxDocument, png: bytes | None, caption: str) -> None:
    """A chart across the type area with its caption under it (none when there is nothing to draw)."""
    if png is None:
        return
    picture = doc.add_paragraph()
    picture.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _single(picture)
    picture.paragraph_format.first_line_indent = Pt(0)
    picture.add_run().add_picture(io.BytesIO(png), width=Mm(AREA_W_MM))
    below = doc.add_paragraph(style=CAPTION_STYLE)
    below.alignment = WD_ALIGN_PARAGRAPH.CENTER
    below.paragraph_format.first_line_indent = Pt(0)
    _run(below, caption, FONT_BODY, SIZE_4)


def _charts(bulletin: Bulletin) -> dict[str, bytes | None]:
    from hotline.reports import charts

    return {
        FIGURE_DAILY: charts.daily_png(bulletin.daily) if bulletin.daily is not None else None,
        FIGURE_SATISFACTION: charts.satisfaction_png(bulletin) if bulletin.daily is not None else None,
    }


def _font_table(doc: DocxDocument) -> None:
    """Offer Word a substitute for each of the standard's fonts it may not have (``w:altName``)."""
    part = next((p for p in doc.part.package.iter_parts() if str(p.partname) == "/word/fontTable.xml"), None)
    if part is None:
        return
    ns = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    fonts = "".join(
        f'<w:font w:name="{name}"><w:altName w:val="{alt}"/><w:charset w:val="86"/>'
        f'<w:family w:val="{"roman" if alt in ("宋体", "仿宋") else "modern"}"/><w:pitch w:val="variable"/></w:font>'
        for name, alt in FONT_SUBSTITUTES.items()
    )
    blob = part.blob.decode("utf-8")
    if "</w:fonts>" in blob and ns.split("=")[0] in blob:
        part._blob = blob.replace("</w:fonts>", fonts + "</w:fonts>").encode("utf-8")  # type: ignore[attr-defined]


def edition_date(bulletin: Bulletin) -> date:
    """The document's date: the issue's, or the month's last day for a draft (never the clock)."""
    if bulletin.issue is not None:
        return bulletin.issue.date
    year, month, last = _period(bulletin)
    return date(year, month, last)


def stable_zip(data: bytes, when: date) -> bytes:
    """The same package with every entry dated ``when`` and its core properties' dates set to it.

    Zip writers stamp entries with the clock, and openpyxl sets ``modified`` at save: without
    this, two renderings of the same figures would differ in bytes.
    """
    stamp = f"{when.isoformat()}T00:00:00Z"
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = body.decode("utf-8")
                for tag in ("dcterms:created", "dcterms:modified"):
                    text = re.sub(rf"(<{tag}[^>]*>)[^<]*(</{tag}>)", rf"\g<1>{stamp}\g<2>", text)
                body = text.encode("utf-8")
            entry = zipfile.ZipInfo(info.filename, date_time=(when.year, when.month, when.day, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = info.external_attr
            dst.writestr(entry, body)
    return out.getvalue()


def _styles(doc: DocxDocument) -> None:
    _cjk_style(doc.styles["Normal"], FONT_BODY, SIZE_3)
    _cjk_style(doc.styles["Title"], FONT_TITLE, SIZE_2)
    _cjk_style(doc.styles["Heading 1"], FONT_HEADING_1, SIZE_3)
    _cjk_style(doc.styles["Heading 2"], FONT_HEADING_2, SIZE_3)
    for name in ("Heading 1", "Heading 2"):
        doc.styles[name].paragraph_format.first_line_indent = Pt(2 * SIZE_3)
    for name in (MASTHEAD_STYLE, CAPTION_STYLE):
        style = doc.styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
        style.base_style = doc.styles["Normal"]
    doc.styles["Title"].paragraph_format.line_spacing = 1.0
    doc.styles["Title"].paragraph_format.space_before = Pt(SIZE_3)
    doc.styles["Title"].paragraph_format.space_after = Pt(SIZE_3)


def _properties(doc: DocxDocument, bulletin: Bulletin, title: str) -> None:
    when = edition_date(bulletin)
    props = doc.core_properties
    props.title = title
    props.language = "zh-CN"
    props.author = props.last_modified_by = OFFICE
    props.revision = 1
    props.created = props.modified = datetime(when.year, when.month, when.day)


def to_docx(bulletin: Bulletin) -> bytes:
    """The whole bulletin in Word, laid out after GB/T 9704-2012: masthead and text on A4
    portrait, charts in the text, the attachment (and the month-over-month table) on A4 landscape."""
    text = _compose(bulletin, xml_text)
    doc = Document()
    _styles(doc)
    _properties(doc, bulletin, text.title)
    _font_table(doc)
    doc.settings.odd_and_even_pages_header_footer = True
    body = doc.sections[0]
    _portrait(body)
    _page_numbers(body, odd_right=True)

    # The template's empty first paragraph is where the masthead starts.
    first = doc.paragraphs[0]._p if doc.paragraphs else None
    if first is not None:
        first.getparent().remove(first)
    _masthead(doc, bulletin)
    doc.add_heading(text.title, level=0).alignment = WD_ALIGN_PARAGRAPH.CENTER
    charts = _charts(bulletin)
    for section in text.sections:
        doc.add_heading(section.heading, level=section.level)
        for paragraph in section.paragraphs:
            p = doc.add_paragraph(paragraph)
            p.paragraph_format.first_line_indent = Pt(2 * SIZE_3)
        if section.figure:
            _figure(doc, charts.get(section.figure), section.caption)
    doc.add_paragraph(text.attachment_heading).paragraph_format.first_line_indent = Pt(2 * SIZE_3)

    annex = doc.add_section(WD_SECTION.NEW_PAGE)
    _landscape(annex)
    _page_numbers(annex, odd_right=False)
    label = doc.add_paragraph()
    _run(label, "附件", FONT_HEADING_1, SIZE_3)
    heading = doc.add_paragraph()
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _single(heading)
    _run(heading, text.table_title, FONT_TITLE, SIZE_SMALL_2)
    _grid_table(doc, [label for _, label in COLUMNS], table_cells(bulletin, xml_text), AREA_H_MM)
    notes = doc.add_paragraph()
    _single(notes)
    _run(notes, text.table_notes, FONT_BODY, 10.5)
    if bulletin.comparison is not None and bulletin.comparison.has_previous:
        changes = doc.add_paragraph()
        changes.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _single(changes)
        changes.paragraph_format.space_before = Pt(SIZE_3)
        changes.paragraph_format.page_break_before = True
        _run(changes, SECTION_CHANGES, FONT_TITLE, SIZE_SMALL_2)
        _grid_table(doc, *change_table(bulletin.comparison, xml_text), AREA_H_MM)

    out = io.BytesIO()
    doc.save(out)
    return stable_zip(out.getvalue(), edition_date(bulletin))


# --------------------------------------------------------------------------- markdown


def _md_table(bulletin: Bulletin) -> list[str]:
    """The attachment as a pipe table; unit names through :func:`md_text`, which escapes ``|``."""
    header = [label for _, label in COLUMNS]
    align = [":---" if key == "unit" else "---:" for key, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in table_cells(bulletin, md_text)]
    return lines


def to_markdown(bulletin: Bulletin) -> bytes:
    """The whole bulletin as Markdown: # title, ## 一/数据质量/附件, ### （一）–（五）, a pipe table."""
    text = _compose(bulletin, md_text)
    lines = [f"# {text.title}", ""]
    for section in text.sections:
        lines += ["#" * (section.level + 1) + f" {section.heading}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
    lines += [f"## {text.attachment_heading}", "", *_md_table(bulletin), "", text.table_notes, ""]
    if bulletin.comparison is not None and bulletin.comparison.has_previous:
        header, rows = change_table(bulletin.comparison, md_text)
        lines += [f"## {SECTION_CHANGES}", "", "| " + " | ".join(header) + " |"]
        lines.append("| " + " | ".join([":---"] + ["---:"] * (len(header) - 1)) + " |")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines).encode("utf-8")


def prose(bulletin: Bulletin, escape: EventText) -> str:
    """The bulletin's sections as plain text, for the terminal (the table follows it there);
    what events wrote goes through ``escape``."""
    text = _compose(bulletin, escape)
    lines = [text.title, ""]
    for section in text.sections:
        lines += [section.heading, *(f"    {p}" for p in section.paragraphs), ""]
    lines.append(text.attachment_heading)
    return "\n".join(lines)
