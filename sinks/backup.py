"""A copy of every table of the store, and a store restored from one.

Why Native files: ClickHouse's own column format carries each column's name and exact type, so
``DateTime64(3, '<the office's zone>')`` (ticks since the epoch, not local text), ``Nullable``, arrays,
``Decimal`` and ``LowCardinality`` come back bit for bit, with no text escaping to get wrong.
Each file is gzip'd (written with no timestamp, so the same rows give the same bytes) and listed
in ``manifest.json`` with its rows and sha256; the manifest is written last, so a backup cut short
has none and is refused by restore.

Why this order (:data:`ORDER`), while the worker goes on writing: every write of a batch and
every table's copy run under the store's one lock, so each copy is the table as it stood between
two batches. The progress ledger is copied first: every batch it covers was stored before, so
every later copy holds it. A worker on the restored store resumes from that ledger and Kafka
delivers the rest again; that is exact because

* the order states are copied before the windows, the returns and the events: a worker reads an
  order back from its ``seen`` events that the events copy holds (a later copy: all of them),
  i.e. its state after some batch at or past the ledger; it refolds what comes after exactly as
  the first time, so each re-delivered event moves the same counters as it first did;
* the day windows are copied after the order states: a window is a source partition's absolute
  count at ``version`` (the last offset applied), so a re-delivered event's step the copy holds is
  skipped by that version and one it does not hold is applied; nothing is counted twice or lost;
* every table is a ReplacingMergeTree keyed by what makes a row unique (events by id, dead
  letters by source offset, order states and windows by key with a version, returns by order and
  month), so rows written again on the re-delivery replace their copies.

Restore writes into an empty store only, and migrates a backup of an older schema version to
this one. It records a generation (``restore``): Faust's changelog of the order table survives a
lost disk in Kafka and holds states newer than the backup, so a worker then folds on no state of
an older generation; it reads the order back from ClickHouse, or, when the restored store does
not hold it, starts it again from what Kafka re-delivers (``streams.state.WorkerState.states``).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.migrations import MIGRATIONS, SCHEMA_VERSION, SCHEMA_VERSION_DDL
from hotline.sinks.tables import TABLES

# The worker's ``/backup/{table}`` answer (``hotline backup`` while a worker holds the store).
ROWS_HEADER = "X-Hotline-Rows"  # rows in the Native body
LEDGER_HEADER = "X-Hotline-Ledger"  # and, for the ledger, its offsets as JSON
FINGERPRINT_HEADER = "X-Hotline-Fingerprint"  # and, for a month partition, its fingerprint

BACKUP_FORMAT = 1  # of the manifest and its files
MANIFEST = "manifest.json"
RESTORED = "restore"  # the kind of the generation a restore records
# The copy order (see the module's docstring): the ledger first, order states before the windows,
# returns and events; the tables the stream does not write, after.
ORDER = (
    "sink_offsets",
    "order_states",
    "order_returns",
    "unit_windows",
    "events",
    "deadletter",
    "unit_counters",
    "generations",
    "partition_claims",
    "bulletin_issues",
    "unit_registry",
    "coverage_declared",
    "alert_deliveries",
    "schema_version",
)
# Copied a month partition at a time: the largest table, and one whose copies need not be one
# snapshot (each month's copy is later than the order states'). Restore takes any split. A month
# unchanged since an earlier backup (same rows and latest ``ingested_at``: a write, a replay or a
# merge changes one of them) is taken from that backup's file instead (``hotline backup --since``).
BY_PARTITION = frozenset({"events"})
WHOLE = "all"  # the partition name of a table copied whole
_PARTITION = re.compile(r"^(all|\d{6})$")


class BackupError(RuntimeError):
    """A backup that cannot be written or restored, with what is wrong and what to do."""


@dataclass(frozen=True)
class Exported:
    """One table's (or month partition's) rows as Native bytes, counted in the same snapshot;
    for the ledger, also its offsets (``[[topic, partition, offset], …]``) for the manifest."""

    rows: int
    native: bytes
    ledger: list[list[Any]] | None = None
    fingerprint: str = ""  # of a month partition (:func:`partitions`), as copied

    def as_json(self) -> dict[str, Any]:
        """What ``hotline store`` answers (its codec is JSON: the bytes in base64)."""
        native = base64.b64encode(self.native).decode()
        return {"rows": self.rows, "native": native, "ledger": self.ledger, "fingerprint": self.fingerprint}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Exported:
        ledger, fingerprint = data.get("ledger"), str(data.get("fingerprint") or "")
        return cls(int(data["rows"]), base64.b64decode(data["native"]), ledger, fingerprint)


def _checked(table: str, partition: str = WHOLE) -> tuple[str, str]:
    if table not in ORDER:
        raise BackupError(f"{table!r} is not a table of the store; the tables are {', '.join(ORDER)}")
    if not _PARTITION.match(partition):
        raise BackupError(f"partition {partition!r} is not a month (YYYYMM) or {WHOLE!r}")
    return table, partition


def partitions(sink: ClickHouseStore, table: str) -> list[list[str]]:
    """The partitions to copy of a table, each ``[name, fingerprint]``: its months for
    :data:`BY_PARTITION` (fingerprinted: rows and latest ``ingested_at``), else the whole table."""
    _checked(table)
    exists = sink.query(
        "SELECT count() FROM system.tables WHERE database = %(db)s AND name = %(t)s", {"db": sink.db, "t": table}
    )
    if not exists[0][0]:
        return []  # a table of a later schema version than the store's
    if table not in BY_PARTITION:
        return [[WHOLE, ""]]
    return [[name, fingerprint] for name, fingerprint in sorted(_fingerprints(sink, table).items())]


def _fingerprints(sink: ClickHouseStore, table: str, partition: str | None = None) -> dict[str, str]:
    where = "" if partition is None else f" WHERE _partition_id = '{partition}'"
    rows = sink.query(
        f"SELECT _partition_id AS p, count(), toString(max(ingested_at)) FROM {{db}}.{table}{where} GROUP BY p"
    )
    return {str(p): f"{n}:{latest}" for p, n, latest in rows}


def export(sink: ClickHouseStore, table: str, partition: str = WHOLE) -> Exported:
    """A table's rows (or a month partition's) as they stand between two batches: counted and
    copied under the store's lock, which every write takes too."""
    table, partition = _checked(table, partition)
    where = "" if partition == WHOLE else f" WHERE _partition_id = '{partition}'"
    with sink._lock:
        # A background merge between the count and the copy would fold copies of a key and make
        # them disagree: merges wait meanwhile, and a merge that was finishing is seen and retried.
        sink.command(f"SYSTEM STOP MERGES {{db}}.{table}")
        try:
            for _ in range(_ATTEMPTS):
                rows = int(sink.query(f"SELECT count() FROM {{db}}.{table}{where}")[0][0])
                native = sink.client.raw_query(f"SELECT * FROM {sink.db}.{table}{where}", fmt="Native")
                if int(sink.query(f"SELECT count() FROM {{db}}.{table}{where}")[0][0]) == rows:
                    break
            else:
                raise BackupError(f"{table} kept changing while copied, without a write: try again")
            ledger = None
            if table == "sink_offsets":
                ledger = [[t, p, o] for (t, p), o in sorted(sink.progress().items())]
            fingerprint = _fingerprints(sink, table, partition).get(partition, "") if table in BY_PARTITION else ""
        finally:
            sink.command(f"SYSTEM START MERGES {{db}}.{table}")
    return Exported(rows, bytes(native), ledger, fingerprint)


