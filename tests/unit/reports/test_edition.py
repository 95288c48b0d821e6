"""The office's edition in every format: month over month, 补录, the issue, the Word layout and charts.

Bulletins come from canned query rows (``test_documents.FakeDB``); the edition's parts are
attached as ``hotline.reports.edition.assemble`` attaches them. The Word checks are structural
(python-docx), so they need no office suite; one optional check converts to PDF with LibreOffice.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Mm, Pt

from hotline.reports import charts, docx_style, docx_table, prose, queries
from hotline.reports.bulletin import COLUMNS, Bulletin, build_bulletin
from hotline.reports.charts import DailySeries
from hotline.reports.compare import RATES, UNIT_RATES, Change, compare, half_up_hundredths, previous_month
from hotline.reports.edition import assemble
from hotline.reports.issued import Issue, LateData, LateUnit, differences
from hotline.reports.periods import parse
from hotline.reports.render import render, to_csv
from hotline.schemas import metrics as mc
from tests.unit.reports.test_documents import CANNED, FakeDB

ISSUE = Issue(12, 113, date(2019, 12, 26))


def _previous_rows() -> dict[str, Any]:
    """October: other counts for the same units, so every rate moves (or stays, for one)."""
    canned = copy.deepcopy(CANNED)
    orders = canned[queries.ORDER_COLUMNS]
    orders[0].update(dispatched=16, completed_on_time=15, completed_late=1, overdue=1)  # yuhu 93.75%
    orders[2].update(dispatched=10, completed_on_time=10)  # transport 100.00%, unchanged
    events = canned[queries.EVENT_COLUMNS]
    events[0].update(visits=8, visits_satisfied=5)  # yuhu 62.50%
    events[1].update(visits=3, visits_satisfied=1)  # transport 33.33%
    canned[queries.CALLS] = [
        {"calls_received": 90, "calls_answered": 89, "calls_valid": 70, "calls_answered_directly": 30,
         "calls_resolved_online": 50}
    ]  # fmt: skip
    return canned


@pytest.fixture(scope="module")
def edition() -> Bulletin:
    bulletin = build_bulletin(FakeDB(CANNED), "2019-11")
    before = build_bulletin(FakeDB(_previous_rows()), "2019-10", printed={})
    bulletin.comparison = compare(bulletin, before)
    november = parse("2019-11")
    days = tuple(november.start + timedelta(days=n) for n in range(november.days))
    bulletin.daily = DailySeries("2019-11", days, tuple(d.day % 7 for d in days), tuple(d.day % 2 for d in days))
    bulletin.late = LateData(
        "2019-10",
        Issue(11, 112, date(2019, 11, 25)),
        datetime(2019, 11, 25, 9, 0),
        (LateUnit("yuhu", "雨湖区人民政府", 3, {mc.VISITS.name: 2, mc.RETURNED.name: 1}),),
    )
    bulletin.issue = ISSUE
    return bulletin


def _points(now: tuple[int, int], before: tuple[int, int]) -> str:
    """The change computed apart from the module: Decimal at 50 digits, quantized half up."""
    with localcontext() as ctx:
        ctx.prec = 50
        value = Decimal(now[0] * 100) / now[1] - Decimal(before[0] * 100) / before[1]
        return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------- month over month


def test_changes_are_exact_half_up_differences_of_the_fractions(edition: Bulletin) -> None:
    comparison = edition.comparison
    assert comparison is not None and comparison.previous_month == "2019-10" == previous_month("2019-11")
    by_name = {c.metric.name: c for c in comparison.headline}
    assert set(by_name) == {m.name for m in RATES}  # every catalogue rate, derived, none listed by hand
    assert str(by_name[mc.CONNECTION_RATE.name].points) == _points((97, 100), (89, 90))
    assert str(by_name[mc.ONLINE_RESOLUTION_RATE.name].points) == _points((60, 80), (50, 70))
    yuhu = comparison.units[0]
    assert yuhu.name == "雨湖区人民政府"
    assert str(yuhu.of(mc.ON_TIME_RATE).points) == _points((18, 20), (15, 16))
    assert yuhu.of(mc.ON_TIME_RATE).text == "下降3.75个百分点"
    assert str(yuhu.of(mc.SATISFACTION_RATE).points) == _points((4, 10), (5, 8))
    transport = next(u for u in comparison.units if u.unit_id == "transport")
    assert transport.of(mc.ON_TIME_RATE).text == "持平"
    assert transport.of(mc.SATISFACTION_RATE).text == "提升56.67个百分点"  # 90.00% against 33.33%
    xiangxiang = next(u for u in comparison.units if u.unit_id == "xiangxiang")
    assert xiangxiang.of(mc.SATISFACTION_RATE).text == ""  # '-' this month: nothing to compare


def test_rounding_is_on_the_fraction_not_the_printed_rates() -> None:
    # 2/3 = 66.67% printed, 1/6 = 16.67% printed: printed strings give 50.00, the fractions exactly 50.
    assert half_up_hundredths(Fraction(2, 3) * 100 - Fraction(1, 6) * 100) == Decimal("50.00")
    # 0.125 points rounds half up (away from zero), both ways.
    assert half_up_hundredths(Fraction(1, 8)) == Decimal("0.13")
    assert half_up_hundredths(Fraction(-1, 8)) == Decimal("-0.13")
    # 1/3 - 1/3.0003: printed both 33.33%, the change is below half a hundredth: 持平.
    change = Change(mc.SATISFACTION_RATE, Fraction(1, 3), Fraction(10000, 30001))
    assert change.current_text == change.previous_text == "33.33%" and change.text == "持平"
    assert Change(mc.SATISFACTION_RATE, Fraction(1, 2), None).text == ""


def test_every_format_carries_the_changes(edition: Bulletin) -> None:
    comparison = edition.comparison
    assert comparison is not None
    sentence = prose.period_over_period(edition)
    assert sentence.startswith("与10月相比，") and "接通率下降1.89个百分点" in sentence
    for change in comparison.headline:
        assert f"{change.metric.label}{change.text}" in sentence
    md = render(edition, "md").decode()
    table = render(edition, "table").decode()
    assert sentence in md and prose.SECTION_CHANGES in md
    assert "下降3.75个百分点" in md and "下降3.75个百分点" in table
    data = render(edition, "json").decode()
    assert '"period_over_period"' in data and '"points": "-3.75"' in data

    rows = list(csv.DictReader(io.StringIO(to_csv(edition).decode())))
    assert list(rows[0])[: len(COLUMNS)] == [key for key, _ in COLUMNS]
    assert rows[0][f"{mc.ON_TIME_RATE.name}_change"] == "-3.75"
    assert rows[0][f"{mc.SATISFACTION_RATE.name}_change"] == "-22.50"
    assert rows[-1]["unit"] == "总计" and rows[-1][f"{mc.ON_TIME_RATE.name}_change"] == comparison.total.of(
        mc.ON_TIME_RATE
    ).signed

    doc = Document(io.BytesIO(render(edition, "docx")))
    assert len(doc.tables) == 2
    changes = [[c.text for c in row.cells] for row in doc.tables[1].rows]
    assert changes[0][0] == mc.UNIT_LABEL and len(changes[0]) == 1 + 3 * len(UNIT_RATES)
    assert changes[1][:4] == ["雨湖区人民政府", "90.00%", "93.75%", "下降3.75个百分点"]


def test_the_bare_month_keeps_the_seed_csv_columns() -> None:
    bare = build_bulletin(FakeDB(CANNED), "2019-11")
    header = next(csv.reader(io.StringIO(to_csv(bare).decode())))
    assert header == [key for key, _ in COLUMNS]
    assert "period_over_period" not in bare.to_json()


# --------------------------------------------------------------------------- 补录 and diff


def test_late_data_is_listed_by_unit_with_counts(edition: Bulletin) -> None:
    md = render(edition, "md").decode()
    assert f"## {prose.SECTION_LATE}" in md
    assert "2019年10月通报（第11期（总第112期），2019年11月25日）签发后，又收到10月份数据3条" in md
    assert "雨湖区人民政府3条（退单数1、回访数2）" in md or "雨湖区人民政府3条（回访数2、退单数1）" in md
    assert edition.to_json()["late_data"]["units"][0] == {
        "unit_id": "yuhu",
        "unit": "雨湖区人民政府",
        "events": 3,
        "visits": 2,
        "returned": 1,
    }


def test_differences_name_only_the_cells_that_changed(edition: Bulletin) -> None:
    issued = build_bulletin(FakeDB(CANNED), "2019-11").to_json()
    later = copy.deepcopy(CANNED)
    later[queries.EVENT_COLUMNS][0].update(visits=11, visits_satisfied=5)
    now = build_bulletin(FakeDB(later), "2019-11").to_json()
    found = {(d.where, d.item): (d.issued, d.current) for d in differences(issued, now)}
    assert found[("雨湖区人民政府", mc.VISITS.label)] == ("10", "11")
    assert found[("雨湖区人民政府", mc.SATISFACTION_RATE.label)] == ("40.00%", "45.45%")
    assert found[("总计", mc.VISITS.label)] == ("20", "21")
    assert found[("通报正文", "visits.valid_visits")] == ("20", "21")
    assert all(a != b for a, b in found.values())
    assert not differences(issued, issued)


# --------------------------------------------------------------------------- the Word file


def _docx(edition: Bulletin) -> Any:
    return Document(io.BytesIO(render(edition, "docx")))


def _east_asia(element: Any) -> str | None:
    fonts = element.find(qn("w:rPr") + "/" + qn("w:rFonts")) if element.tag != qn("w:rPr") else None
    return None if fonts is None else fonts.get(qn("w:eastAsia"))


def test_masthead_as_the_seed_prints_it(edition: Bulletin) -> None:
    doc = _docx(edition)
    first = doc.paragraphs[:3]
    assert [p.text for p in first] == ["市 长 热 线", "第12期（总第113期）", "市长热线管理办公室\t2019年12月26日"]
    masthead = first[0].runs[0]
    assert masthead.font.color.rgb == docx_style.RED and masthead.font.size == Pt(docx_style.SIZE_1)
    assert _east_asia(masthead._r) == docx_style.FONT_TITLE
    line = first[2]._p.pPr.find(qn("w:pBdr")).find(qn("w:bottom"))
    assert line.get(qn("w:color")) == "FF0000" and line.get(qn("w:val")) == "single"
    assert doc.paragraphs[3].text == "2019年11月湘潭市12345热线工作情况通报"


def test_fonts_and_sizes_of_the_standard(edition: Bulletin) -> None:
    doc = _docx(edition)
    expected = {
        "Normal": (docx_style.FONT_BODY, docx_style.SIZE_3),
        "Title": (docx_style.FONT_TITLE, docx_style.SIZE_2),
        "Heading 1": (docx_style.FONT_HEADING_1, docx_style.SIZE_3),
        "Heading 2": (docx_style.FONT_HEADING_2, docx_style.SIZE_3),
    }
    for name, (font, size) in expected.items():
        style = doc.styles[name]
        assert style.element.rPr.rFonts.get(qn("w:eastAsia")) == font, name
        assert style.font.size == Pt(size), name
    assert (docx_style.FONT_BODY, docx_style.FONT_TITLE) == ("仿宋_GB2312", "方正小标宋简体")
    pitch = doc.styles["Normal"].paragraph_format.line_spacing
    assert round(pitch.pt * 22 / 72 * 25.4) == 225  # 22 lines fill the type area
    fonts = zipfile.ZipFile(io.BytesIO(render(edition, "docx"))).read("word/fontTable.xml").decode()
    for font, alt in docx_style.FONT_SUBSTITUTES.items():
        assert f'w:name="{font}"><w:altName w:val="{alt}"/>' in fonts


def test_margins_and_type_area(edition: Bulletin) -> None:
    doc = _docx(edition)
    body, annex = doc.sections[0], doc.sections[-1]
    mm = Mm(1)
    assert (round(body.page_width / mm), round(body.page_height / mm)) == (210, 297)
    assert round(body.top_margin / mm) == 37 and round(body.left_margin / mm) == 28
    assert round((body.page_width - body.left_margin - body.right_margin) / mm) == 156
    assert round((body.page_height - body.top_margin - body.bottom_margin) / mm) == 225
    assert annex.page_width > annex.page_height  # the attachment lies on landscape pages
    assert round((annex.page_width - annex.left_margin - annex.right_margin) / mm) == 225


def test_page_numbers_are_fields_in_dashes_on_alternating_sides(edition: Bulletin) -> None:
    doc = _docx(edition)
    assert doc.settings.odd_and_even_pages_header_footer
    for section, odd_right in ((doc.sections[0], True), (doc.sections[-1], False)):
        for footer, right in ((section.footer, odd_right), (section.even_page_footer, not odd_right)):
            p = footer.paragraphs[0]
            assert p.text == "— 1 —"
            assert " PAGE " in [t.text for t in p._p.iter(qn("w:instrText"))]
            assert [c.get(qn("w:fldCharType")) for c in p._p.iter(qn("w:fldChar"))] == ["begin", "separate", "end"]
            assert (p.alignment == WD_ALIGN_PARAGRAPH.RIGHT) is right
            assert all(r.font.size == Pt(docx_style.SIZE_4) for r in p.runs)
            assert _east_asia(p.runs[0]._r) == docx_style.FONT_PAGE_NUMBER


def test_the_table_fits_its_page_with_every_cell_on_one_line(edition: Bulletin) -> None:
    doc = _docx(edition)
    annex = doc.sections[-1]
    area = annex.page_width - annex.left_margin - annex.right_margin
    for table in doc.tables:
        tbl_pr = table._tbl.tblPr
        assert tbl_pr.find(qn("w:tblLayout")).get(qn("w:type")) == "fixed"
        grid = [int(c.get(qn("w:w"))) for c in table._tbl.tblGrid.iter(qn("w:gridCol"))]
        assert sum(grid) * 635 <= area + len(grid) * 635  # twips to EMU, rounding per column
        padding = int(tbl_pr.find(qn("w:tblCellMar")).find(qn("w:left")).get(qn("w:w")))
        for row in table.rows[1:]:
            for cell, width in zip(row.cells, grid, strict=True):
                assert cell._tc.tcPr.find(qn("w:noWrap")) is not None
                run = cell.paragraphs[0].runs[0]
                text_twips = docx_table.text_width_pt(cell.text, run.font.size.pt) * 20
                assert text_twips + 2 * padding <= width, (cell.text, width)
    rates = [c.text for row in doc.tables[0].rows for c in row.cells if c.text.endswith("%")]
    assert "100.00%" in rates


def test_charts_are_embedded_pngs(edition: Bulletin) -> None:
    doc = _docx(edition)
    assert len(doc.inline_shapes) == 2
    package = zipfile.ZipFile(io.BytesIO(render(edition, "docx")))
    images = [n for n in package.namelist() if n.startswith("word/media/")]
    assert len(images) == 2 and all(package.read(n).startswith(b"\x89PNG") for n in images)
    assert all(b"Software" not in package.read(n) for n in images)
    captions = [p.text for p in doc.paragraphs if p.style.name == docx_style.CAPTION_STYLE]
    assert len(captions) == 2 and mc.SATISFACTION_RATE.label in captions[1]


def test_the_word_file_is_the_same_bytes_every_time(edition: Bulletin) -> None:
    first, second = render(edition, "docx"), render(edition, "docx")
    assert first == second
    package = zipfile.ZipFile(io.BytesIO(first))
    assert {i.date_time for i in package.infolist()} == {(2019, 12, 26, 0, 0, 0)}
    props = Document(io.BytesIO(first)).core_properties
    assert props.created == props.modified == datetime(2019, 12, 26, tzinfo=UTC)
    assert render(edition, "xlsx") == render(edition, "xlsx")


def test_charts_need_a_cjk_font(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(charts, "CJK_FAMILIES", ("No Such Font",))
    with pytest.raises(charts.ChartFontMissing, match="fonts-wqy-zenhei"):
        charts.cjk_family()


def test_libreoffice_lays_every_rate_on_one_line(edition: Bulletin, tmp_path: Path) -> None:
    """The PDF LibreOffice makes (installed by ./run test) holds each rate whole, the table on landscape pages."""
    source = tmp_path / "bulletin.docx"
    source.write_bytes(render(edition, "docx"))
    subprocess.run(
        ["libreoffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
        timeout=180,
    )
    text = subprocess.run(
        ["pdftotext", "-layout", str(tmp_path / "bulletin.pdf"), "-"], check=True, capture_output=True
    ).stdout.decode()
    for rate in ("100.00%", "90.00%", "40.00%"):
        assert rate in text
    assert "100.00\n" not in text and "\n%" not in text


# ------------------------------------------------------- the demo: no comparison with a partial month

DEMO_WHY = "10月数据自10月8日起，不完整，不作比较。"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bulletin]:
    """The demo's November: the seed month generated as ``hotline demo`` does, imported; its October
    holds only the orders dispatched from 8 October that carried into November."""
    from hotline import seed
    from hotline.generate import generate
    from tests.unit.reports.conftest import imported

    store = imported(tmp_path_factory.mktemp("demo"), list(generate(seed.TABLE, seed.HEADLINE, seed=2019)))
    try:
        yield assemble(store, "2019-11")
    finally:
        store.close()


def test_the_demo_says_why_it_does_not_compare(demo: Bulletin) -> None:
    assert demo.comparison is None and demo.year_over_year is None
    assert demo.withheld[0].text == DEMO_WHY
    assert prose.comparison_sentences(demo)[0] == DEMO_WHY


@pytest.mark.parametrize("fmt", ["table", "md"])
def test_the_demos_text_formats_print_the_reason_and_no_change(demo: Bulletin, fmt: str) -> None:
    text = "".join(render(demo, fmt).decode().split())
    assert DEMO_WHY in text and "个百分点" not in text and "与10月相比" not in text


def test_the_demos_word_file_prints_the_reason_and_no_change(demo: Bulletin) -> None:
    doc = Document(io.BytesIO(render(demo, "docx")))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert DEMO_WHY in text and "个百分点" not in text and len(doc.tables) == 1  # no comparison table


def test_the_demos_workbook_prints_the_reason_and_no_change(demo: Bulletin) -> None:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(render(demo, "xlsx")))
    values = [str(c.value) for sheet in book for row in sheet.iter_rows() for c in row if c.value is not None]
    assert DEMO_WHY in values and not any("个百分点" in v for v in values)


def test_the_demos_json_says_why_and_has_no_change(demo: Bulletin) -> None:
    data = json.loads(render(demo, "json"))
    assert "period_over_period" not in data and "year_over_year" not in data
    withheld = {w["kind"]: w for w in data["comparisons_withheld"]}
    assert withheld["环比"] == {
        "kind": "环比",
        "period": "2019-10",
        "reasons": ["10月数据自10月8日起，不完整"],
        "text": DEMO_WHY,
    }
    assert data["coverage"]["since"] == "2019-10-08"


def test_the_demos_csv_keeps_its_change_columns_empty(demo: Bulletin) -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(demo).decode())))
    changes = [key for key in rows[0] if key.endswith("_change")]
    assert len(changes) == 2 * len(UNIT_RATES) and {r[k] for r in rows for k in changes} == {""}


def test_the_demos_figures_stay_the_published_month(demo: Bulletin) -> None:
    from hotline import seed

    published = list(csv.DictReader(io.StringIO(seed.TABLE.read_text(encoding="utf-8"))))
    assert [{k: r[k] for k, _ in COLUMNS} for r in published] == [{k: r[k] for k, _ in COLUMNS} for r in demo.rows()]
