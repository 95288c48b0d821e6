"""``hotline``: the one command a hotline office and its engineers use."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import signal
import sys
import time
import urllib.error
from collections.abc import Callable
from datetime import date
from enum import StrEnum
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Literal, Union, get_args, get_origin

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hotline.heap import for_long_runs
from hotline.settings import Settings, get_settings

if TYPE_CHECKING:
    from hotline.sinks.clickhouse import ClickHouseStore
    from hotline.sinks.store import Store

app = typer.Typer(help="12345 热线工单数据管道 (12345 hotline work-order pipeline).", no_args_is_help=True)
kafka_app = typer.Typer(help="A local Kafka (KRaft): one node, or a cluster with --brokers 3.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
deploy_app = typer.Typer(help="What a production install needs, generated from the code.", no_args_is_help=True)
app.add_typer(deploy_app, name="deploy")
err = Console(stderr=True)


class UnitsFormat(StrEnum):
    table = "table"
    csv = "csv"


class BulletinFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    xlsx = "xlsx"
    docx = "docx"
    md = "md"


def version() -> str:
    """The installed distribution's version (``hotline12345``), as ``pip`` knows it."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("hotline12345")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        print(f"hotline {version()}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    pass


def _fail(message: str, code: int = 1) -> typer.Exit:
    """One line per line of ``message``, taken literally and never wrapped (logs read it as written)."""
    from rich.markup import escape

    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


# -- configuration --------------------------------------------------------------------------
def _settings(make: Callable[[], Settings] | None = None) -> Settings:
    """The configuration (``get_settings()``, or what ``make`` builds): a malformed ``HOTLINE_``
    variable stops the command with one line naming it (exit 2, a usage error), instead of
    pydantic's page of traceback. The value is never echoed: it may be a token."""
    try:
        return (make or get_settings)()
    except (SettingsError, ValidationError) as exc:
        raise _fail(_misconfigured(exc), code=2) from None


_UNPARSED = re.compile(r'field "(?P<field>\w+)" from source "(?P<source>\w+)"')
_EXAMPLES = {  # settings whose default (empty) shows no shape
    "access_tokens": '{"<token>": "<unit_id, or * for a supervisor>"}',
    "webhooks": '{"<unit_id>": "https://…"}',
}


def _variable(field: str) -> str:
    """The environment variable of a settings field (pydantic-settings matches it in any case)."""
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def _misconfigured(exc: SettingsError | ValidationError) -> str:
    """``VARIABLE: what is wrong; what a value looks like``, from what pydantic says: the field
    name only, never the input, nor the rest of an error's location (a dict key can be a token)."""
    if isinstance(exc, SettingsError):  # a complex value (dict, list) that is not JSON
        found = _UNPARSED.search(str(exc))
        if found is None:
            return f"the HOTLINE_ settings: {exc}"
        cause = exc.__cause__
        wrong = "cannot be parsed"
        if isinstance(cause, json.JSONDecodeError):  # its message says where, never what
            wrong = f"not JSON ({cause.msg} at character {cause.pos + 1})"
        where = " (in .env)" if found["source"] == "DotEnvSettingsSource" else ""
        return f"{_variable(found['field'])}{where}: {wrong}; {_form(found['field'])}"
    problems = exc.errors(include_url=False, include_context=False, include_input=False)
    fields = list(dict.fromkeys(str(p["loc"][0]) for p in problems if p["loc"]))
    first = problems[0]
    wrong = first["msg"].removeprefix("Value error, ")
    wrong = wrong[:1].lower() + wrong[1:]
    if not first["loc"]:  # the settings together (a model validator): its message names the fields
        return f"the HOTLINE_ settings: {wrong}"
    name = str(first["loc"][0])
    inside = "an entry: " if len(first["loc"]) > 1 else ""
    also = f" (also wrong: {', '.join(_variable(f) for f in fields[1:])})" if len(fields) > 1 else ""
    return f"{_variable(name)}: {inside}{wrong}; {_form(name)}{also}"


def _form(field: str) -> str:
    """What a value of ``field`` looks like, from its type (its default as the example)."""
    info = Settings.model_fields.get(field)
    if info is None:
        return "see hotline/settings.py"
    kind = info.annotation
    if get_origin(kind) in (Union, UnionType):  # X | None: an X
        kind = next(a for a in get_args(kind) if a is not type(None))
    default = info.get_default(call_default_factory=True)
    origin = get_origin(kind)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(kind))
    if origin is dict:
        return f"a JSON object, e.g. {_EXAMPLES.get(field) or json.dumps(default, ensure_ascii=False)}"
    if origin is list:
        return f"a JSON array, e.g. {json.dumps(default)}"
    if kind is bool:
        return "true or false"
    if kind is int:
        return f"a whole number, e.g. {default}"
    if kind is float:
        return f"a number, e.g. {default}"
    return "a string"


