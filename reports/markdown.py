"""The whole bulletin as Markdown, for reading where Word is not at hand (a repository, a chat).

Headings, paragraphs and pipe tables only: the same text as the Word file
(:func:`hotline.reports.prose.compose`), the attachment and the month-over-month table as pipe
tables, and everything events wrote through :func:`hotline.reports.escaping.md_text`, so an item
or a unit's name can open no heading, list or table row of its own.
"""

from __future__ import annotations

from hotline.reports.bulletin import COLUMNS, Bulletin
from hotline.reports.escaping import md_text
from hotline.reports.prose import change_table, change_title, compose, table_cells


def _md_table(bulletin: Bulletin) -> list[str]:
    """The attachment as a pipe table; unit names through :func:`md_text`, which escapes ``|``."""
    header = [label for _, label in COLUMNS]
    align = [":---" if key == "unit" else "---:" for key, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in table_cells(bulletin, md_text)]
    return lines


def to_markdown(bulletin: Bulletin) -> bytes:
    """The whole bulletin as Markdown: # title, ## 一/数据质量/附件, ### （一）–（五）, a pipe table."""
    text = compose(bulletin, md_text)
    lines = [f"# {text.title}", ""]
    for section in text.sections:
        lines += ["#" * (section.level + 1) + f" {section.heading}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
    lines += [f"## {text.attachment_heading}", "", *_md_table(bulletin), "", text.table_notes, ""]
    for comparison in bulletin.comparisons:
        header, rows = change_table(comparison, md_text)
        lines += [f"## {change_title(comparison)}", "", "| " + " | ".join(header) + " |"]
        lines.append("| " + " | ".join([":---"] + ["---:"] * (len(header) - 1)) + " |")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines).encode("utf-8")
