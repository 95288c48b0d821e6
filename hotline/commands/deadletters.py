"""``hotline deadletters``: list, show, redrive and purge dead letters; make a sealing key.

Each command asks the running worker first (it holds the embedded ClickHouse, which one
process may open; its pages take the supervisor's token, ``HOTLINE_API_TOKEN``), and opens
ClickHouse itself when no worker answers. What is printed is the redacted copy: a dead
letter's original is only ever opened to be sent again.
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hotline.commands.common import err, fail, load_settings
from hotline.settings import Settings

if TYPE_CHECKING:  # imported where used: `hotline --help` need not load ClickHouse and Kafka clients
    from hotline.sinks.clickhouse import ClickHouseStore
    from hotline.streams import redrive as rd

app = typer.Typer(
    help="Dead letters: list them by reason, look at one, send them through again once the cause is fixed.",
    no_args_is_help=True,
)
Reason = Annotated[str | None, typer.Option(help="A part of the reason (any case), e.g. 'unknown unit_id'.")]
Source = Annotated[str | None, typer.Option(help="The source topic, e.g. hotline.orders.")]
Since = Annotated[str | None, typer.Option(help="Dead-lettered at or after this time (ISO 8601).")]
Until = Annotated[str | None, typer.Option(help="Dead-lettered before this time (ISO 8601).")]
Unit = Annotated[str | None, typer.Option(help="The unit_id its record names.")]
Limit = Annotated[int, typer.Option(help="At most this many dead letters.")]


def _selection(pairs: list[tuple[str, str | None]]) -> rd.Selection:
    from hotline.streams import redrive as rd

    try:
        return rd.Selection.from_params([(k, v) for k, v in pairs if v is not None])
    except rd.BadSelection as exc:
        raise fail(str(exc), code=2) from None


# -- the worker's pages, or ClickHouse opened here -----------------------------------------------


class NoWorker(Exception):
    """No worker answers: the command opens ClickHouse itself."""


def _ask(settings: Settings, path: str, body: dict[str, Any] | None = None, timeout: float = 600) -> Any:
    """GET (or POST ``body``) to the running worker, with the CLI's token; :class:`NoWorker` if none answers."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{settings.web_url}{path}", data=data, method="GET" if data is None else "POST")
    request.add_header("Content-Type", "application/json")
    if settings.api_token:
        request.add_header("Authorization", f"Bearer {settings.api_token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        with suppress(ValueError, AttributeError):
            detail = str(json.loads(detail).get("error", detail))
        if exc.code == 404 and path.startswith("/deadletters/"):
            raise fail(detail) from None
        raise fail(f"the worker at {settings.web_url} refused: {exc.code} {detail}") from None
    except OSError as exc:
        raise NoWorker(str(exc)) from exc


@contextmanager
def _store(settings: Settings) -> Iterator[ClickHouseStore]:
    from hotline.sinks.clickhouse import ClickHouseStore

    try:
        store = ClickHouseStore(settings)
        store.migrate()
    except Exception as exc:  # chDB refuses a directory another process holds
        raise fail(f"no worker answers at {settings.web_url} and ClickHouse cannot be opened here: {exc}") from exc
    try:
        yield store
    finally:
        store.close()


def _either(settings: Settings, remote: Callable[[], Any], local: Callable[[ClickHouseStore], Any]) -> Any:
    """The worker's answer, or the same computed over ClickHouse opened here."""
    try:
        return remote()
    except NoWorker:
        with _store(settings) as store:
            return local(store)


# -- commands ------------------------------------------------------------------------------------


@app.command("list")
def list_(
    reason: Reason = None,
    source: Source = None,
    since: Since = None,
    until: Until = None,
    unit: Unit = None,
    redriven: Annotated[
        bool | None, typer.Option("--redriven/--not-redriven", help="Only those (not) redriven.")
    ] = None,
    limit: Limit = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Dead letters, oldest first, and how many there are per kind of reason (redacted)."""
    from hotline.streams import redrive as rd

    settings = load_settings()
    pairs = [("reason", reason), ("source", source), ("since", since), ("until", until), ("unit", unit)]
    if redriven is not None:
        pairs.append(("redriven", "yes" if redriven else "no"))
    selection = _selection([*pairs, ("limit", str(limit))])
    found = _either(
        settings,
        lambda: _ask(settings, "/deadletters?" + urllib.parse.urlencode(selection.params())),
        lambda store: rd.listing(store, selection),
    )
    if as_json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return
    _print_listing(found)


def _print_listing(found: dict[str, Any]) -> None:
    console = Console()
    counts = Table("dead letters", "reason", title="per reason")
    for reason, n in found["counts"].items():
        counts.add_row(str(n), escape(reason))
    console.print(counts)
    letters = Table("id", "dead-lettered", "reason", "original", "redriven", title="dead letters")
    for letter in found["letters"]:
        letters.add_row(
            letter["id"],
            letter["dead_lettered_at"][:19],
            escape(letter["reason"][:100]),
            letter["original"],
            (letter["redriven_at"] or "")[:19],
        )
    console.print(letters)


@app.command()
def show(
    letter_id: Annotated[str, typer.Argument(metavar="ID", help="topic:partition:offset, as list shows it.")],
) -> None:
    """One dead letter, redacted: its reason, source, time, original kept or not, redrive status."""
    from hotline.streams import redrive as rd

    settings = load_settings()
    try:
        rd.LetterId.parse(letter_id)
    except rd.BadSelection as exc:
        raise fail(str(exc), code=2) from None
    found = _either(
        settings,
        lambda: _ask(settings, f"/deadletters/{urllib.parse.quote(letter_id)}"),
        lambda store: rd.show(store, letter_id) or {"error": f"no dead letter {letter_id}"},
    )
    if "error" in found:
        raise fail(str(found["error"]))
    print(json.dumps(found, ensure_ascii=False, indent=2))


@app.command()
def redrive(
    ids: Annotated[list[str] | None, typer.Argument(metavar="[ID]...", help="Dead letters by id.")] = None,
    reason: Reason = None,
    source: Source = None,
    since: Since = None,
    until: Until = None,
    unit: Unit = None,
    limit: Limit = 10_000,
    again: Annotated[bool, typer.Option(help="Also those already redriven (the pipeline counts each once).")] = False,
) -> None:
    """Send the selected dead letters' original records again to their source topics, once the cause is fixed."""

    settings = load_settings()
    pairs: list[tuple[str, str | None]] = [("id", i) for i in ids or []]
    pairs += [("reason", reason), ("source", source), ("since", since), ("until", until), ("unit", unit)]
    selection = _selection([*pairs, ("limit", str(limit))])
    body = {"select": selection.params(), "again": again}
    result = _either(
        settings,
        lambda: _ask(settings, "/deadletters", body),
        lambda store: _redrive_here(store, selection, settings, again),
    )
    if "error" in result:
        raise fail(str(result["error"]), code=2)
    _print_redrive(result)
    if any(o["why_not"] for o in result["outcomes"]):
        raise typer.Exit(1)


def _redrive_here(store: ClickHouseStore, selection: rd.Selection, settings: Settings, again: bool) -> dict[str, Any]:
    from hotline.streams import redrive as rd

    try:
        return asyncio.run(rd.redrive(store, selection, settings, again)).view()
    except rd.BadSelection as exc:
        return {"error": str(exc)}


def _print_redrive(result: dict[str, Any]) -> None:
    from hotline.streams import redrive as rd

    for outcome in result["outcomes"]:
        if outcome["sent_to"]:
            print(f"{outcome['id']}: {rd.SENT}{outcome['sent_to']}")
        else:
            err.print(f"{escape(outcome['id'])}: cannot redrive: {escape(outcome['why_not'])}", soft_wrap=True)
    if result["already_redriven"]:
        print(f"{len(result['already_redriven'])} already redriven, not sent again (--again to send them anyway)")
    sent = sum(1 for o in result["outcomes"] if o["sent_to"])
    print(f"redriven: {sent}; cannot: {len(result['outcomes']) - sent}; already: {len(result['already_redriven'])}")


@app.command()
def purge() -> None:
    """Drop the sealed originals older than HOTLINE_DEADLETTER_RETENTION_DAYS (the redacted rows stay).

    Run with the worker stopped, or where ClickHouse is a server; a timer may run it daily."""
    from hotline.streams import redrive as rd

    settings = load_settings()
    with _store(settings) as store:
        n = rd.purge(store, settings.deadletter_retention_days)
    print(f"{n} sealed original(s) older than {settings.deadletter_retention_days} days dropped")


@app.command("new-key")
def new_key() -> None:
    """A fresh sealing key for HOTLINE_DEADLETTER_KEY (base64 of 32 random bytes), printed once."""
    from hotline.sinks import originals

    sys.stdout.write(originals.new_key() + "\n")
