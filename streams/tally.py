"""Per unit: the alerts sent to it, those it acknowledged (签收), and those still waiting.

What the supervisors' screen shows per unit and what a unit's page lists as open, kept from the
alerts topic as the worker's :class:`~hotline.streams.alerts.AlertFeed` reads it, in memory:
the screen's refresh reads counts kept up to date as records arrive (no ClickHouse, no scan).

The tally is order-independent. The alerts topic is keyed by unit, but an acknowledgement may be
produced by another process (the notifier's signed link, a worker's unit page), and a feed that
reads every partition at its own pace may see an acknowledgement before the alert it names. So an
acknowledgement is remembered by alert id whether or not its alert is known yet, and an alert
read later that has one counts as acknowledged from the start. Each alert id counts once, and
so does each acknowledgement, however often either is read.

An alert *sent to a unit* is every kind but ``alert.escalated``: escalations go to the
supervisors (``hotline notify``'s ``"*"`` channels), about the unit, not to it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Mapping
from datetime import datetime
from typing import Any

Payload = dict[str, Any]
NOT_FOR_THE_UNIT = "alert.escalated"  # the supervisors' alert about a unit
OPEN_KEPT = 500  # open alerts whose contents a unit's page can list; counts stay exact past it


def counts_of(sent: int, acknowledged: int) -> dict[str, int]:
    """One unit's figures as the screen's payload carries them."""
    return {"sent": sent, "acknowledged": acknowledged, "waiting": sent - acknowledged}


class AlertTally:
    """Counts per unit, and the contents of each unit's open alerts (its newest ``open_kept``)."""

    def __init__(self, open_kept: int = OPEN_KEPT) -> None:
        self.open_kept = open_kept
        self.unit_of: dict[str, str] = {}  # alert id -> its unit, for every alert sent to a unit
        self.acked: set[str] = set()  # alert ids acknowledged, their alerts read or not
        self.sent: Counter[str] = Counter()
        self.acknowledged: Counter[str] = Counter()
        self.open: dict[str, dict[str, Payload]] = {}  # unit -> alert id -> alert, in reading order
        self.version = 0  # moves whenever a count does: what tells the screen to push

    def alert(self, alert: Mapping[str, Any]) -> None:
        """An alert read (or sent by this worker): counted once for its unit."""
        alert_id, unit = str(alert["alert_id"]), str(alert["unit_id"])
        if alert.get("type") == NOT_FOR_THE_UNIT or alert_id in self.unit_of:
            return
        self.unit_of[alert_id] = unit
        self.sent[unit] += 1
        self.version += 1
        if alert_id in self.acked:  # its acknowledgement was read first
            self.acknowledged[unit] += 1
            return
        kept = self.open.setdefault(unit, {})
        kept[alert_id] = dict(alert)
        if len(kept) > self.open_kept:
            del kept[next(iter(kept))]

    def acknowledge(self, alert_id: str) -> None:
        """An acknowledgement read: counted once, for the unit of its alert (now or when it is read)."""
        if alert_id in self.acked:
            return
        self.acked.add(alert_id)
        unit = self.unit_of.get(alert_id)
        if unit is None:
            return
        self.acknowledged[unit] += 1
        self.version += 1
        self.open.get(unit, {}).pop(alert_id, None)

    def is_open(self, alert_id: str) -> bool:
        return alert_id in self.unit_of and alert_id not in self.acked

    def counts(self, units: Container[str] | None = None) -> dict[str, dict[str, int]]:
        """Sent, acknowledged and waiting per unit that has been sent any (``units``: those only)."""
        return {
            unit: counts_of(sent, self.acknowledged[unit])
            for unit, sent in sorted(self.sent.items())
            if units is None or unit in units
        }

    def open_alerts(self, unit: str) -> list[Payload]:
        """The unit's open alerts, newest first (by when they were emitted, whichever partition
        they were read from)."""
        kept = list(self.open.get(unit, {}).values())
        return sorted(kept, key=lambda a: (_instant(a), str(a["alert_id"])), reverse=True)


def _instant(alert: Mapping[str, Any]) -> float:
    return datetime.fromisoformat(str(alert["emitted_at"])).timestamp()


def with_counts(payload: Payload, counts: Mapping[str, dict[str, int]]) -> Payload:
    """The screen's snapshot payload with each unit's ``alerts`` (sent, acknowledged, waiting) and
    the total's (the sum over the units shown, as the payload's other totals are)."""
    total = counts_of(0, 0)
    for unit in payload["units"]:
        unit["alerts"] = dict(counts.get(unit["unit_id"], counts_of(0, 0)))
        total = {k: total[k] + unit["alerts"][k] for k in total}
    payload["total"]["alerts"] = total
    return payload
