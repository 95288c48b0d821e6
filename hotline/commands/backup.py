"""``hotline backup DIR`` and ``hotline restore DIR``: the store copied to files, and back.

An embedded chDB directory opens in one process only, so a backup reads the store where it is
open: through ``hotline store`` when ``HOTLINE_STORE_URL`` is set, else through the running
worker's pages (``/backup/…``, the office's token), else by opening ClickHouse here when no
process holds it. What is copied, in which order and why that is consistent while the worker
writes: ``hotline.sinks.backup``. A restore writes into an empty store that no process holds.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hotline.commands.common import err, fail, load_settings
from hotline.settings import Settings

if TYPE_CHECKING:
    from hotline.sinks.backup import Exported, Source
    from hotline.sinks.clickhouse import ClickHouseStore
    from hotline.sinks.remote import RemoteStore

EXPORT_TIMEOUT_S = 600.0  # a month of a large city's events is a few hundred MB


class FromWorker:
    """A backup read through the running worker's pages, which hold its ClickHouse."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._version: int | None = None

    def _get(self, path: str) -> tuple[bytes, dict[str, str]]:
        request = urllib.request.Request(f"{self.settings.web_url}{path}")
        if self.settings.api_token:
            request.add_header("Authorization", f"Bearer {self.settings.api_token}")
        with urllib.request.urlopen(request, timeout=EXPORT_TIMEOUT_S) as response:
            return response.read(), dict(response.headers)

    def version(self) -> int:
        if self._version is None:
            self.partitions("sink_offsets")
        assert self._version is not None
        return self._version

    def partitions(self, table: str) -> list[list[str]]:
        body, _ = self._get(f"/backup/{urllib.parse.quote(table)}")
        answer = json.loads(body)
        self._version = int(answer["schema_version"])
        return [[str(name), str(fingerprint)] for name, fingerprint in answer["partitions"]]

    def export(self, table: str, partition: str) -> Exported:
        from hotline.sinks.backup import FINGERPRINT_HEADER, LEDGER_HEADER, ROWS_HEADER, Exported

        query = urllib.parse.urlencode({"partition": partition})
        body, headers = self._get(f"/backup/{urllib.parse.quote(table)}?{query}")
        ledger = headers.get(LEDGER_HEADER)
        fingerprint = headers.get(FINGERPRINT_HEADER, "")
        return Exported(int(headers[ROWS_HEADER]), body, json.loads(ledger) if ledger else None, fingerprint)


class ThroughStore:
    """A backup read through ``hotline store``, which holds ClickHouse for every worker."""

    def __init__(self, remote: RemoteStore) -> None:
        self.remote = remote

    def version(self) -> int:
        return int(self.remote.schema_version or 0)

    def partitions(self, table: str) -> list[list[str]]:
        return self.remote.backup_partitions(table)

    def export(self, table: str, partition: str) -> Exported:
        return self.remote.backup_export(table, partition)


def _through_store(settings: Settings) -> ThroughStore:
    from hotline.sinks.remote import RemoteStore, StoreMismatch, StoreRefused, StoreUnavailable

    remote = RemoteStore(settings)
    try:
        remote.connect()
    except (StoreUnavailable, StoreRefused, StoreMismatch) as exc:
        raise fail(f"{exc} (HOTLINE_STORE_URL is set: start `hotline store`, or unset it)") from exc
    return ThroughStore(remote)


def _worker_answers(source: FromWorker) -> bool:
    """Whether a worker holds the store (its backup pages answer); refusals are said, not skipped."""
    try:
        source.version()
    except urllib.error.HTTPError as exc:
        raise fail(
            f"the worker at {source.settings.web_url} refused the backup: {exc.code} "
            f"{exc.read().decode(errors='replace')[:500]}"
        ) from exc
    except OSError:
        return False
    return True


def backup(
    directory: Annotated[Path, typer.Argument(file_okay=False, help="A new or empty directory for the copy.")],
    since: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="An earlier backup: its files of months unchanged since are linked in."),
    ] = None,
) -> None:
    """Copy every table of the store into DIR, with a manifest (rows, sha256, ledger): while the
    worker runs (through it, or through `hotline store`), or directly when no process holds it."""
    from hotline.sinks.backup import BackupError, Opened, write_backup

    settings = load_settings()

    def said(table: str, partition: str, rows: int, reused: bool) -> None:
        err.print(f"{table} {partition}: {rows} rows{' (unchanged: linked from --since)' if reused else ''}")

    if settings.store_url:
        source: Source = _through_store(settings)
        where = f"the store at {settings.store_url}"
    else:
        worker = FromWorker(settings)
        if _worker_answers(worker):
            source, where = worker, f"the worker at {settings.web_url}"
        else:
            sink = _open(settings, migrate=True)
            source, where = Opened(sink), f"ClickHouse at {settings.resolved_clickhouse_dsn}"
    try:
        manifest = write_backup(source, directory, settings.clickhouse_database, said, since)
    except (BackupError, OSError) as exc:
        raise fail(f"backup from {where} failed: {exc}") from exc
    finally:
        if isinstance(source, Opened):
            source.sink.close()
        elif isinstance(source, ThroughStore):
            source.remote.close()
    total = sum(manifest.rows(t) for t in manifest.tables)
    err.print(
        f"backed up {total} rows of schema version {manifest.schema_version} from {where} into {directory}",
        markup=False,
        soft_wrap=True,
    )


def restore(
    directory: Annotated[Path, typer.Argument(file_okay=False, help="A directory `hotline backup` wrote.")],
) -> None:
    """Restore a backup into an empty store (no process may hold it), checking every file's sha256
    and every table's rows, and migrating an older schema version; then start the worker on it."""
    from hotline.sinks.backup import BackupError
    from hotline.sinks.backup import restore as restore_into

    settings = load_settings()
    if settings.store_url:
        raise fail("HOTLINE_STORE_URL is set: restore with the store stopped and the variable unset")
    sink = _open(settings, migrate=False)
    try:
        restored = restore_into(sink, directory)
    except BackupError as exc:
        raise fail(str(exc)) from exc
    finally:
        sink.close()
    migrated = f", migrated to {restored.to_version}" if restored.to_version != restored.from_version else ""
    err.print(
        f"restored {sum(restored.rows.values())} rows of schema version {restored.from_version}{migrated} "
        f"into ClickHouse at {settings.resolved_clickhouse_dsn} (generation {restored.generation}): start the "
        "worker; it resumes from the restored ledger and Kafka delivers what came after, "
        "as far as its retention reaches",
        markup=False,
        soft_wrap=True,
    )


def _open(settings: Settings, *, migrate: bool) -> ClickHouseStore:
    """ClickHouse opened here; a clear failure when another process holds an embedded one."""
    from hotline.sinks.clickhouse import ClickHouseStore

    try:
        sink = ClickHouseStore(settings)
        if migrate:
            sink.migrate()
    except Exception as exc:  # chDB refuses a directory another process holds
        raise fail(
            f"cannot open ClickHouse at {settings.resolved_clickhouse_dsn}: {exc} (a process holds it: "
            f"a worker whose pages do not answer at {settings.web_url}, or `hotline store`)"
        ) from exc
    return sink
