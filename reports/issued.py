"""Issued bulletins and the data that arrives after them (补录).

A month's bulletin goes out once, on a date, with a number (第12期（总第113期）), while events
keep arriving. Issuing freezes what went out in ClickHouse (``bulletin_issues``): the
bulletin's JSON and the bytes of every format, so the issued document is returned as it was,
byte for byte, whatever arrives or changes later. What arrived later is measured against
that moment: an event of the issued month whose first ``ingested_at`` is after the issue is
补录, listed by unit in the next month's bulletin, and ``--diff`` shows which printed cells the
late data has changed.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from hotline.reports.bulletin import COLUMNS, Bulletin, Queryable
from hotline.schemas import metrics as mc
from hotline.schemas.registry import Registry, default_registry
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.tables import BULLETIN_ISSUES

# The per-unit counts a late event can move, each named by the catalogue.
LATE_COUNTS: tuple[mc.EventCount, ...] = tuple(m for m in mc.UNIT_EVENT_COUNTS if m is not mc.FEEDBACK_EVENTS)
NO_UNIT = "（来电，不分单位）"  # calls carry no unit


class AlreadyIssued(RuntimeError):
    """The month has been issued: issuing again must be asked for (``--reissue``)."""


@dataclass(frozen=True)
class Issue:
    """What the masthead prints: 第N期（总第T期） and the issue date."""

    number: int
    total_number: int
    date: date

    @property
    def numbering(self) -> str:
        return f"第{self.number}期（总第{self.total_number}期）"

    @property
    def date_text(self) -> str:
        return f"{self.date.year}年{self.date.month}月{self.date.day}日"

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "total_number": self.total_number, "date": self.date.isoformat()}


@dataclass(frozen=True)
class IssuedBulletin:
    """One issue of a month as stored: when, which revision, the bulletin's JSON, every format's bytes."""

    month: str
    revision: int
    issue: Issue
    issued_at: datetime
    bulletin: dict[str, Any]
    documents: dict[str, bytes]


@dataclass(frozen=True)
class LateUnit:
    """One unit's late events: how many, and the catalogue counts they move (non-zero only)."""

    unit_id: str
    name: str
    events: int
    counts: dict[str, int]

    def counted(self) -> str:
        """``回访数2、退单数1``: the counts in the catalogue's labels."""
        return "、".join(f"{mc.metric(name).label}{n}" for name, n in self.counts.items())

    def to_json(self) -> dict[str, Any]:
        return {"unit_id": self.unit_id, "unit": self.name, "events": self.events, **self.counts}


@dataclass(frozen=True)
class LateData:
    """补录: events of an issued month that arrived after its issue, by unit."""

    month: str
    issue: Issue
    issued_at: datetime
    units: tuple[LateUnit, ...]

    @property
    def events(self) -> int:
        return sum(u.events for u in self.units)

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "issue": self.issue.to_json(),
            "issued_at": self.issued_at.isoformat(),
            "events": self.events,
            "units": [u.to_json() for u in self.units],
        }


# -------------------------------------------------------------------------- store


_LATEST = """
SELECT month, revision, number, total_number, issue_date, issued_at, bulletin, documents
FROM {db}.bulletin_issues FINAL
WHERE month = %(month)s
ORDER BY revision DESC
LIMIT 1
"""


def latest_issue(db: Queryable, month: str) -> IssuedBulletin | None:
    """The month's last issue (a reissue replaces the earlier one as 'the' issued bulletin)."""
    rows = db.query_rows(_LATEST, {"month": month})
    if not rows:
        return None
    r = rows[0]
    documents = {fmt: base64.b64decode(body) for fmt, body in json.loads(r["documents"]).items()}
    issue = Issue(int(r["number"]), int(r["total_number"]), r["issue_date"])
    return IssuedBulletin(month, int(r["revision"]), issue, r["issued_at"], json.loads(r["bulletin"]), documents)


def freeze(store: ClickHouseStore, bulletin: Bulletin, documents: dict[str, bytes], reissue: bool = False) -> int:
    """Store an issued bulletin with its documents; the revision it got.

    Refuses (:class:`AlreadyIssued`) when the month was issued before, unless ``reissue``:
    the earlier issue stays on record under its revision.
    """
    if bulletin.issue is None:
        raise ValueError("an issued bulletin needs its number and date (Bulletin.issue)")
    earlier = latest_issue(store, bulletin.month)
    if earlier is not None and not reissue:
        raise AlreadyIssued(
            f"{bulletin.month} was already issued as {earlier.issue.numbering} dated {earlier.issue.date_text} "
            f"(revision {earlier.revision}, at {earlier.issued_at:%Y-%m-%d %H:%M:%S}); nothing was changed. "
            "Add --reissue to issue it again: the new issue becomes the month's issued bulletin, the earlier "
            "one stays on record."
        )
    revision = 1 if earlier is None else earlier.revision + 1
    issue = bulletin.issue
    encoded = json.dumps({fmt: base64.b64encode(body).decode("ascii") for fmt, body in documents.items()})
    frozen = json.dumps(bulletin.to_json(), ensure_ascii=False, sort_keys=True)
    row = [bulletin.month, revision, issue.number, issue.total_number, issue.date, frozen, encoded]
    store.insert(BULLETIN_ISSUES, [row])
    return revision


