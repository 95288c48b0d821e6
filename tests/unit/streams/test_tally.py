"""The per-unit tally of alerts sent, acknowledged and waiting: pure, whatever order records come in."""

from __future__ import annotations

import itertools
from typing import Any

from hotline.streams.tally import AlertTally, counts_of, with_counts


def alert(n: int, unit: str = "yuhu", kind: str = "alert.overdue", minute: int = 0) -> dict[str, Any]:
    return {
        "type": kind,
        "alert_id": f"a{n}",
        "order_id": f"XT{n}",
        "unit_id": unit,
        "due_at": "2019-11-04T10:00:00+08:00",
        "emitted_at": f"2019-11-04T10:{minute:02d}:00+08:00",
    }


RECORDS: list[tuple[str, Any]] = [
    ("alert", alert(1)),
    ("alert", alert(2)),
    ("alert", alert(3, "police")),
    ("ack", "a1"),
    ("ack", "a3"),
]


def tally_of(records: list[tuple[str, Any]]) -> AlertTally:
    tally = AlertTally()
    for kind, value in records:
        if kind == "alert":
            tally.alert(value)
        else:
            tally.acknowledge(value)
    return tally


def test_each_unit_counts_its_alerts_sent_acknowledged_and_waiting() -> None:
    assert tally_of(RECORDS).counts() == {"police": counts_of(1, 1), "yuhu": counts_of(2, 1)}


def test_the_counts_are_the_same_in_any_order_of_reading() -> None:
    """An acknowledgement read before its alert (another partition, another pace) counts all the same."""
    expected = tally_of(RECORDS).counts()
    assert all(tally_of(list(order)).counts() == expected for order in itertools.permutations(RECORDS))


def test_an_alert_or_an_acknowledgement_read_twice_counts_once() -> None:
    assert tally_of(RECORDS + RECORDS).counts() == tally_of(RECORDS).counts()


def test_an_acknowledgement_of_an_alert_never_read_counts_for_no_unit() -> None:
    assert tally_of([("ack", "a9"), ("alert", alert(1))]).counts() == {"yuhu": counts_of(1, 0)}


def test_an_escalation_goes_to_the_supervisors_and_is_not_counted_as_sent_to_the_unit() -> None:
    assert tally_of([("alert", alert(5, kind="alert.escalated"))]).counts() == {}


def test_the_open_alerts_are_the_unacknowledged_newest_first_whatever_the_reading_order() -> None:
    tally = tally_of([("alert", alert(1, minute=5)), ("ack", "a2"), ("alert", alert(3, minute=9)), ("alert", alert(2))])
    assert [a["alert_id"] for a in tally.open_alerts("yuhu")] == ["a3", "a1"]


def test_the_open_alerts_kept_are_bounded_but_the_counts_stay_exact() -> None:
    tally = AlertTally(open_kept=2)
    for n in range(5):
        tally.alert(alert(n, minute=n))
    assert [a["alert_id"] for a in tally.open_alerts("yuhu")] == ["a4", "a3"]
    assert tally.counts()["yuhu"] == counts_of(5, 0)


def test_the_version_moves_with_the_counts_only() -> None:
    tally = tally_of(RECORDS)
    before = tally.version
    tally.acknowledge("a1")  # again: nothing changes
    tally.alert(alert(2))
    assert tally.version == before
    tally.acknowledge("a2")
    assert tally.version == before + 1


def test_the_screen_payload_carries_each_shown_unit_and_the_total_of_those() -> None:
    payload = {"units": [{"unit_id": "yuhu"}, {"unit_id": "zhujian"}], "total": {"unit_id": "total"}}
    with_counts(payload, tally_of(RECORDS).counts())
    assert [u["alerts"] for u in payload["units"]] == [counts_of(2, 1), counts_of(0, 0)]
    assert payload["total"]["alerts"] == counts_of(2, 1)  # police is not shown: not in the total