_ATTEMPTS = 3


class Source(Protocol):
    """Where a backup reads the store: ClickHouse opened here, the worker's pages, or ``hotline store``."""

    def version(self) -> int: ...

    def partitions(self, table: str) -> list[list[str]]: ...

    def export(self, table: str, partition: str) -> Exported: ...


class Opened:
    """A backup of a store this process opened (no worker holds it, or a ClickHouse server)."""

    def __init__(self, sink: ClickHouseStore) -> None:
        self.sink = sink

    def version(self) -> int:
        return int(self.sink.schema_version or 0)

    def partitions(self, table: str) -> list[list[str]]:
        return partitions(self.sink, table)

    def export(self, table: str, partition: str) -> Exported:
        return export(self.sink, table, partition)


@dataclass
class Manifest:
    """What a backup holds: per table its files (partition, rows, sha256), and the ledger copied."""

    schema_version: int
    database: str
    created_at: str
    ledger: list[list[Any]] = field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    format: int = BACKUP_FORMAT

    def rows(self, table: str) -> int:
        return sum(int(f["rows"]) for f in self.tables.get(table, []))

    def as_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "created_at": self.created_at,
            "schema_version": self.schema_version,
            "database": self.database,
            "order": list(ORDER),
            "ledger": self.ledger,
            "tables": {t: {"rows": self.rows(t), "files": files} for t, files in self.tables.items()},
        }

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            manifest = cls(
                int(data["schema_version"]),
                str(data["database"]),
                str(data["created_at"]),
                list(data["ledger"]),
                {str(t): list(v["files"]) for t, v in data["tables"].items()},
                int(data["format"]),
            )
        except FileNotFoundError:
            raise BackupError(f"{path} is missing: not a backup, or one that did not finish") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"{path} is not a backup manifest: {type(exc).__name__}: {exc}") from None
        if manifest.format != BACKUP_FORMAT:
            raise BackupError(f"{path} is backup format {manifest.format}; this release reads {BACKUP_FORMAT}")
        return manifest


