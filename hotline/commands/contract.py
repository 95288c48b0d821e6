"""``hotline units`` and ``hotline schema``: the contract the pipeline reads, as the office sees it."""

from __future__ import annotations

import csv
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


class UnitsFormat(StrEnum):
    table = "table"
    csv = "csv"


def units(fmt: Annotated[UnitsFormat, typer.Option("--format")] = UnitsFormat.table) -> None:
    """The unit registry (id, name, group, order)."""
    from hotline.schemas.registry import default_registry

    registry = default_registry()
    if fmt is UnitsFormat.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["id", "name", "group", "order"])
        writer.writerows([u.id, u.name, u.group, u.order] for u in registry)
        return
    table = Table("id", "单位", "分组", "顺序", title=f"成员单位 ({len(registry)})")
    for u in registry:
        table.add_row(u.id, u.name, u.group, str(u.order))
    Console().print(table)


def schema(out: Annotated[Path | None, typer.Option(help="Write here instead of the repo's file.")] = None) -> None:
    """Export the event contract as JSON Schema."""
    from hotline.schemas.events import SCHEMA_PATH, write_json_schema

    print(write_json_schema(out or SCHEMA_PATH))
