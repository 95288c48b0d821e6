"""The bad records the poison integration test sends are all refused, and none can shadow a real event."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from typing import Any

import pytest

from hotline.generate import generate
from hotline.schemas.events import InvalidEvent, parse_event
from hotline.schemas.registry import default_registry
from hotline.sinks.base import DeadLetter
from hotline.streams.processing import Source, decode
from tests.integration.seed import HEADLINE, TABLE
from tests.poison import MUTATIONS, Bad, callers, conflict_records, malformed_corpus, poison_records


@cache
def month() -> tuple[dict[str, Any], ...]:
    """The seed month's events, as the integration test reads them."""
    return tuple(json.loads(record) for record in generate(TABLE, HEADLINE))


def _bad() -> list[Bad]:
    return [*poison_records(month()), *malformed_corpus(month())]


def _decoded(bad: Bad) -> DeadLetter:
    result = decode(bad.value, Source(f"t.{bad.topic}", 0, 0), default_registry(), bad.expected)
    assert isinstance(result, DeadLetter), f"{bad.name} ({bad.key!r}) was accepted: {result!r}"
    return result


def test_the_corpus_is_large_deterministic_and_covers_every_mutation() -> None:
    corpus = malformed_corpus(month())
    assert len(corpus) >= 100
    assert corpus == malformed_corpus(month())
    assert set(Counter(b.name for b in corpus)) == set(MUTATIONS)


def test_every_bad_record_has_a_unique_key() -> None:
    keys = [b.key for b in [*_bad(), *conflict_records(month())]]
    assert len(keys) == len(set(keys))


def test_every_bad_record_is_refused_by_decode_without_raising() -> None:
    for bad in _bad():
        dead = _decoded(bad)
        assert dead.error, bad.name
        assert bad.reason in dead.error, f"{bad.name}: {dead.error!r} lacks {bad.reason!r}"
        assert dead.raw == (bad.value or b"")


def test_the_parser_refuses_what_decode_refuses_on_content() -> None:
    """Apart from the wrong topic and the unknown unit (the worker's rules), the contract itself refuses them."""
    for bad in _bad():
        error = _decoded(bad).error
        if bad.value is None or error.startswith("unknown unit_id") or "does not belong on topic" in error:
            continue
        with pytest.raises(InvalidEvent):
            parse_event(bad.value)


def test_no_bad_record_reuses_an_event_id_of_the_month() -> None:
    month_ids = {e["event_id"] for e in month()}
    ids = [b.event_id for b in _bad() if b.event_id is not None]
    assert len(ids) == len(set(ids)), "a bad record's event id is used twice"
    assert not month_ids & set(ids)
    for bad in _bad():  # and none of the bytes carries a month id where a parser would find it
        try:
            data = json.loads(bad.value or b"")
        except (ValueError, RecursionError):
            continue
        if isinstance(data, dict):
            event_id = data.get("event_id")
            assert not isinstance(event_id, str) or event_id not in month_ids, bad.name


def test_the_conflicts_reuse_month_ids_with_other_content() -> None:
    by_id = {e["event_id"]: e for e in month()}
    for conflict in conflict_records(month()):
        assert conflict.reuses in by_id
        event = parse_event(conflict.value or b"")
        assert event.event_id == conflict.reuses
        assert event.type.startswith("order.") and json.loads(conflict.value or b"") != by_id[conflict.reuses]


def test_some_bad_records_carry_real_callers_of_the_month() -> None:
    phones, names = callers(month())
    assert len(phones) > 1000 and names
    carrying = [b.name for b in poison_records(month()) if any(p.encode() in (b.value or b"") for p in phones)]
    assert len(carrying) >= 10, carrying
