"""``hotline bulletin``: the month's bulletin (通报) printed or written, issued (frozen in
ClickHouse), read back as issued, or compared with what was issued."""

from __future__ import annotations

import io
import json
import sys
import urllib.error
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hotline.commands.common import err, fail, load_settings, open_clickhouse
from hotline.settings import Settings


class BulletinFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    xlsx = "xlsx"
    docx = "docx"
    md = "md"


def bulletin(
    month: Annotated[str | None, typer.Option(help="A month, YYYY-MM (the same as --period YYYY-MM).")] = None,
    period: Annotated[
        str | None, typer.Option(help="2019-W47 (a week), 2019-11, 2019-Q4, 2019, or 2019-11-04..2019-11-10.")
    ] = None,
    from_day: Annotated[str | None, typer.Option("--from", help="With --to: any range of days, YYYY-MM-DD.")] = None,
    to_day: Annotated[str | None, typer.Option("--to", help="The range's last day, included.")] = None,
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
    """The bulletin (通报) of a week, month, quarter, year or range of days: from the running worker,
    or from ClickHouse directly. It compares with the previous period (环比) and the same period a
    year before (同比) only when both are complete, and says why not otherwise.

    --issue, --issued and --diff read and write the issued bulletins in ClickHouse directly.
    """
    month = _period_key(month, period, from_day, to_day)
    if sum((issue, issued, diff)) > 1:
        raise fail("choose one of --issue, --issued and --diff")
    settings = load_settings()
    if issue:
        body = _issue(settings, month, fmt.value, number, total_number, issue_date, reissue)
    elif issued:
        body = _issued(settings, month, fmt.value)
    elif diff:
        body = _diff(settings, month, fmt.value)
    else:
        body = bulletin_bytes(settings, month, fmt.value)
    _write(body, fmt.value, out)


def _write(body: bytes, fmt: str, out: Path | None) -> None:
    if out is not None:
        out.write_bytes(body)
        err.print(f"wrote {out}")
    elif fmt in ("xlsx", "docx") and sys.stdout.isatty():
        raise fail(f"{fmt} is binary: add --out FILE")
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()


def _valid_month(month: str) -> None:
    """A period's key (a month's, or any :mod:`hotline.reports.periods` form), or a clear failure."""
    from hotline.reports.periods import parse

    try:
        parse(month)
    except ValueError as exc:
        raise fail(str(exc)) from exc


def _period_key(month: str | None, period: str | None, from_day: str | None, to_day: str | None) -> str:
    """The one period the options name (--month is a month's --period), as its key."""
    from hotline.reports.periods import between, parse

    ranged = from_day is not None or to_day is not None
    if sum((month is not None, period is not None, ranged)) != 1:
        raise fail("name one period: --period (2019-W47, 2019-11, 2019-Q4, 2019), --month, or --from and --to")
    try:
        if ranged:
            if from_day is None or to_day is None:
                raise ValueError("--from and --to go together")
            return between(date.fromisoformat(from_day), date.fromisoformat(to_day)).key
        if month is not None and parse(month).kind.name != "MONTH":
            raise ValueError(f"--month must look like 2019-11, got {month!r}")
        return parse(str(month or period)).key
    except ValueError as exc:
        raise fail(str(exc)) from exc


def bulletin_bytes(settings: Settings, month: str, fmt: str) -> bytes:
    """Ask the worker when one runs: it owns the on-disk chDB, which one process may open."""
    from hotline.client import worker_get

    _valid_month(month)
    try:
        body = worker_get(settings, f"/bulletin/{month}?format={fmt}", timeout=120)
        return json.dumps(body, ensure_ascii=False, indent=2).encode() if isinstance(body, dict) else bytes(body)
    except urllib.error.HTTPError as exc:
        raise fail(
            f"the worker at {settings.web_url} refused: {exc.code} {exc.read().decode(errors='replace')}"
        ) from exc
    except OSError:
        pass
    from hotline.reports.edition import assemble
    from hotline.reports.render import render
    from hotline.sinks.units import stored_registry

    sink = open_clickhouse(settings, f"no worker answers at {settings.web_url}")
    try:
        if sink.generation().restate_pending:
            raise fail("this store's day windows are not built yet: run `hotline restate` (or start the worker)")
        return render(assemble(sink, month, stored_registry(sink)), fmt)
    finally:
        sink.close()


HELD = (
    "issued bulletins are read and written in ClickHouse directly; with the embedded chDB, stop the worker "
    "first (one process holds its directory), or use a ClickHouse server (HOTLINE_CLICKHOUSE_DSN)"
)


def _issue_date(value: str | None, settings: Settings) -> date:
    from datetime import datetime

    from hotline.schemas.events import TZ  # the office's time zone (its profile)

    if value is None:
        return datetime.now(TZ).date()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise fail(f"--date must look like 2019-12-26, got {value!r}") from exc


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
    from hotline.sinks.units import stored_registry

    _valid_month(month)
    if number is None or total_number is None:
        raise fail("--issue needs --number N and --total-number T (第N期（总第T期）)")
    if number < 1 or total_number < number:
        raise fail(f"--number must be at least 1 and --total-number at least --number, got {number}, {total_number}")
    issue = Issue(number, total_number, _issue_date(when, settings))
    sink = open_clickhouse(settings, HELD)
    try:
        edition = assemble(sink, month, stored_registry(sink), issue=issue)
        documents = {f: render(edition, f) for f in FORMATS}
        try:
            revision = freeze(sink, edition, documents, reissue=reissue)
        except AlreadyIssued as exc:
            raise fail(str(exc)) from exc
    finally:
        sink.close()
    again = f", revision {revision} (the earlier issue stays on record)" if revision > 1 else ""
    err.print(
        f"issued {month} as {issue.numbering}, dated {issue.date_text}{again}: "
        f"{', '.join(FORMATS)} frozen; `hotline bulletin --period {month} --issued --format docx` returns them",
        markup=False,
        soft_wrap=True,
    )
    return documents[fmt]


def _issued(settings: Settings, month: str, fmt: str) -> bytes:
    """The document as it was issued, from ClickHouse, whatever arrived since."""
    from hotline.reports.issued import latest_issue

    _valid_month(month)
    sink = open_clickhouse(settings, HELD)
    try:
        found = latest_issue(sink, month)
    finally:
        sink.close()
    if found is None:
        raise fail(f"{month} has not been issued: issue it with `hotline bulletin --period {month} --issue ...`")
    return found.documents[fmt]


def _diff(settings: Settings, month: str, fmt: str) -> bytes:
    """Per unit and headline, each printed figure that differs now from the issued bulletin."""
    from hotline.reports.bulletin import build_bulletin
    from hotline.reports.issued import differences, latest_issue
    from hotline.sinks.units import stored_registry

    _valid_month(month)
    sink = open_clickhouse(settings, HELD)
    try:
        found = latest_issue(sink, month)
        if found is None:
            raise fail(f"{month} has not been issued: nothing to compare with")
        changed = differences(found.bulletin, build_bulletin(sink, month, stored_registry(sink)).to_json())
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