# -------------------------------------------------------------------------- late data


def _late_sql() -> str:
    counts = ",\n       ".join(f"countIf({m.rule.sql()}) AS {m.name}" for m in LATE_COUNTS)
    return f"""
SELECT unit_id, count() AS events,
       {counts}
FROM {{db}}.events FINAL
WHERE toYYYYMM(occurred_at) = %(month_key)s
  AND event_id IN (
      SELECT event_id FROM {{db}}.events
      WHERE toYYYYMM(occurred_at) = %(month_key)s
      GROUP BY event_id
      HAVING min(ingested_at) > (
          SELECT argMax(issued_at, revision) FROM {{db}}.bulletin_issues FINAL WHERE month = %(month)s
      )
  )
GROUP BY unit_id
"""


LATE_EVENTS = _late_sql()


def late_data(db: Queryable, month: str, registry: Registry | None = None) -> LateData | None:
    """补录 of ``month``: None when it was never issued, else its late events by unit.

    'Late' is by arrival, not by event time: the first time ClickHouse stored the event
    (``min(ingested_at)`` over its copies, so a redelivered old event does not count) is after
    the latest issue of the month it belongs to (its ``occurred_at``).
    """
    issued = latest_issue(db, month)
    if issued is None:
        return None
    known = (registry or default_registry()).by_id
    units = []
    for r in db.query_rows(LATE_EVENTS, {"month": month, "month_key": int(month.replace("-", ""))}):
        unit_id = str(r["unit_id"])
        unit = known.get(unit_id)
        name = unit.name if unit else (unit_id or NO_UNIT)
        counts = {m.name: int(r[m.name]) for m in LATE_COUNTS if int(r[m.name])}
        order = (unit.order if unit else 10_000, unit_id)
        units.append((order, LateUnit(unit_id, name, int(r["events"]), counts)))
    return LateData(month, issued.issue, issued.issued_at, tuple(u for _, u in sorted(units, key=lambda x: x[0])))


# -------------------------------------------------------------------------- diff


@dataclass(frozen=True)
class Difference:
    """One printed cell that differs between the issued bulletin and the current figures."""

    where: str  # a unit's name, 总计, or 通报正文 for the headline
    item: str  # a column's label or a headline figure's path
    issued: str
    current: str

    def to_json(self) -> dict[str, str]:
        return {"where": self.where, "item": self.item, "issued": self.issued, "current": self.current}


HEADLINE = "通报正文"
ABSENT = "（无）"


def _rows_by_unit(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {str(row.get("unit_id", row["unit"])): row for row in data["units"]}


def _leaves(value: Any, path: str = "") -> dict[str, str]:
    """A nested headline as ``path -> printed value``; lists of names are one value."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, inner in value.items():
            out.update(_leaves(inner, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return {path: "、".join(str(v) for v in value)}
    if isinstance(value, list):
        out = {}
        for i, inner in enumerate(value):
            out.update(_leaves(inner, f"{path}[{i}]"))
        return out
    return {path: str(value)}


def differences(issued: dict[str, Any], current: dict[str, Any]) -> list[Difference]:
    """Per unit (in the current table's order, then units only the issue had), the total, then the headline."""
    before, now = _rows_by_unit(issued), _rows_by_unit(current)
    out: list[Difference] = []
    rows = [(now.get(k), before.get(k)) for k in [*now, *(k for k in before if k not in now)]]
    rows.append((current["total"], issued["total"]))
    for cur, old in rows:
        name = (cur or old or {}).get("unit", "")
        for key, label in COLUMNS[1:]:
            a = old.get(key, ABSENT) if old else ABSENT
            b = cur.get(key, ABSENT) if cur else ABSENT
            if a != b:
                out.append(Difference(name, label, a, b))
    old_head, new_head = _leaves(issued["headline"]), _leaves(current["headline"])
    for path in [*new_head, *(p for p in old_head if p not in new_head)]:
        a, b = old_head.get(path, ABSENT), new_head.get(path, ABSENT)
        if a != b:
            out.append(Difference(HEADLINE, path, a, b))
    return out