def _file_name(table: str, partition: str) -> str:
    return f"{table}.native.gz" if partition == WHOLE else f"{table}.{partition}.native.gz"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _empty_directory(directory: Path) -> None:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"{directory} is not an empty directory: give a new one for each backup")
    directory.mkdir(parents=True, exist_ok=True)


Progress = Callable[[str, str, int, bool], None]  # table, partition, rows, taken from the earlier backup


def write_backup(
    source: Source,
    directory: Path,
    database: str,
    progress: Progress = lambda table, partition, rows, reused: None,
    since: Path | None = None,
) -> Manifest:
    """Copy every table into ``directory`` (new or empty) in :data:`ORDER`, then the manifest; with
    ``since`` (an earlier backup of the same store), its files of months unchanged are linked in."""
    _empty_directory(directory)
    manifest = Manifest(source.version(), database, datetime.now(UTC).isoformat(timespec="seconds"))
    earlier = _reusable(since, manifest) if since is not None else {}
    for table in ORDER:
        found = source.partitions(table)
        if found or _table_existed(table, manifest.schema_version):
            manifest.tables[table] = []
        for partition, fingerprint in found:
            entry = earlier.get((table, partition, fingerprint)) if fingerprint else None
            if entry is not None and since is not None:
                _link(since / str(entry["file"]), directory / str(entry["file"]))
                manifest.tables[table].append(entry)
                progress(table, partition, int(entry["rows"]), True)
                continue
            exported = source.export(table, partition)
            if exported.ledger is not None:
                manifest.ledger = exported.ledger
            path = directory / _file_name(table, partition)
            path.write_bytes(gzip.compress(exported.native, compresslevel=3, mtime=0))
            manifest.tables[table].append(
                {
                    "file": path.name,
                    "partition": partition,
                    "rows": exported.rows,
                    "sha256": _sha256(path),
                    "fingerprint": exported.fingerprint,
                }
            )
            progress(table, partition, exported.rows, False)
    temporary = directory / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest.as_json(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, directory / MANIFEST)
    return manifest


def _reusable(since: Path, manifest: Manifest) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The earlier backup's month files by (table, partition, fingerprint): only of the same database
    and schema version, and only those whose bytes still match its manifest."""
    earlier = verified(since)
    if (earlier.database, earlier.schema_version) != (manifest.database, manifest.schema_version):
        raise BackupError(
            f"{since} is a backup of {earlier.database} at schema version {earlier.schema_version}, "
            f"not of {manifest.database} at {manifest.schema_version}: take a full backup"
        )
    return {
        (table, str(entry["partition"]), str(entry["fingerprint"])): entry
        for table, files in earlier.tables.items()
        for entry in files
        if entry.get("fingerprint")
    }


def _link(source: Path, target: Path) -> None:
    """The same file in the new backup: a hard link where the file system allows, else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def verified(directory: Path) -> Manifest:
    """The backup's manifest once every file it lists is there with its sha256, for this build."""
    manifest = Manifest.read(directory)
    if manifest.schema_version > SCHEMA_VERSION:
        raise BackupError(
            f"the backup is of schema version {manifest.schema_version}, newer than this build's "
            f"{SCHEMA_VERSION}: restore it with a hotline release that knows version {manifest.schema_version}"
        )
    for table in TABLES:
        if table not in manifest.tables and _table_existed(table, manifest.schema_version):
            raise BackupError(f"the backup lists no {table!r}: it is incomplete")
    for table, files in manifest.tables.items():
        _checked(table)
        for entry in files:
            path = directory / str(entry["file"])
            if path.parent != directory or not path.is_file():
                raise BackupError(f"{path} is missing from the backup")
            if _sha256(path) != entry["sha256"]:
                raise BackupError(f"{path} does not match its sha256 in the manifest: the backup is damaged")
    return manifest


