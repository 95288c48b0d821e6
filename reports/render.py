"""Output formats of the bulletin: terminal table, CSV and JSON here; xlsx, docx and md in modules of their own."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from hotline.reports.bulletin import COLUMNS, Bulletin
from hotline.reports.compare import PERIOD_OVER_PERIOD, UNIT_RATES, YEAR_OVER_YEAR
from hotline.schemas.escaping import printable

FORMATS = ("table", "csv", "json", "xlsx", "docx", "md")
MEDIA_TYPES = {
    "json": "application/json; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "table": "text/plain; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


# A rate's column of signed percentage points against the previous period (环比), a year before (同比).
CHANGE_SUFFIX = "_change"
SUFFIXES = {PERIOD_OVER_PERIOD: CHANGE_SUFFIX, YEAR_OVER_YEAR: "_yoy_change"}


def change_columns(bulletin: Bulletin) -> list[dict[str, str]] | None:
    """Per row of the table, each unit rate's change 环比 then 同比 (``+0.47``; empty without the other
    period's figure, and every cell empty when the comparison is withheld: a period is incomplete);
    None when the bulletin makes and withholds no comparison, so the CSV keeps the seed's columns."""
    made = {c.kind: c for c in bulletin.comparisons}
    kinds = [k for k in SUFFIXES if k in made or any(w.kind == k for w in bulletin.withheld)]
    if not kinds:
        return None
    rows: list[dict[str, str]] = [{} for _ in range(len(bulletin.units) + 1)]
    for kind in kinds:
        comparison = made.get(kind)
        for i, row in enumerate(rows):
            unit = None if comparison is None else (*comparison.units, comparison.total)[i]
            row.update({f"{m.name}{SUFFIXES[kind]}": unit.of(m).signed if unit else "" for m in UNIT_RATES})
    return rows


BELOW_STANDARD = "below_standard"  # a unit's rates under the office's minimum standards (未达标)


def standard_column(bulletin: Bulletin) -> list[dict[str, str]] | None:
    """Per row of the table, the labels of the rates the unit is below the office's minimum standard
    for (``回访满意率、按期办结率``; empty for none and for 总计); None without standards in the profile."""
    found: dict[str, dict[str, Any]] | None = bulletin.headline.get(BELOW_STANDARD)
    if not found:
        return None
    missed = ["、".join(s["label"] for s in found.values() if unit.name in s["units"]) for unit in bulletin.units]
    return [{BELOW_STANDARD: text} for text in [*missed, ""]]


def to_csv(bulletin: Bulletin) -> bytes:
    """The seed CSV's columns and formatting, one row per unit and the 总计 row; then, when the
    office has minimum standards, the rates each unit is below (未达标); then, in an edition, each
    unit rate's change 环比 and 同比 in percentage points (empty when the comparison is withheld)."""
    rows = bulletin.rows()
    keys = [key for key, _ in COLUMNS]
    standards = standard_column(bulletin)
    if standards is not None:
        keys.append(BELOW_STANDARD)
        rows = [{**row, **missed} for row, missed in zip(rows, standards, strict=True)]
    changes = change_columns(bulletin)
    if changes is not None:
        keys += list(changes[0])
        rows = [{**row, **change} for row, change in zip(rows, changes, strict=True)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def to_json(bulletin: Bulletin) -> bytes:
    return json.dumps(bulletin.to_json(), ensure_ascii=False, indent=2).encode("utf-8")


def to_table(bulletin: Bulletin) -> bytes:
    """The whole bulletin for a terminal: the sections' text, then the attachment table.

    What events wrote reaches a terminal: its control characters are shown escaped
    (:func:`~hotline.logs.printable`; an ESC would drive the terminal, a newline forge a line),
    and nothing is read as rich's markup (``[/x]`` in a test call's item raised MarkupError).
    """
    from hotline.reports.prose import change_table, change_title, prose, table_cells, table_title

    table = Table(title=table_title(bulletin), show_lines=False)
    for key, label in COLUMNS:
        table.add_column(label, justify="left" if key == "unit" else "right", overflow="fold")
    rows = table_cells(bulletin, printable)
    for i, row in enumerate(rows):
        table.add_row(*row, end_section=i == len(rows) - 2)
    # As wide as the terminal (rich shrinks and folds columns to fit), 240 when there is none.
    width = max(shutil.get_terminal_size((240, 40)).columns, 100)
    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None, markup=False)
    console.print(prose(bulletin, printable), highlight=False)
    console.print(table)
    for comparison in bulletin.comparisons:
        header, cells = change_table(comparison, printable)
        by_unit = Table(title=change_title(comparison), show_lines=False)
        for i, label in enumerate(header):
            by_unit.add_column(label, justify="left" if i == 0 else "right", overflow="fold")
        for i, cells_of_row in enumerate(cells):
            by_unit.add_row(*cells_of_row, end_section=i == len(cells) - 2)
        console.print(by_unit)
    return console.file.getvalue().encode("utf-8")  # type: ignore[attr-defined]


def renderer(fmt: str) -> Callable[[Bulletin], bytes]:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt in ("xlsx", "docx", "md"):
        from hotline.reports import docx, markdown, xlsx

        return {"xlsx": xlsx.to_xlsx, "docx": docx.to_docx, "md": markdown.to_markdown}[fmt]
    return {"csv": to_csv, "json": to_json, "table": to_table}[fmt]


def render(bulletin: Bulletin, fmt: str) -> bytes:
    return renderer(fmt)(bulletin)