# -- kafka ----------------------------------------------------------------------------
@kafka_app.command("start")
def kafka_start(
    brokers: Annotated[
        int | None, typer.Option(min=1, help="Nodes of the local cluster (default HOTLINE_KAFKA_BROKERS, 1).")
    ] = None,
) -> None:
    """Start the broker(s) (formats storage the first time; safe to call twice; restarts a stopped node)."""
    from hotline.deploy import kafka

    settings = _settings() if brokers is None else _settings(lambda: Settings(kafka_brokers=brokers))
    try:
        with err.status("starting Kafka (first run downloads the jars with Maven)…"):
            err.print(kafka.start(settings))
            kafka.ensure_topics(settings, kafka.pipeline_topics(settings))
    except RuntimeError as exc:
        raise _fail(str(exc)) from None
    if settings.kafka_brokers > 1 and kafka.managed(settings):
        err.print(f"clients: HOTLINE_KAFKA_BOOTSTRAP={kafka.local_bootstrap(settings)}", soft_wrap=True)


@kafka_app.command("node")
def kafka_node(node: int) -> None:
    """Run node NODE of the local cluster in the foreground (what deploy/systemd/hotline-kafka@.service runs)."""
    from hotline.deploy import kafka

    try:
        kafka.run_node(_settings(), node)
    except RuntimeError as exc:
        raise _fail(str(exc)) from None


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the local broker, or every node of the local cluster."""
    from hotline.deploy import kafka

    print(kafka.stop(_settings()))


@kafka_app.command("status")
def kafka_status() -> None:
    """Say whether the local broker runs (node by node for a cluster)."""
    from hotline.deploy import kafka

    print(kafka.status(_settings()))


# -- deploy ---------------------------------------------------------------------------
@deploy_app.command("clickhouse-ddl")
def clickhouse_ddl(
    cluster: Annotated[str, typer.Option(help="The cluster's name in the servers' remote_servers.")],
    database: Annotated[str | None, typer.Option(help="Default: HOTLINE_CLICKHOUSE_DATABASE.")] = None,
) -> None:
    """ClickHouse server DDL (replicated + Distributed tables ON CLUSTER) generated from the pipeline's tables."""
    from hotline.deploy.clickhouse_cluster import script

    try:
        print(script(cluster, database or _settings().clickhouse_database), end="")
    except ValueError as exc:
        raise _fail(str(exc)) from None


# -- contract -------------------------------------------------------------------------
@app.command()
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


@app.command()
def schema(out: Annotated[Path | None, typer.Option(help="Write here instead of the repo's file.")] = None) -> None:
    """Export the event contract as JSON Schema."""
    from hotline.schemas.events import SCHEMA_PATH, write_json_schema

    print(write_json_schema(out or SCHEMA_PATH))


# -- pipeline -------------------------------------------------------------------------
@app.command()
def worker(loglevel: str = "info") -> None:
    """Run the pipeline: consume, keep state, sink to ClickHouse, serve HTTP."""
    import logging

    import faust

    from hotline import web
    from hotline.logs import install
    from hotline.sinks.store import describe
    from hotline.streams.app import Pipeline

    for_long_runs()
    pipeline = Pipeline(_settings())
    web.register(pipeline)
    try:
        _ = pipeline.store  # open the store before joining Kafka: a locked chDB directory fails here, clearly
    except Exception as exc:
        raise _fail(f"cannot open {describe(pipeline.settings)}: {exc}") from exc
    try:
        _wait_for_kafka(pipeline.settings)
    except BaseException:  # stopped while waiting (Ctrl-C, SIGTERM): the store is closed, not left open
        pipeline.store.close()
        raise

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            """Faust has just replaced the root handlers: from here on, escape and rate-limit what they write."""
            super().on_setup_root_logger(logger, level)
            install(logger, pipeline.settings.log_repeat_interval_s)

    Worker(pipeline.app, loglevel=loglevel, quiet=True).execute_from_commandline()


BROKER_WAIT_MAX_S = 30.0  # the longest wait between two tries to reach the broker


