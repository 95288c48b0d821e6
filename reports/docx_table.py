"""Word tables that fit the type area with every figure on one line.

The attachment has 16 columns. Left to Word or LibreOffice, its widths, and so where a rate like
``99.53%`` wraps, would depend on the reader's fonts. Here the widths are computed from a generous
estimate of each cell's width, the largest type size at which every body cell fits is chosen, and
the table is laid out fixed, with its padding, header repetition and no-wrap stated in the file.
The month-over-month table is laid out the same way.
"""

from __future__ import annotations

from docx.document import Document as DocxDocument
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt
from docx.table import Table, _Cell

from hotline.reports.docx_style import FONT_BODY, single_spaced, styled_run

TABLE_SIZES = (10.5, 10.0, 9.0, 8.0, 7.5)  # 五号 down: the largest at which the table fits
CELL_PADDING_MM = 1.0  # left and right, in every table cell


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


def _no_wrap(cell: _Cell) -> None:
    tc_pr = cell._tc.get_or_add_tcPr()
    tc_pr.append(OxmlElement("w:noWrap"))


def grid_table(doc: DocxDocument, header: list[str], rows: list[list[str]], available_mm: float) -> Table:
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
            single_spaced(paragraph)
            paragraph.paragraph_format.first_line_indent = Pt(0)
            paragraph.alignment = WD_ALIGN_PARAGRAPH.LEFT if c == 0 and r else WD_ALIGN_PARAGRAPH.CENTER
            styled_run(paragraph, text, FONT_BODY, size, bold=bold)

    fill(0, header, bold=True)
    for r, row in enumerate(rows, start=1):
        fill(r, row, bold=r == len(rows))
    _repeat_header(table)
    return table
