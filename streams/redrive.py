"""Dead letters an operator can fix: list them, look at one, send them through again.

A dead letter is named by where its record was read, ``topic:partition:offset`` (the table's
key). ``redrive`` sends the original record (its key and value) again to its source topic,
with the header :data:`REDRIVE_HEADER` naming the dead letter, and records on the dead
letter's row when and where it went. The pipeline then processes it like any record: a
fixed cause stores it once (the event id names it: a second send is a duplicate and changes
nothing), a cause not fixed dead-letters it again with the reason, under its new offset.

The original comes from the sealed copy in the table (``sinks/originals.py``) while it is
within ``HOTLINE_DEADLETTER_RETENTION_DAYS``, else from the source topic while Kafka's
retention still holds it; when neither can give it, the redrive says why.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from hotline.settings import Settings
from hotline.sinks import originals
from hotline.sinks.base import Store
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.streams.deadlines import TZ
from hotline.streams.gaps import GapReader
from hotline.streams.ledger import Gap

REDRIVE_HEADER = "hotline-redrive-of"  # on a redriven record: the id of the dead letter it re-sends
SENT = "sent to "  # how a redrive outcome starts: where the record went, topic[partition]@offset
COLUMNS = (
    "source_topic, source_partition, source_offset, error, raw, key, occurred_at, original, original_key_id, "
    "received_at, redriven_at, redrive_outcome"
)
_ID = re.compile(r"^(?P<topic>[A-Za-z0-9._-]+):(?P<partition>\d+):(?P<offset>\d+)$")
_SENT_TO = re.compile(r"^sent to (?P<topic>[A-Za-z0-9._-]+)\[(?P<partition>\d+)\]@(?P<offset>\d+)")
MAX_LIMIT = 100_000  # dead letters one selection reads at most
_VARYING = re.compile(r"'[^']*'|\"[^\"]*\"|\d+(\.\d+)?")


class BadSelection(ValueError):
    """A selection an operator mistyped: said in one line, nothing done."""


@dataclass(frozen=True)
class LetterId:
    """Where the dead-lettered record was read: the dead letter's identity."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> LetterId:
        match = _ID.match(text.strip())
        if match is None:
            raise BadSelection(f"{text!r} is not a dead letter id (topic:partition:offset, as `list` shows it)")
        return cls(match["topic"], int(match["partition"]), int(match["offset"]))


