"""``hotline generate`` and ``hotline replay``: a month of events written, then produced to Kafka."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hotline.commands.common import err, fail, load_settings
from hotline.settings import Settings


def replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL of events")],
    wait: Annotated[bool, typer.Option(help="Return once ClickHouse reflects every event.")] = False,
    timeout: float = 600,
) -> None:
    """Produce a file of events to Kafka, with a progress bar."""
    replay_file(load_settings(), file, wait, timeout)


def replay_file(settings: Settings, file: Path, wait: bool, timeout: float) -> None:
    """Produce ``file`` to Kafka behind a progress bar; with ``wait``, a second bar until the workers
    have stored every record (what ``hotline demo`` waits for before it asks for the bulletin)."""
    from rich.markup import escape

    from hotline.replay import produce, read_records, wait_until_sunk

    try:
        records = list(read_records(file, settings))
    except ValueError as exc:
        raise fail(str(exc)) from exc
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("发送 producing", total=len(records))
        last = asyncio.run(produce(records, settings, lambda n: progress.advance(task, n)))
        if wait:
            sink_task = progress.add_task("入库 sinking", total=sum(o + 1 for o in last.values()))
            absent = False  # the last poll found no worker: say so once per absence, not on every poll

            def sinking(done: int, total: int) -> None:
                nonlocal absent
                absent = False
                progress.update(sink_task, completed=done, total=total, description="入库 sinking")

            def waiting(reason: str) -> None:
                """A worker starting or restarting is waited for; the user should see what for."""
                nonlocal absent
                if not absent:
                    progress.console.print(
                        f"no worker answers at {settings.web_url} ({reason}); waiting up to {timeout:.0f}s "
                        "for one: start it with `hotline worker`",
                        markup=False,
                    )
                absent = True
                progress.update(sink_task, description=escape(f"入库 sinking: waiting for a worker ({reason})"))

            try:
                wait_until_sunk(last, settings, timeout, sinking, waiting)
            except (RuntimeError, TimeoutError) as exc:
                raise fail(str(exc)) from exc
    err.print(f"replayed {len(records)} records from {file}")


def generate(
    table: Annotated[
        Path | None, typer.Option(exists=True, help="Per-unit table CSV (seed format) [default: the seed's]")
    ] = None,
    headline: Annotated[
        Path | None, typer.Option(exists=True, help="Headline JSON (seed format) [default: the seed's]")
    ] = None,
    out: Annotated[Path, typer.Option(help="JSONL to write")] = Path("var/demo/2019-11.jsonl"),
    seed: int = 2019,
) -> None:
    """Write a realistic month of events whose aggregates reproduce the given bulletin."""
    from hotline import seed as published
    from hotline.generate import generate as make
    from hotline.generate import write_jsonl

    out.parent.mkdir(parents=True, exist_ok=True)
    with err.status("generating…"):
        records = make(table or published.TABLE, headline or published.HEADLINE, seed=seed)
        count = write_jsonl(records, out)
    err.print(f"wrote {count} records to {out}")
