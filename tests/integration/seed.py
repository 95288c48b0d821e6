"""The seed month (November 2019) as the integration tests replay and check it.

The published table and headline are the expected values; a failure lists every
differing cell.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from hotline.generate import generate, write_jsonl
from hotline.seed import HEADLINE, TABLE, TEXT
from hotline.settings import Settings
from hotline.sinks.store import open_store


def write_month(path: Path) -> Path:
    """The generated month whose aggregates reproduce the seed bulletin, as a replay file."""
    write_jsonl(generate(TABLE, HEADLINE), path)
    return path


def stored_event_ids(settings: Settings) -> list[str]:
    """Every event id stored: through ``hotline store`` when the settings name one, else in
    ClickHouse directly (the worker stopped then: chDB is one process)."""
    store = open_store(settings)
    try:
        return [r["event_id"] for r in store.query_rows("SELECT event_id FROM {db}.events FINAL")]
    finally:
        store.close()


def assert_headline_matches_seed(headline: dict[str, Any]) -> None:
    """The bulletin's headline (一、总体情况) equals the seed's, figure by figure."""
    diffs = headline_differences(headline, json.loads(HEADLINE.read_text(encoding="utf-8")))
    assert not diffs, "headline differs:\n" + "\n".join(diffs)


def assert_stored_as_sent(sent: set[str], stored: list[str]) -> None:
    """Every event sent is stored, once, and nothing else is: checked event id by event id."""
    assert len(stored) == len(set(stored)), "an event id is stored twice"
    missing, extra = sorted(sent - set(stored)), sorted(set(stored) - sent)
    assert not missing and not extra, f"missing {missing[:20]}, unexpected {extra[:20]}"


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def differing_cells(got: list[dict[str, str]], expected: list[dict[str, str]]) -> list[str]:
    """Every cell that differs, as 'unit / column: got != expected'."""
    diffs = [f"row count: {len(got)} != {len(expected)}"] if len(got) != len(expected) else []
    for g, e in zip(got, expected, strict=False):
        for column, value in e.items():
            if g.get(column) != value:
                diffs.append(f"{e['unit']} / {column}: {g.get(column)!r} != {value!r}")
    return diffs


def assert_table_matches_seed(csv_text: str) -> None:
    """The seed's 16 columns cell by cell; after them only month-over-month change columns
    (the generated month carries some October orders, so a previous month has figures)."""
    expected = _rows(TABLE.read_text(encoding="utf-8"))
    got = _rows(csv_text)
    seed_columns = list(expected[0])
    assert list(got[0])[: len(seed_columns)] == seed_columns, "CSV columns differ from the seed's"
    assert all(c.endswith("_change") for c in list(got[0])[len(seed_columns) :]), list(got[0])
    diffs = differing_cells(got, expected)
    assert not diffs, "cells differ:\n" + "\n".join(diffs)
    assert len(got) == 55 and len(seed_columns) == 16


def headline_differences(ours: dict[str, Any], seed: dict[str, Any]) -> list[str]:
    checks: list[tuple[str, Any, Any]] = [
        *((f"calls.{k}", ours["calls"][k], v) for k, v in seed["calls"].items()),
        *((f"orders.{k}", ours["orders"][k], v) for k, v in seed["orders"].items()),
        *((f"visits.{k}", ours["visits"][k], v) for k, v in seed["visits"].items() if k != "note"),
        *(
            (f"type.{k}", ours["dispatched_by_type"][k]["count"], v["count"])
            for k, v in seed["dispatched_by_type"].items()
        ),
        (
            "top categories",
            [(c["category"], c["share"]) for c in ours["top_categories_share_of_all_received_calls"]],
            [(c["category"], c["share"]) for c in seed["top_categories_share_of_all_received_calls"]],
        ),
        ("times returned", ours["returns"]["orders_by_times_returned"], seed["returns"]["orders_by_times_returned"]),
        ("return events", ours["returns"]["return_events"], seed["returns"]["returns_as_printed"]),
        ("not replied", ours["not_replied_to_citizen"], seed["not_replied_to_citizen"]),
        ("supervision", ours["supervision"], {k: v for k, v in seed["supervision"].items() if k != "trigger"}),
        ("satisfaction lists", ours["satisfaction_lists"], seed["satisfaction_lists"]),
    ]
    return [f"{name}: {got!r} != {want!r}" for name, got, want in checks if got != want]


def seed_section_two() -> list[str]:
    """Section 二's sentences as the seed bulletin prints them: the spot checks' paragraph, the
    test calls' first sentence (the rest tells single calls' stories), the data monitoring's."""
    lines = [line.strip() for line in TEXT.read_text(encoding="utf-8").splitlines()]
    spot = next(line for line in lines if line.startswith("11月份，省平台对我市随机抽取"))
    calls = next(line for line in lines if line.startswith("11月份我市在省平台随机拨测中"))
    data = next(line for line in lines if line.startswith("11月份我市热线出现"))
    return [spot, calls[: calls.index("。") + 1], data]


def section_two_differences(checks: dict[str, Any], seed: dict[str, Any]) -> list[str]:
    """The bulletin JSON's ``provincial_checks`` against the seed headline's section 二 figures."""
    spot, calls, data = seed["provincial_spot_check"], seed["provincial_test_calls"], seed["provincial_data_monitoring"]
    points: dict[str, float] = {}
    for call in calls["calls"]:
        for item, p in call["deductions"].items():
            points[item] = points.get(item, 0) + p
    ours = checks["spot_checks"]
    pairs: list[tuple[str, Any, Any]] = [
        ("sampled", ours["spot_checked"], spot["sampled"]),
        ("not visited", ours["spot_not_reached"], spot["not_visited"]),
        ("unsatisfied", ours["spot_unsatisfied"], spot["unsatisfied"]),
        (
            "not visited by unit",
            list(ours["by_unit"]["spot_not_reached"].items()),
            list(spot["not_visited_by_unit"].items()),
        ),
        (
            "unsatisfied by unit",
            list(ours["by_unit"]["spot_unsatisfied"].items()),
            list(spot["unsatisfied_by_unit"].items()),
        ),
        ("test calls", checks["test_calls"]["test_calls"], len(calls["calls"])),
        ("points by item", checks["test_calls"]["test_call_points"], points),
        ("most deducted", checks["test_calls"]["most_deducted"], calls["most_deducted_as_printed"]),
        ("inaccurate uploads", checks["data_monitoring"]["uploads_flagged"], data["inaccurate_uploads"]),
        ("upload points", checks["data_monitoring"]["upload_points"], {data["indicator"]: data["points_deducted"]}),
    ]
    return [f"{name}: {got!r} != {want!r}" for name, got, want in pairs if got != want]