@dataclass(frozen=True)
class Selection:
    """Which dead letters: by id, or by what they have in common (every condition must hold)."""

    ids: tuple[str, ...] = ()
    reason: str | None = None  # a part of the reason, any case
    source: str | None = None  # the source topic
    since: datetime | None = None  # dead-lettered at or after (the table's received_at)
    until: datetime | None = None  # dead-lettered before
    unit: str | None = None  # the unit_id its (redacted) record names
    redriven: bool | None = None  # None: either; False: not redriven yet
    limit: int = 1000

    def where(self) -> tuple[str, dict[str, Any]]:
        """The SQL condition over the dead-letter table, and its parameters (never spliced in)."""
        conditions: list[str] = []
        params: dict[str, Any] = {"limit": self.limit}
        if self.ids:
            keys = [LetterId.parse(i) for i in self.ids]
            params["ids"] = [(k.topic, k.partition, k.offset) for k in keys]
            conditions.append("(source_topic, source_partition, source_offset) IN %(ids)s")
        if self.reason:
            params["reason"] = self.reason
            conditions.append("positionCaseInsensitiveUTF8(error, %(reason)s) > 0")
        if self.source:
            params["source"] = self.source
            conditions.append("source_topic = %(source)s")
        if self.since:
            params["since"] = self.since
            conditions.append("received_at >= %(since)s")
        if self.until:
            params["until"] = self.until
            conditions.append("received_at < %(until)s")
        if self.unit:
            params["unit"] = self.unit
            conditions.append("JSONExtractString(raw, 'unit_id') = %(unit)s")
        if self.redriven is not None:
            conditions.append("redriven_at IS NOT NULL" if self.redriven else "redriven_at IS NULL")
        return " AND ".join(conditions) or "1", params

    def params(self) -> list[tuple[str, str]]:
        """As query parameters (what the CLI sends the worker; :meth:`from_params` reads them back)."""
        out = [("id", i) for i in self.ids]
        for name in ("reason", "source", "unit"):
            if getattr(self, name):
                out.append((name, str(getattr(self, name))))
        for name in ("since", "until"):
            if getattr(self, name) is not None:
                out.append((name, getattr(self, name).isoformat()))
        if self.redriven is not None:
            out.append(("redriven", "yes" if self.redriven else "no"))
        return [*out, ("limit", str(self.limit))]

    @classmethod
    def from_params(cls, pairs: Iterable[tuple[str, str]]) -> Selection:
        """From query parameters (``id`` repeated); a malformed one is a :class:`BadSelection`."""
        given: dict[str, str] = {}
        ids: list[str] = []
        for name, value in pairs:
            if name == "id":
                ids.append(value)
            elif name in ("reason", "source", "unit", "since", "until", "redriven", "limit"):
                given[name] = value
        for i in ids:
            LetterId.parse(i)
        redriven = given.get("redriven")
        if redriven not in (None, "yes", "no"):
            raise BadSelection("redriven is yes or no")
        limit = given.get("limit", "1000")
        if not limit.isdigit() or not 0 < int(limit) <= MAX_LIMIT:
            raise BadSelection(f"limit is a whole number from 1 to {MAX_LIMIT}")
        return cls(
            tuple(ids),
            given.get("reason") or None,
            given.get("source") or None,
            parse_time(given.get("since")),
            parse_time(given.get("until")),
            given.get("unit") or None,
            None if redriven is None else redriven == "yes",
            int(limit),
        )

    @property
    def empty(self) -> bool:
        """Selects every dead letter: a redrive refuses it (name ids or a filter)."""
        return not (self.ids or self.reason or self.source or self.since or self.until or self.unit)


@dataclass(frozen=True)
class Letter:
    """A dead letter as the table holds it: redacted, its original sealed or absent."""

    id: LetterId
    error: str
    copy: str  # the redacted record
    key: str  # the redacted key
    occurred_at: datetime | None
    received_at: datetime
    sealed: originals.Sealed
    redriven_at: datetime | None
    redrive_outcome: str

    def view(self) -> dict[str, Any]:
        """What ``list``/``show`` print and the HTTP pages answer: redacted, never the original."""
        return {
            "id": str(self.id),
            "reason": self.error,
            "source": {"topic": self.id.topic, "partition": self.id.partition, "offset": self.id.offset},
            "occurred_at": _iso(self.occurred_at),
            "dead_lettered_at": _iso(self.received_at),
            "original": f"sealed with key {self.sealed.key_id}" if self.sealed.ciphertext else "not kept",
            "redriven_at": _iso(self.redriven_at),
            "redrive": self.redrive_outcome,
            "key": self.key,
            "record": self.copy,
        }

    @property
    def sent_to(self) -> LetterId | None:
        """Where its last redrive put the record, if it was redriven."""
        match = _SENT_TO.match(self.redrive_outcome)
        return None if match is None else LetterId(match["topic"], int(match["partition"]), int(match["offset"]))


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time (a date alone: its midnight), in the office's time zone unless it names one."""
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise BadSelection(f"{text!r} is not an ISO 8601 time (e.g. 2019-11-05 or 2019-11-05T08:00)") from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=TZ)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def reason_kind(error: str) -> str:
    """A reason without what varies between records (quoted values, numbers): what ``list`` counts by."""
    return _VARYING.sub("…", error)