def _table_existed(table: str, version: int) -> bool:
    """Whether the schema of ``version`` has the table (a migration up to it creates it)."""
    return any(f".{table} (" in s for m in MIGRATIONS if m.version <= version for s in m.statements)


@dataclass(frozen=True)
class Restored:
    """What a restore did: rows per table, the schema version before and after, the generation."""

    rows: dict[str, int]
    from_version: int
    to_version: int
    generation: int


def stored_rows(sink: ClickHouseStore) -> dict[str, int]:
    """Rows in each of the database's tables (none if it does not exist): whether a store is empty."""
    names = sink.query("SELECT name FROM system.tables WHERE database = %(db)s", {"db": sink.db})
    return {str(n): int(sink.query(f"SELECT count() FROM {{db}}.`{n}`")[0][0]) for (n,) in names}


def restore(sink: ClickHouseStore, directory: Path) -> Restored:
    """Write a verified backup into an empty store, check every table's rows, migrate to this build,
    and record the restore's generation. Refuses, touching nothing, a store that holds any row."""
    manifest = verified(directory)
    held = {t: n for t, n in stored_rows(sink).items() if n}
    if held:
        raise BackupError(
            f"the store {sink.db} is not empty ({', '.join(f'{t}: {n} rows' for t, n in sorted(held.items()))}): "
            "restore into a new directory (HOTLINE_VAR_DIR) or a new database (HOTLINE_CLICKHOUSE_DATABASE)"
        )
    _create_schema(sink, manifest.schema_version)
    # Rows exactly as the files hold them, copies of a key not merged yet included (a replacing
    # table merges them on insert and in the background otherwise): the counts then prove the copy.
    sink.command("SYSTEM STOP MERGES {db}")
    try:
        for table in ORDER:
            for entry in manifest.tables.get(table, []):
                native = gzip.decompress((directory / str(entry["file"])).read_bytes())
                if entry["rows"]:
                    with sink._lock:
                        sink.client.raw_insert(
                            f"{sink.db}.{table}", insert_block=native, settings=_AS_COPIED, fmt="Native"
                        )
        counted = {t: n for t, n in stored_rows(sink).items() if t in manifest.tables}
    finally:
        sink.command("SYSTEM START MERGES {db}")
    wrong = [
        f"{t}: {counted.get(t, 0)} rows, the manifest says {manifest.rows(t)}"
        for t in manifest.tables
        if counted.get(t, 0) != manifest.rows(t)
    ]
    if wrong:
        raise BackupError("the restored rows differ from the manifest: " + "; ".join(wrong))
    sink.migrate()
    generation = sink.record_generation(RESTORED, f"restored from the backup of {manifest.created_at}")
    return Restored(counted, manifest.schema_version, int(sink.schema_version or 0), generation)


_AS_COPIED = {"optimize_on_insert": 0}


def _create_schema(sink: ClickHouseStore, version: int) -> None:
    """The tables as the backup's schema version had them; its ``schema_version`` rows come with the
    backup, and :meth:`ClickHouseStore.migrate` then brings the store to this build's version."""
    sink.command("CREATE DATABASE IF NOT EXISTS {db}")
    sink.command(SCHEMA_VERSION_DDL)
    for migration in MIGRATIONS:
        if migration.version <= version:
            for statement in migration.statements:
                sink.command(statement)
            for step in migration.steps:
                step(sink)


def files_of(directory: Path) -> Iterator[tuple[str, bytes]]:
    """Each file of a backup, decompressed: what a scan for personal data reads."""
    for path in sorted(directory.iterdir()):
        data = path.read_bytes()
        yield path.name, gzip.decompress(data) if path.name.endswith(".gz") else data