def _wait_for_kafka(settings: Settings) -> None:
    """Until a broker answers: a service started before its broker (a machine's boot, a broker
    restarting) waits with backoff (1 s doubling to 30 s) and says so once per try, in one line,
    instead of exiting with Faust's traceback."""
    delay = 1.0
    while not _kafka_answers(settings):
        err.print(
            f"waiting: no Kafka broker answers at {settings.kafka_bootstrap} (start one: hotline kafka start, "
            f"or set HOTLINE_KAFKA_BOOTSTRAP); trying again in {delay:.0f}s",
            markup=False,
            highlight=False,
        )
        time.sleep(delay)
        delay = min(BROKER_WAIT_MAX_S, delay * 2)


def _kafka_answers(settings: Settings) -> bool:
    """Whether a broker serves the bootstrap, asked before Faust starts: Faust meets a broker that
    does not answer inside its own loop, logs a page of traceback and exits, and nothing here can
    catch it. aiokafka's connection-error lines are kept quiet meanwhile: one line says it all."""
    import logging

    from hotline.deploy import kafka

    client_log = logging.getLogger("aiokafka")
    was, client_log.disabled = client_log.disabled, True
    try:
        return kafka.answers(settings, timeout=15)
    finally:
        client_log.disabled = was


@app.command()
def store() -> None:
    """Own ClickHouse for every worker: open it, then serve the sink's calls over HTTP (HOTLINE_STORE_*)."""
    import logging

    from hotline.logs import install
    from hotline.storage import run

    settings = _settings()
    if not settings.store_token:
        raise _fail("set HOTLINE_STORE_TOKEN (and the same on every worker, with HOTLINE_STORE_URL)")
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    install(logging.getLogger(), settings.log_repeat_interval_s)
    for_long_runs()
    try:
        run(settings)
    except Exception as exc:  # a chDB directory another process holds, a newer schema, a port taken
        raise _fail(f"the store did not start on {settings.store_listen_url}: {type(exc).__name__}: {exc}") from exc


@app.command()
def notify() -> None:
    """Deliver alerts to people: read the alerts topic in its own group, send each to its unit's channels
    (HOTLINE_ALERT_CHANNELS), retry until delivered, record every delivery in ClickHouse."""
    import logging

    from hotline.logs import install
    from hotline.streams import notify as notifier

    settings = _settings()
    if not settings.alert_channels:
        raise _fail("set HOTLINE_ALERT_CHANNELS: no unit has a channel to deliver to")
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    install(logging.getLogger(), settings.log_repeat_interval_s)
    _wait_for_kafka(settings)
    asyncio.run(notifier.until_stopped(settings))  # SIGTERM and Ctrl-C stop it cleanly


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL of events")],
    wait: Annotated[bool, typer.Option(help="Return once ClickHouse reflects every event.")] = False,
    timeout: float = 600,
) -> None:
    """Produce a file of events to Kafka, with a progress bar."""
    _replay(_settings(), file, wait, timeout)


def _replay(settings: Settings, file: Path, wait: bool, timeout: float) -> None:
    from rich.markup import escape

    from hotline.replay import produce, read_records, wait_until_sunk

    try:
        records = list(read_records(file, settings))
    except ValueError as exc:
        raise _fail(str(exc)) from exc
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
                raise _fail(str(exc)) from exc
    err.print(f"replayed {len(records)} records from {file}")


@app.command()
def bulletin(
    month: Annotated[str, typer.Option(help="YYYY-MM, in Asia/Shanghai")],
    fmt: Annotated[BulletinFormat, typer.Option("--format")] = BulletinFormat.table,
    out: Annotated[Path | None, typer.Option(help="Write to a file (required for xlsx/docx on a terminal).")] = None,
    issue: Annotated[
        bool, typer.Option("--issue", help="Issue the month: freeze its figures and documents in ClickHouse.")
    ] = False,
    number: Annotated[int | None, typer.Option(help="With --issue: the issue's number (第N期).")] = None,
    total_number: Annotated[int | None, typer.Option(help="With --issue: the running number (总第T期).")] = None,
    issue_date: Annotated[
        str | None, typer.Option("--date", help="With --issue: the issue date, YYYY-MM-DD [default: today].")
    ] = None,
    reissue: Annotated[bool, typer.Option(help="With --issue: issue a month that was issued before.")] = False,
    issued: Annotated[bool, typer.Option("--issued", help="The issued document, byte for byte.")] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="Current figures against the issued ones (only differing cells).")
    ] = False,
) -> None:
    """The month's bulletin (通报): from the running worker, or from ClickHouse directly.

    --issue, --issued and --diff read and write the issued bulletins in ClickHouse directly.
    """
    if sum((issue, issued, diff)) > 1:
        raise _fail("choose one of --issue, --issued and --diff")
    settings = _settings()
    if issue:
        body = _issue(settings, month, fmt.value, number, total_number, issue_date, reissue)
    elif issued:
        body = _issued(settings, month, fmt.value)
    elif diff:
        body = _diff(settings, month, fmt.value)
    else:
        body = _bulletin_bytes(settings, month, fmt.value)
    _write(body, fmt.value, out)