def counts(errors: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Dead letters per kind of reason, most first."""
    total: Counter[str] = Counter()
    for error, n in errors:
        total[reason_kind(error)] += n
    return dict(total.most_common())


def _letter(r: dict[str, Any]) -> Letter:
    return Letter(
        LetterId(str(r["source_topic"]), int(r["source_partition"]), int(r["source_offset"])),
        str(r["error"]),
        str(r["raw"]),
        str(r["key"]),
        r["occurred_at"],
        r["received_at"],
        originals.Sealed(str(r["original"]), str(r["original_key_id"])),
        r["redriven_at"],
        str(r["redrive_outcome"]),
    )


def select(store: Store, selection: Selection) -> list[Letter]:
    """The selected dead letters, oldest first (at most ``selection.limit``)."""
    where, params = selection.where()
    rows = store.query_rows(
        f"SELECT {COLUMNS} FROM {{db}}.deadletter FINAL WHERE {where} "
        "ORDER BY received_at, source_topic, source_partition, source_offset LIMIT %(limit)s",
        params,
    )
    return [_letter(r) for r in rows]


def reason_counts(store: Store, selection: Selection) -> dict[str, int]:
    """How many dead letters the selection holds per kind of reason (not bounded by its limit)."""
    where, params = selection.where()
    rows = store.query_rows(
        f"SELECT error, count() AS n FROM {{db}}.deadletter FINAL WHERE {where} GROUP BY error", params
    )
    return counts((str(r["error"]), int(r["n"])) for r in rows)


def status(store: Store, letter: Letter) -> str:
    """What became of its redrive: not redriven, sent and waiting, processed, or dead-lettered again."""
    if letter.redriven_at is None:
        return "not redriven"
    sent = letter.sent_to
    if sent is None:
        return letter.redrive_outcome
    again = select(store, Selection(ids=(str(sent),), limit=1))
    if again:
        return f"dead-lettered again as {sent}: {again[0].error}"
    done = store.progress().get((sent.topic, sent.partition), -1)
    if done >= sent.offset:
        return f"processed ({sent.topic}[{sent.partition}]@{sent.offset}): its event is stored, once"
    return f"sent ({sent.topic}[{sent.partition}]@{sent.offset}), not processed yet"


def show(store: Store, letter_id: str) -> dict[str, Any] | None:
    """One dead letter, redacted, with what became of its redrive."""
    found = select(store, Selection(ids=(letter_id,), limit=1))
    if not found:
        return None
    return {**found[0].view(), "status": status(store, found[0])}


# -- redrive ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One dead letter's redrive: where its record went, or why it could not go."""

    id: str
    sent_to: str | None = None
    why_not: str | None = None

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "sent_to": self.sent_to, "why_not": self.why_not}


@dataclass
class Redrive:
    """A redrive's result: every selected dead letter's outcome, and those skipped as already redriven."""

    outcomes: list[Outcome] = field(default_factory=list)
    already: list[str] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {"outcomes": [o.view() for o in self.outcomes], "already_redriven": self.already}


def header(letter: LetterId) -> list[tuple[str, bytes]]:
    """The headers of a redriven record: the dead letter it re-sends."""
    return [(REDRIVE_HEADER, str(letter).encode())]


def within_retention(letter: Letter, days: int, now: datetime) -> bool:
    """Whether its sealed original may still be opened (older ones are treated as purged)."""
    received = letter.received_at if letter.received_at.tzinfo else letter.received_at.replace(tzinfo=TZ)
    return now - received < timedelta(days=days)


def from_seal(letter: Letter, key: bytes | None, days: int, now: datetime) -> originals.Original:
    """The original from its sealed copy; :class:`originals.Unreadable` says why not."""
    if letter.sealed.ciphertext and not within_retention(letter, days, now):
        raise originals.Unreadable(f"its sealed original is past the {days}-day retention")
    where = originals.coordinates(letter.id.topic, letter.id.partition, letter.id.offset)
    return originals.unseal(letter.sealed, key, where)


async def from_topic(reader: GapReader, letter: LetterId) -> originals.Original:
    """The original read back from its source topic; :class:`originals.Unreadable` once Kafka dropped it."""
    records = await reader.read(Gap(letter.topic, letter.partition, letter.offset, letter.offset + 1))
    found = [r for r in records if r.unreadable_from is None and r.source.offset == letter.offset]
    if not found or found[0].value is None:
        raise originals.Unreadable(f"{letter.topic}[{letter.partition}]@{letter.offset} is no longer in Kafka")
    return originals.Original(found[0].key, found[0].value)


