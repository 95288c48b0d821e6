"""Output formats of the bulletin: terminal table, CSV, JSON (and, in ``documents``, xlsx/docx/md)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from hotline.reports.bulletin import COLUMNS, Bulletin

FORMATS = ("table", "csv", "json", "xlsx", "docx", "md")
MEDIA_TYPES = {
    "json": "application/json; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "table": "text/plain; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


def to_csv(bulletin: Bulletin) -> bytes:
    """The seed CSV's columns and formatting, one row per unit and the 总计 row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[key for key, _ in COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(bulletin.rows())
    return out.getvalue().encode("utf-8")


def to_json(bulletin: Bulletin) -> bytes:
    return json.dumps(bulletin.to_json(), ensure_ascii=False, indent=2).encode("utf-8")


def to_table(bulletin: Bulletin) -> bytes:
    """The whole bulletin for a terminal: the sections' text, then the attachment table."""
    from hotline.reports.documents import prose

    year, month = bulletin.month.split("-")
    table = Table(title=f"{year}年{int(month)}月市长热线办理情况统计表", show_lines=False)
    for key, label in COLUMNS:
        table.add_column(label, justify="left" if key == "unit" else "right", overflow="fold")
    rows = bulletin.rows()
    for i, row in enumerate(rows):
        table.add_row(*(row[key] for key, _ in COLUMNS), end_section=i == len(rows) - 2)
    # As wide as the terminal (rich shrinks and folds columns to fit), 240 when there is none.
    width = max(shutil.get_terminal_size((240, 40)).columns, 100)
    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    console.print(prose(bulletin), highlight=False)
    console.print(table)
    return console.file.getvalue().encode("utf-8")  # type: ignore[attr-defined]


def renderer(fmt: str) -> Callable[[Bulletin], bytes]:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt in ("xlsx", "docx", "md"):
        from hotline.reports import documents

        return {"xlsx": documents.to_xlsx, "docx": documents.to_docx, "md": documents.to_markdown}[fmt]
    return {"csv": to_csv, "json": to_json, "table": to_table}[fmt]


def render(bulletin: Bulletin, fmt: str) -> bytes:
    return renderer(fmt)(bulletin)