def _write(body: bytes, fmt: str, out: Path | None) -> None:
    if out is not None:
        out.write_bytes(body)
        err.print(f"wrote {out}")
    elif fmt in ("xlsx", "docx") and sys.stdout.isatty():
        raise _fail(f"{fmt} is binary: add --out FILE")
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()


def _valid_month(month: str) -> None:
    from hotline.reports.bulletin import month_key

    try:
        month_key(month)
    except ValueError as exc:
        raise _fail(str(exc)) from exc


def _bulletin_bytes(settings: Settings, month: str, fmt: str) -> bytes:
    """Ask the worker when one runs: it owns the on-disk chDB, which one process may open."""
    from hotline.client import worker_get

    _valid_month(month)
    try:
        body = worker_get(settings, f"/bulletin/{month}?format={fmt}", timeout=120)
        return json.dumps(body, ensure_ascii=False, indent=2).encode() if isinstance(body, dict) else bytes(body)
    except urllib.error.HTTPError as exc:
        raise _fail(
            f"the worker at {settings.web_url} refused: {exc.code} {exc.read().decode(errors='replace')}"
        ) from exc
    except OSError:
        pass
    from hotline.reports.edition import assemble
    from hotline.reports.render import render

    sink = _open_store(settings, f"no worker answers at {settings.web_url}")
    try:
        if sink.generation().restate_pending:
            raise _fail("this store's day windows are not built yet: run `hotline restate` (or start the worker)")
        return render(assemble(sink, month), fmt)
    finally:
        sink.close()


def _open_store(settings: Settings, why: str = "the worker may hold it: stop it first") -> ClickHouseStore:
    """The configured ClickHouse, migrated; a clear failure when another process holds an embedded one."""
    from hotline.sinks.clickhouse import ClickHouseStore

    try:
        sink = ClickHouseStore(settings)
        sink.migrate()
    except Exception as exc:  # chDB refuses a directory another process holds
        raise _fail(f"cannot open ClickHouse at {settings.resolved_clickhouse_dsn} and {why}: {exc}") from exc
    return sink


def _no_worker_running(settings: Settings) -> None:
    """Refuse while a worker of the group runs, as Kafka's group coordinator knows it: a running
    worker would overwrite the windows an import or restatement rewrites under it. Kafka knows at
    once; the store knows a worker only from its next call (up to minutes after the store restarts)."""
    from hotline.deploy import kafka

    if not _kafka_answers(settings):
        err.print(f"warning: no Kafka broker answers at {settings.kafka_bootstrap}: cannot check for running workers")
        return
    members = kafka.group_members(settings)
    if members:
        raise _fail(
            f"{len(members)} worker(s) of group {settings.app_id!r} are running ({', '.join(members[:5])}): "
            "stop them first (an import or a restatement rewrites what they write)"
        )


def _open_for_history(settings: Settings) -> Store:
    """Through ``hotline store`` when one is configured (it holds ClickHouse, and refuses while a
    worker runs: ``RemoteStore.begin_history``), else ClickHouse opened here; either way only
    while no worker of the group runs (:func:`_no_worker_running`)."""
    _no_worker_running(settings)
    if not settings.store_url:
        return _open_store(settings)
    from hotline.sinks.remote import RemoteStore, StoreMismatch, StoreRefused, StoreUnavailable
    from hotline.sinks.store import open_store

    try:
        remote = open_store(settings)
    except (StoreUnavailable, StoreRefused, StoreMismatch) as exc:
        raise _fail(f"{exc} (HOTLINE_STORE_URL is set: start `hotline store`, or unset it)") from exc
    assert isinstance(remote, RemoteStore)  # store_url is set
    try:
        remote.begin_history()  # refused while a worker runs: the refusal names them
    except (StoreUnavailable, StoreRefused) as exc:
        remote.close()
        raise _fail(str(exc)) from None
    return remote