async def original_of(
    letter: Letter, key: bytes | None, days: int, reader: GapReader, now: datetime
) -> originals.Original:
    """The sealed copy first (it outlives Kafka's retention), the topic second; both reasons when neither."""
    try:
        return from_seal(letter, key, days, now)
    except originals.Unreadable as sealed_why:
        try:
            return await from_topic(reader, letter.id)
        except originals.Unreadable as topic_why:
            raise originals.Unreadable(f"{sealed_why}; and {topic_why}: it cannot be redriven") from None


def record_redrive(store: ClickHouseStore, letter: LetterId, at: datetime, outcome: str) -> None:
    """The dead letter's row again, with when and where it was redriven (the table keeps the latest row)."""
    store.command(
        f"INSERT INTO {{db}}.deadletter ({COLUMNS}) SELECT {COLUMNS.rsplit(', ', 2)[0]}, "
        "%(at)s, %(outcome)s FROM {db}.deadletter FINAL "
        "WHERE source_topic = %(t)s AND source_partition = %(p)s AND source_offset = %(o)s",
        {"at": at, "outcome": outcome, "t": letter.topic, "p": letter.partition, "o": letter.offset},
    )


StoreCall = Callable[..., Any]  # runs a store function (in the worker: on its store thread)


async def redrive(
    store: Store, selection: Selection, settings: Settings, again: bool = False, run: StoreCall | None = None
) -> Redrive:
    """Send the selected dead letters' originals again; one already redriven only with ``again``."""
    if not isinstance(store, ClickHouseStore):
        raise BadSelection(
            "a redrive records itself in ClickHouse: run it where ClickHouse is opened, not via the store"
        )
    if selection.empty:
        raise BadSelection("name dead letters by id or by a filter (reason, source, time, unit): not all at once")
    call = run or _direct
    letters: list[Letter] = await call(select, store, selection)
    result = Redrive()
    key = originals.key_of(settings.deadletter_key)
    producer = AIOKafkaProducer(**settings.producer_options(), **settings.kafka_client_options())
    reader = GapReader(settings.kafka_client_options())
    await producer.start()
    try:
        for letter in letters:
            if letter.redriven_at is not None and not again:
                result.already.append(str(letter.id))
                continue
            result.outcomes.append(await _one(letter, store, settings, key, producer, reader, call))
    finally:
        await producer.stop()
        await reader.close()
    return result


async def _one(
    letter: Letter,
    store: ClickHouseStore,
    settings: Settings,
    key: bytes | None,
    producer: AIOKafkaProducer,
    reader: GapReader,
    call: StoreCall,
) -> Outcome:
    now = datetime.now(TZ)
    try:
        original = await original_of(letter, key, settings.deadletter_retention_days, reader, now)
    except originals.Unreadable as why:
        return Outcome(str(letter.id), why_not=str(why))
    sent = await producer.send_and_wait(letter.id.topic, original.value, key=original.key, headers=header(letter.id))
    where = f"{sent.topic}[{sent.partition}]@{sent.offset}"
    await call(record_redrive, store, letter.id, now, SENT + where)
    return Outcome(str(letter.id), sent_to=where)


async def _direct(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def purge(store: ClickHouseStore, days: int) -> int:
    """Drop the sealed originals older than the retention (their rows stay, redacted): how many."""
    where = f"original != '' AND received_at < now64(3) - INTERVAL {int(days)} DAY"
    n = int(store.query_rows(f"SELECT count() AS n FROM {{db}}.deadletter FINAL WHERE {where}")[0]["n"])
    if n:
        # Unaliased: an alias named like a column would replace that column in the WHERE too.
        kept = COLUMNS.replace("original, original_key_id", "'', ''")
        store.command(
            f"INSERT INTO {{db}}.deadletter ({COLUMNS}) SELECT {kept} FROM {{db}}.deadletter FINAL WHERE {where}"
        )
    return n


def listing(store: Any, selection: Selection) -> dict[str, Any]:
    """What ``hotline deadletters list`` prints and ``GET /deadletters`` answers: counts per kind of
    reason, and the selected dead letters as shown (redacted)."""
    return {
        "counts": reason_counts(store, selection),
        "letters": [letter.view() for letter in select(store, selection)],
    }
