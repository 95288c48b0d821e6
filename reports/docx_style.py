"""GB/T 9704-2012 (党政机关公文格式) in python-docx terms: the standard's type, page and type area,
and the helpers that put them on a Word style or run.

Both the bulletin's pages (:mod:`hotline.reports.docx`) and its tables
(:mod:`hotline.reports.docx_table`) set type the same way; the measures and the few XML details
python-docx does not cover (East Asian font names, theme fonts, paragraph borders) live here once.
The fonts are named as the standard names them; a machine without them substitutes (Word by the
font table's ``altName``, LibreOffice by its replacement table and fontconfig: on a Linux box with
only WenQuanYi Zen Hei, that one).
"""

from __future__ import annotations

from typing import Any

from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt, RGBColor
from docx.styles.style import ParagraphStyle
from docx.text.paragraph import Paragraph
from docx.text.run import Run

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
# A4 and the type area: 156 x 225 mm, 22 lines of 28 characters of 3号.
PAGE_W_MM, PAGE_H_MM = 210.0, 297.0
TOP_MM, LEFT_MM, AREA_W_MM, AREA_H_MM = 37.0, 28.0, 156.0, 225.0
LINES_PER_PAGE = 22
LINE_PITCH = Pt(AREA_H_MM / 25.4 * 72 / LINES_PER_PAGE)  # exact spacing: 22 lines fill the type area
PAGE_NUMBER_BELOW_MM = 7.0  # 一字线上距版心下边缘 7 mm
RED = RGBColor(0xFF, 0x00, 0x00)
MASTHEAD_STYLE = "版头"
CAPTION_STYLE = "图题"


def set_fonts(element: Any, font: str) -> None:
    """Name ``font`` for every script of a style's or run's ``rPr`` (Word reads East Asian text
    from ``w:eastAsia``, which python-docx's ``font.name`` leaves alone); drop theme fonts,
    which would take precedence over explicit names."""
    rpr = element.get_or_add_rPr()
    fonts = rpr.get_or_add_rFonts()
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(attr), None)
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), font)


def cjk_style(style: ParagraphStyle, font: str, size: float, bold: bool = False) -> None:
    """A style in one of the standard's fonts and sizes, black, without the template's spacing."""
    style.font.size = Pt(size)
    style.font.bold = bold
    style.font.italic = False
    style.font.color.rgb = RGBColor(0, 0, 0)
    set_fonts(style.element, font)
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


def styled_run(
    paragraph: Paragraph, text: str, font: str, size: float, bold: bool = False, colour: RGBColor | None = None
) -> Run:
    """A run of ``text`` in ``font`` at ``size`` points, for every script (see :func:`set_fonts`)."""
    run = paragraph.add_run(text)
    run.font.size = Pt(size)
    run.bold = bold
    if colour is not None:
        run.font.color.rgb = colour
    set_fonts(run._r, font)
    return run


def single_spaced(paragraph: Paragraph) -> None:
    """Single line spacing: exact spacing would clip large type and pictures."""
    paragraph.paragraph_format.line_spacing = 1.0
    paragraph.paragraph_format.space_before = paragraph.paragraph_format.space_after = Pt(0)


def bottom_border(paragraph: Paragraph, colour: str, eighths: int) -> None:
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