def _progress(what: str) -> Progress:
    return Progress(
        TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=False
    )


@app.command("import")
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
    from hotline.schemas.registry import default_registry
    from hotline.sinks.store import StoreRaced
    from hotline.streams.deadlines import limits_of
    from hotline.streams.history import SHOWN_DEADLETTERS, UnreadableFile, fingerprint, import_file

    for_long_runs()
    settings = _settings()
    try:
        digest, lines = fingerprint(file)  # before the store opens: a file that cannot be read fails alone
    except UnreadableFile as exc:
        raise _fail(str(exc)) from None
    sink = _open_for_history(settings)
    try:
        started = time.monotonic()
        with _progress(f"importing {file.name}") as bar:
            task = bar.add_task("import", total=lines)
            tally = import_file(
                sink,
                file,
                default_registry(),
                limits_of(settings),
                lambda n: bar.advance(task, n),
                digest=digest,
                max_events=settings.max_order_events,
            )
        elapsed = max(time.monotonic() - started, 1e-9)
    except StoreRaced as raced:
        raise _fail(f"a worker stored events of this file meanwhile ({raced}): run the import again") from None
    except UnreadableFile as exc:  # it broke off midway: the lines before are stored, with their progress
        raise _fail(str(exc)) from None
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


@app.command()
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
        raise _fail(str(exc)) from exc
    for_long_runs()
    settings = _settings()
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


_HELD = (
    "issued bulletins are read and written in ClickHouse directly; with the embedded chDB, stop the worker "
    "first (one process holds its directory), or use a ClickHouse server (HOTLINE_CLICKHOUSE_DSN)"
)


def _issue_date(value: str | None, settings: Settings) -> date:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    if value is None:
        return datetime.now(ZoneInfo(settings.timezone)).date()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise _fail(f"--date must look like 2019-12-26, got {value!r}") from exc


def _issue(
    settings: Settings,
    month: str,
    fmt: str,
    number: int | None,
    total_number: int | None,
    when: str | None,
    reissue: bool,
) -> bytes:
    """Freeze the month as issued (every format's bytes), refusing a second issue without --reissue."""
    from hotline.reports.edition import assemble
    from hotline.reports.issued import AlreadyIssued, Issue, freeze
    from hotline.reports.render import FORMATS, render

    _valid_month(month)
    if number is None or total_number is None:
        raise _fail("--issue needs --number N and --total-number T (第N期（总第T期）)")
    if number < 1 or total_number < number:
        raise _fail(f"--number must be at least 1 and --total-number at least --number, got {number}, {total_number}")
    issue = Issue(number, total_number, _issue_date(when, settings))
    sink = _open_store(settings, _HELD)
    try:
        edition = assemble(sink, month, issue=issue)
        documents = {f: render(edition, f) for f in FORMATS}
        try:
            revision = freeze(sink, edition, documents, reissue=reissue)
        except AlreadyIssued as exc:
            raise _fail(str(exc)) from exc
    finally:
        sink.close()
    again = f", revision {revision} (the earlier issue stays on record)" if revision > 1 else ""
    err.print(
        f"issued {month} as {issue.numbering}, dated {issue.date_text}{again}: "
        f"{', '.join(FORMATS)} frozen; `hotline bulletin --month {month} --issued --format docx` returns them",
        markup=False,
        soft_wrap=True,
    )
    return documents[fmt]


def _issued(settings: Settings, month: str, fmt: str) -> bytes:
    """The document as it was issued, from ClickHouse, whatever arrived since."""
    from hotline.reports.issued import latest_issue

    _valid_month(month)
    sink = _open_store(settings, _HELD)
    try:
        found = latest_issue(sink, month)
    finally:
        sink.close()
    if found is None:
        raise _fail(f"{month} has not been issued: issue it with `hotline bulletin --month {month} --issue ...`")
    return found.documents[fmt]


