"""``hotline import`` and ``hotline restate``: history written to the store directly, while no
worker runs (a running worker would overwrite what they rewrite under it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hotline import heap
from hotline.commands.common import err, fail, load_settings, open_clickhouse
from hotline.commands.kafka import broker_answers
from hotline.settings import Settings

if TYPE_CHECKING:
    from hotline.sinks.base import Store


def _no_worker_running(settings: Settings) -> None:
    """Refuse while a worker of the group runs, as Kafka's group coordinator knows it: a running
    worker would overwrite the windows an import or restatement rewrites under it. Kafka knows at
    once; the store knows a worker only from its next call (up to minutes after the store restarts)."""
    from hotline.deploy import kafka

    if not broker_answers(settings):
        err.print(f"warning: no Kafka broker answers at {settings.kafka_bootstrap}: cannot check for running workers")
        return
    members = kafka.group_members(settings)
    if members:
        raise fail(
            f"{len(members)} worker(s) of group {settings.app_id!r} are running ({', '.join(members[:5])}): "
            "stop them first (an import or a restatement rewrites what they write)"
        )


def _open_for_history(settings: Settings) -> Store:
    """Through ``hotline store`` when one is configured (it holds ClickHouse, and refuses while a
    worker runs: ``RemoteStore.begin_history``), else ClickHouse opened here; either way only
    while no worker of the group runs (:func:`_no_worker_running`)."""
    _no_worker_running(settings)
    if not settings.store_url:
        return open_clickhouse(settings)
    from hotline.sinks.remote import RemoteStore, StoreMismatch, StoreRefused, StoreUnavailable
    from hotline.sinks.store import open_store

    try:
        remote = open_store(settings)
    except (StoreUnavailable, StoreRefused, StoreMismatch) as exc:
        raise fail(f"{exc} (HOTLINE_STORE_URL is set: start `hotline store`, or unset it)") from exc
    assert isinstance(remote, RemoteStore)  # store_url is set
    try:
        remote.begin_history()  # refused while a worker runs: the refusal names them
    except (StoreUnavailable, StoreRefused) as exc:
        remote.close()
        raise fail(str(exc)) from None
    return remote


def _progress(what: str) -> Progress:
    return Progress(
        TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=False
    )


def import_(
    # Not checked by click (a usage box): the import says in one line what is wrong with the file.
    file: Annotated[Path, typer.Argument(readable=False, help="JSON lines of contract events (.gz too).")],
) -> None:
    """Load history straight into ClickHouse, as if streamed (run it with the workers stopped;
    with HOTLINE_STORE_URL set, through the store, which keeps running).

    Each line is validated as the stream validates it: a bad line becomes a dead letter with its
    line number and reason, and the rest loads. Importing a file twice equals importing it once;
    an interrupted import resumes where it stopped.
    """
    from hotline.sinks.base import StoreRaced
    from hotline.sinks.units import stored_registry
    from hotline.streams.deadlines import limits_of
    from hotline.streams.history import SHOWN_DEADLETTERS, UnreadableFile, fingerprint, import_file

    heap.for_long_runs()
    settings = load_settings()
    try:
        digest, lines = fingerprint(file)  # before the store opens: a file that cannot be read fails alone
    except UnreadableFile as exc:
        raise fail(str(exc)) from None
    sink = _open_for_history(settings)
    try:
        started = time.monotonic()
        with _progress(f"importing {file.name}") as bar:
            task = bar.add_task("import", total=lines)
            tally = import_file(
                sink,
                file,
                stored_registry(sink),
                limits_of(settings),
                lambda n: bar.advance(task, n),
                digest=digest,
                max_events=settings.max_order_events,
            )
        elapsed = max(time.monotonic() - started, 1e-9)
    except StoreRaced as raced:
        raise fail(f"a worker stored events of this file meanwhile ({raced}): run the import again") from None
    except UnreadableFile as exc:  # it broke off midway: the lines before are stored, with their progress
        raise fail(str(exc)) from None
    finally:
        sink.close()
    for dead in tally.deadletters[:SHOWN_DEADLETTERS]:
        err.print(f"line {dead.source_offset}: {dead.error}", markup=False, highlight=False)
    if tally.deadletter_count > SHOWN_DEADLETTERS:
        more = tally.deadletter_count - SHOWN_DEADLETTERS
        err.print(f"… and {more} more dead letters (table deadletter, source_topic 'import')")
    err.print(
        f"imported {tally.events} events from {tally.records} lines of {file} in {elapsed:.1f}s "
        f"({tally.records / elapsed:,.0f}/s): {tally.duplicates} already stored, {tally.deadletter_count} dead letters"
    )


def restate(
    month: Annotated[str | None, typer.Option(help="One month, YYYY-MM.")] = None,
    from_month: Annotated[str | None, typer.Option("--from", help="First month, YYYY-MM.")] = None,
    to_month: Annotated[str | None, typer.Option("--to", help="Last month, YYYY-MM.")] = None,
) -> None:
    """Rebuild the day windows and order states from the events table (all months by default),
    after a rule or registry change; idempotent. Run it with the workers stopped; with
    HOTLINE_STORE_URL set, the store runs it (no progress bar then)."""
    from hotline.reports.bulletin import month_key
    from hotline.sinks.remote import RemoteStore
    from hotline.sinks.store import owned
    from hotline.streams.deadlines import limits_of
    from hotline.streams.history import event_months
    from hotline.streams.history import restate as rebuild

    try:
        start, end = month or from_month, month or to_month
        first = month_key(start) if start else None
        last = month_key(end) if end else None
    except ValueError as exc:
        raise fail(str(exc)) from exc
    heap.for_long_runs()
    settings = load_settings()
    sink = _open_for_history(settings)
    try:
        if isinstance(sink, RemoteStore):
            with err.status(f"the store at {settings.store_url} is restating…"):
                months = sink.restate(first, last)
        elif owned(sink):
            total = sum(int(r["n"]) for r in sink.query_rows("SELECT count() AS n FROM {db}.events"))
            with _progress("restating") as bar:
                task = bar.add_task("restate", total=total)
                months = rebuild(sink, limits_of(settings), first, last, lambda n: bar.advance(task, n))
        known = event_months(sink)
    finally:
        sink.close()
    shown = ", ".join(f"{m // 100}-{m % 100:02d}" for m in months) or "none"
    err.print(f"restated {len(months)} of {len(known)} months with events: {shown}")
