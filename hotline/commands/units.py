"""``hotline units``: the unit registry in force, at a date, its changes, and its import.

The registry lives in ClickHouse (``hotline units import FILE``) so every worker, the store and
the commands read one version; before the first import, the office profile's CSV stands in.
A worker reads the registry when its store opens: restart the workers after an import.
"""

from __future__ import annotations

import csv
import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from hotline.schemas.registry import Registry

units_app = typer.Typer(
    help="The unit registry (成员单位): in force now or at a date, its changes, and importing a new version.",
    invoke_without_command=True,
)
out = Console()


class Format(StrEnum):
    table = "table"
    csv = "csv"


def _stored() -> Registry:
    """The registry in force: the store's newest import, else the office profile's CSV."""
    from hotline.commands.bulletin import HELD
    from hotline.commands.common import load_settings, open_clickhouse
    from hotline.sinks.units import stored_registry

    sink = open_clickhouse(load_settings(), HELD)
    try:
        return stored_registry(sink)
    finally:
        sink.close()


def _day(value: str | None) -> date | None:
    from hotline.commands.common import fail

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"--at must look like 2023-06-01, got {value!r}") from None


@units_app.callback()
def units(
    ctx: typer.Context,
    at: Annotated[str | None, typer.Option(help="The units in force on this date (YYYY-MM-DD); default: now.")] = None,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """The units in force (id, name, group, order), and the registry's version."""
    if ctx.invoked_subcommand is not None:
        return
    day = _day(at)
    registry = _stored()
    shown = registry.at(day) if day else registry
    if fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["id", "name", "group", "order"])
        writer.writerows([u.id, u.name, u.group, u.order] for u in shown)
        return
    when = f"，{day.isoformat()}" if day else ""
    table = Table("id", "单位", "分组", "顺序", title=f"成员单位 ({len(shown)}{when}；版本 {registry.version})")
    for u in shown:
        table.add_row(u.id, u.name, u.group, str(u.order))
    out.print(table)


@units_app.command()
def changes(fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """Every dated change of the registry: units added, renamed, merged into a successor, retired."""
    registry = _stored()
    found = registry.changes()
    if fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["day", "kind", "unit_id", "change"])
        writer.writerows([c.day.isoformat(), c.kind, c.unit_id, c.text] for c in found)
        return
    table = Table("日期", "变更", "id", "内容", title=f"成员单位变更 ({len(found)}；版本 {registry.version})")
    for c in found:
        table.add_row(c.day.isoformat(), c.kind, c.unit_id, c.text)
    out.print(table)


@units_app.command("import")
def import_units(
    file: Annotated[
        Path, typer.Argument(help="The registry CSV: unit_id,name,group,order,valid_from,valid_to,successor")
    ],
) -> None:
    """Store FILE as the registry in force for every worker, the store and the commands.

    Restart the workers to read it. Names, groups, orders and successors apply to every period when it is read;
    see the docs' *Setting up a new office* for the changes that also need `hotline restate`."""
    from hotline.commands.bulletin import HELD
    from hotline.commands.common import err, fail, load_settings, open_clickhouse
    from hotline.schemas.registry import RegistryError, parse_registry
    from hotline.sinks.units import import_registry

    try:
        registry = parse_registry(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"cannot read {file}: {exc.strerror or exc}") from None
    except RegistryError as exc:
        raise fail(f"{file.name}: {exc}") from None
    sink = open_clickhouse(load_settings(), HELD)
    try:
        written = import_registry(sink, registry)
    finally:
        sink.close()
    units_now = len(registry)
    if written:
        err.print(
            f"imported registry version {registry.version}: {len(registry.history)} rows, {units_now} units in force"
        )
    else:
        err.print(f"registry version {registry.version} is already the one in force: nothing imported")