def _diff(settings: Settings, month: str, fmt: str) -> bytes:
    """Per unit and headline, each printed figure that differs now from the issued bulletin."""
    from hotline.reports.bulletin import build_bulletin
    from hotline.reports.issued import differences, latest_issue

    _valid_month(month)
    sink = _open_store(settings, _HELD)
    try:
        found = latest_issue(sink, month)
        if found is None:
            raise _fail(f"{month} has not been issued: nothing to compare with")
        changed = differences(found.bulletin, build_bulletin(sink, month).to_json())
    finally:
        sink.close()
    if fmt == "json":
        report = {
            "month": month,
            "issue": found.issue.to_json(),
            "revision": found.revision,
            "differences": [d.to_json() for d in changed],
        }
        return json.dumps(report, ensure_ascii=False, indent=2).encode()
    title = f"{month}: 当前数据与已签发通报（{found.issue.numbering}，{found.issue.date_text}）的差异"
    if not changed:
        return f"{title}\n无差异。\n".encode()
    table = Table("单位", "项目", "签发时", "当前", title=title)
    for d in changed:
        table.add_row(d.where, d.item, d.issued, d.current)
    console = Console(file=io.StringIO(), width=160, force_terminal=False, color_system=None)
    console.print(table)
    return console.file.getvalue().encode("utf-8")  # type: ignore[attr-defined]


@app.command()
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


@app.command()
def demo(
    fmt: Annotated[BulletinFormat, typer.Option("--format")] = BulletinFormat.table,
    serve: Annotated[
        bool, typer.Option(help="Keep the worker running afterwards, for /monitor (Ctrl-C stops).")
    ] = False,
) -> None:
    """The whole pipeline once: Kafka, a worker, the seed month replayed, the bulletin printed."""
    import secrets

    from hotline import seed
    from hotline.deploy.worker import WorkerProcess

    settings = _settings()
    if serve and not settings.access_tokens:
        token = secrets.token_urlsafe(16)  # the monitor always needs one: a supervisor's, for this run
        settings = settings.model_copy(update={"access_tokens": {token: "*"}, "api_token": token})
    month = str(json.loads(seed.HEADLINE.read_text(encoding="utf-8"))["period"])
    events = settings.var_path / "demo" / f"{month}.jsonl"
    err.rule("1/4 Kafka")
    kafka_start()
    err.rule("2/4 生成事件 generating the month")
    generate(out=events)
    err.rule("3/4 worker + replay")
    worker = WorkerProcess(settings)
    try:
        worker.start()
    except RuntimeError as exc:
        raise _fail(f"{exc}\n(see {worker.log})") from exc
    try:
        _replay(settings, events, wait=True, timeout=900)
        err.rule("4/4 通报 bulletin")
        sys.stdout.buffer.write(_bulletin_bytes(settings, month, fmt.value))
        sys.stdout.flush()
        if serve:
            _serve(settings, f"{month}-{_last_day(month)}")
    finally:
        worker.stop()
    left = _kafka_left_running(settings)
    if left:
        err.print(left, markup=False, soft_wrap=True)


def _kafka_left_running(settings: Settings) -> str | None:
    """What to say about the broker the demo started (or found) and leaves running, if it is ours."""
    from hotline.deploy import kafka

    if kafka.managed_port(settings) is None:
        return None
    state = kafka.status(settings)
    if not state.startswith(("running", "starting")):
        return None  # external, or a broker some other var directory manages
    same_var = f" (with HOTLINE_VAR_DIR={settings.var_path})" if settings.var_dir != Path("var") else ""
    return f"Kafka keeps running in the background ({state}); stop it with `hotline kafka stop`{same_var}."


def _last_day(month: str) -> str:
    import calendar

    year, mon = (int(x) for x in month.split("-"))
    return f"{calendar.monthrange(year, mon)[1]:02d}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve(settings: Settings, day: str) -> None:
    """Point at the live pages and wait for Ctrl-C."""
    token = settings.api_token or next(iter(settings.access_tokens), "")
    err.rule("实时监测 live monitor")
    err.print(f"{settings.web_url}/monitor?token={token}&date={day}")
    err.print(f"{settings.web_url}/alerts?token={token}   (server-sent events)")
    err.print(f"{settings.web_url}/bulletin/{day[:7]}?format=docx&token={token}")
    err.print("Ctrl-C stops the worker.")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the worker too, not only Ctrl-C
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


@app.command()
def status() -> None:
    """What the running worker has sunk: events, dead letters, offsets."""
    from hotline.client import worker_get

    try:
        print(json.dumps(worker_get(_settings(), "/status"), ensure_ascii=False, indent=2))
    except OSError as exc:
        raise _fail(f"no worker answers at {_settings().web_url}: {exc}") from exc


def main() -> None:
    app()
