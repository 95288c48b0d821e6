"""``hotline coverage``: what the store holds complete data for, and an office's declaration of it.

A bulletin compares two periods (环比, 同比) only when the store holds both completely
(:mod:`hotline.reports.coverage`). By default that is from the first day the store holds any
data of; an office that imports its history declares the day from which that history is
complete (the first day of a month it imported whole), so neither a partial first month nor a
quiet first day decides it.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer

coverage_app = typer.Typer(help="Which days the store holds complete data for (the bulletin's comparisons).")


@coverage_app.command("declare")
def declare(
    complete_from: Annotated[str, typer.Option("--from", help="The first day the history is complete, YYYY-MM-DD.")],
    note: Annotated[str, typer.Option(help="Why (what was imported), kept with the declaration.")] = "",
) -> None:
    """Declare the store's history complete from a day (the latest declaration wins)."""
    from hotline.commands.bulletin import HELD
    from hotline.commands.common import err, fail, load_settings, open_clickhouse
    from hotline.reports.coverage import HISTORY
    from hotline.sinks.tables import COVERAGE_DECLARED

    try:
        day = date.fromisoformat(complete_from)
    except ValueError as exc:
        raise fail(f"--from must look like 2019-01-01, got {complete_from!r}") from exc
    sink = open_clickhouse(load_settings(), HELD)
    try:
        sink.insert(COVERAGE_DECLARED, [[HISTORY, day, note]])
    finally:
        sink.close()
    err.print(f"declared: the store's data are complete from {day.isoformat()}")


@coverage_app.command("show")
def show() -> None:
    """The days the store holds complete data for, as the bulletin's comparisons read them (JSON)."""
    from hotline.commands.bulletin import HELD
    from hotline.commands.common import load_settings, open_clickhouse
    from hotline.reports.coverage import coverage

    sink = open_clickhouse(load_settings(), HELD)
    try:
        held = coverage(sink)
    finally:
        sink.close()
    typer.echo(json.dumps(held.to_json(), ensure_ascii=False))
