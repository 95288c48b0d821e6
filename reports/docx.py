"""The whole bulletin as a Word file, laid out as the office issues it.

The layout follows GB/T 9704-2012 (党政机关公文格式): the masthead (the office profile's, in red, the
issuing office, 第N期（总第T期）, the date, a red line), the standard's type (title 2号方正小标宋简体,
body 3号仿宋_GB2312, headings 3号黑体 and 楷体_GB2312, page numbers 4号宋体 as ``— 1 —``), its
margins (top 37 mm, left 28 mm, a 156 × 225 mm type area), the charts in the text and the
attachment table on a landscape page with fixed column widths and no wrapping inside a figure.
The text is :func:`hotline.reports.prose.compose`'s, the type
:mod:`hotline.reports.docx_style`'s, the tables :mod:`hotline.reports.docx_table`'s.

The file is deterministic: its dates are the issue date (or the month's last day for a
draft) and its zip entries carry that date, so an issue renders to the same bytes again.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date, datetime

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_TAB_ALIGNMENT
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.section import Section
from docx.shared import Length, Mm, Pt
from docx.text.paragraph import Paragraph

from hotline.reports.bulletin import COLUMNS, Bulletin
from hotline.reports.docx_style import (
    AREA_H_MM,
    AREA_W_MM,
    CAPTION_STYLE,
    FONT_BODY,
    FONT_HEADING_1,
    FONT_HEADING_2,
    FONT_PAGE_NUMBER,
    FONT_SUBSTITUTES,
    FONT_TITLE,
    LEFT_MM,
    MASTHEAD_STYLE,
    PAGE_H_MM,
    PAGE_NUMBER_BELOW_MM,
    PAGE_W_MM,
    RED,
    SIZE_1,
    SIZE_2,
    SIZE_3,
    SIZE_4,
    SIZE_SMALL_2,
    TOP_MM,
    bottom_border,
    cjk_style,
    single_spaced,
    styled_run,
)
from hotline.reports.docx_table import grid_table
from hotline.reports.escaping import xml_text
from hotline.reports.prose import (
    FIGURE_DAILY,
    FIGURE_SATISFACTION,
    change_table,
    change_title,
    compose,
    period,
    table_cells,
)


def _masthead(doc: DocxDocument, bulletin: Bulletin) -> None:
    """版头: the office profile's masthead in red, 第N期（总第T期）, the office and the date, a red line under them."""
    issue = bulletin.issue
    numbering = issue.numbering if issue else "第　期（总第　期）"
    when = issue.date_text if issue else "　　年　月　日"
    title = doc.add_paragraph(style=MASTHEAD_STYLE)
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    single_spaced(title)
    styled_run(title, bulletin.office.names.masthead, FONT_TITLE, SIZE_1, colour=RED)
    number = doc.add_paragraph(style=MASTHEAD_STYLE)
    number.alignment = WD_ALIGN_PARAGRAPH.CENTER
    single_spaced(number)
    number.paragraph_format.space_before = Pt(6)
    styled_run(number, numbering, FONT_BODY, SIZE_3)
    office = doc.add_paragraph(style=MASTHEAD_STYLE)
    single_spaced(office)
    office.paragraph_format.tab_stops.add_tab_stop(Mm(AREA_W_MM), WD_TAB_ALIGNMENT.RIGHT)
    styled_run(office, f"{bulletin.office.names.office}\t{when}", FONT_BODY, SIZE_3)
    bottom_border(office, "FF0000", 12)


def _page_number(footer_paragraph: Paragraph, align_right: bool) -> None:
    """``— 1 —`` in 4号宋体, one character in from the outer edge (GB/T 9704-2012 7.5)."""
    p = footer_paragraph
    p.alignment = WD_ALIGN_PARAGRAPH.RIGHT if align_right else WD_ALIGN_PARAGRAPH.LEFT
    indent = Pt(SIZE_4)
    if align_right:
        p.paragraph_format.right_indent = indent
    else:
        p.paragraph_format.left_indent = indent
    single_spaced(p)
    styled_run(p, "— ", FONT_PAGE_NUMBER, SIZE_4)
    for kind, text in (("begin", None), (None, " PAGE "), ("separate", None), (None, "1"), ("end", None)):
        run = styled_run(p, "", FONT_PAGE_NUMBER, SIZE_4)
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
    styled_run(p, " —", FONT_PAGE_NUMBER, SIZE_4)


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


def _figure(doc: DocxDocument, png: bytes | None, caption: str) -> None:
    """A chart across the type area with its caption under it (none when there is nothing to draw)."""
    if png is None:
        return
    picture = doc.add_paragraph()
    picture.alignment = WD_ALIGN_PARAGRAPH.CENTER
    single_spaced(picture)
    picture.paragraph_format.first_line_indent = Pt(0)
    picture.add_run().add_picture(io.BytesIO(png), width=Mm(AREA_W_MM))
    below = doc.add_paragraph(style=CAPTION_STYLE)
    below.alignment = WD_ALIGN_PARAGRAPH.CENTER
    below.paragraph_format.first_line_indent = Pt(0)
    styled_run(below, caption, FONT_BODY, SIZE_4)


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
    """The document's date: the issue's, or the period's last day for a draft (never the clock)."""
    if bulletin.issue is not None:
        return bulletin.issue.date
    return period(bulletin).end


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
    cjk_style(doc.styles["Normal"], FONT_BODY, SIZE_3)
    cjk_style(doc.styles["Title"], FONT_TITLE, SIZE_2)
    cjk_style(doc.styles["Heading 1"], FONT_HEADING_1, SIZE_3)
    cjk_style(doc.styles["Heading 2"], FONT_HEADING_2, SIZE_3)
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
    props.author = props.last_modified_by = bulletin.office.names.office
    props.revision = 1
    props.created = props.modified = datetime(when.year, when.month, when.day)


def to_docx(bulletin: Bulletin) -> bytes:
    """The whole bulletin in Word, laid out after GB/T 9704-2012: masthead and text on A4
    portrait, charts in the text, the attachment (and the month-over-month table) on A4 landscape."""
    text = compose(bulletin, xml_text)
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
    styled_run(label, "附件", FONT_HEADING_1, SIZE_3)
    heading = doc.add_paragraph()
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    single_spaced(heading)
    styled_run(heading, text.table_title, FONT_TITLE, SIZE_SMALL_2)
    grid_table(doc, [label for _, label in COLUMNS], table_cells(bulletin, xml_text), AREA_H_MM)
    notes = doc.add_paragraph()
    single_spaced(notes)
    styled_run(notes, text.table_notes, FONT_BODY, 10.5)
    for comparison in bulletin.comparisons:
        changes = doc.add_paragraph()
        changes.alignment = WD_ALIGN_PARAGRAPH.CENTER
        single_spaced(changes)
        changes.paragraph_format.space_before = Pt(SIZE_3)
        changes.paragraph_format.page_break_before = True
        styled_run(changes, change_title(comparison), FONT_TITLE, SIZE_SMALL_2)
        grid_table(doc, *change_table(comparison, xml_text), AREA_H_MM)

    out = io.BytesIO()
    doc.save(out)
    return stable_zip(out.getvalue(), edition_date(bulletin))
