"""The ledger alone: which delivered offsets a batch may process, and how the ledger moves."""

from hotline.streams.ledger import Gap, Ledger, last_offsets
from hotline.streams.processing import Record, Source

ORDERS, CALLS = "hotline.orders", "hotline.calls"


def rec(offset: int, partition: int = 0, topic: str = ORDERS) -> Record:
    return Record(Source(topic, partition, offset), b"k", f"v{offset}".encode())


def offsets(records: list[Record]) -> list[tuple[str, int, int]]:
    return [(r.source.topic, r.source.partition, r.source.offset) for r in records]


# -- admit ------------------------------------------------------------------------------


def test_offsets_below_the_ledger_are_dropped_as_already_processed() -> None:
    ledger = Ledger({(ORDERS, 0): 5})
    admitted = ledger.admit([rec(3), rec(4), rec(5), rec(6)])
    assert offsets(admitted.records) == [(ORDERS, 0, 5), (ORDERS, 0, 6)]
    assert admitted.already_processed == 2
    assert admitted.gaps == []


def test_a_batch_entirely_below_the_ledger_admits_nothing() -> None:
    admitted = Ledger({(ORDERS, 0): 10}).admit([rec(7), rec(8), rec(9)])
    assert admitted.records == [] and admitted.gaps == []
    assert admitted.already_processed == 3


def test_records_are_admitted_in_offset_order_per_partition() -> None:
    admitted = Ledger({(ORDERS, 0): 5}).admit([rec(7), rec(5), rec(6)])
    assert offsets(admitted.records) == [(ORDERS, 0, 5), (ORDERS, 0, 6), (ORDERS, 0, 7)]
    assert admitted.gaps == []


def test_partitions_are_admitted_independently() -> None:
    ledger = Ledger({(ORDERS, 0): 2, (ORDERS, 1): 0, (CALLS, 0): 4})
    admitted = ledger.admit([rec(1, 1), rec(2, 0), rec(0, 1), rec(4, 0, CALLS), rec(1, 0), rec(3, 0, CALLS)])
    by_tp = {tp: [o for t, p, o in offsets(admitted.records) if (t, p) == tp] for tp in ledger.next_offset}
    assert by_tp == {(ORDERS, 0): [2], (ORDERS, 1): [0, 1], (CALLS, 0): [4]}
    assert admitted.already_processed == 2
    assert admitted.gaps == []


def test_an_offset_past_the_ledger_names_the_gap_before_it() -> None:
    admitted = Ledger({(ORDERS, 0): 5}).admit([rec(8), rec(9)])
    assert admitted.gaps == [Gap(ORDERS, 0, 5, 8)]
    assert offsets(admitted.records) == [(ORDERS, 0, 8), (ORDERS, 0, 9)]


def test_a_hole_inside_a_batch_is_a_gap_too() -> None:
    admitted = Ledger({(ORDERS, 0): 5}).admit([rec(5), rec(9), rec(6)])
    assert admitted.gaps == [Gap(ORDERS, 0, 7, 9)]
    assert offsets(admitted.records) == [(ORDERS, 0, 5), (ORDERS, 0, 6), (ORDERS, 0, 9)]


def test_a_partition_the_ledger_does_not_know_starts_at_offset_zero() -> None:
    assert Ledger().admit([rec(0), rec(1)]).gaps == []
    assert Ledger().admit([rec(3)]).gaps == [Gap(ORDERS, 0, 0, 3)]


def test_an_offset_delivered_twice_in_one_batch_is_admitted_once() -> None:
    admitted = Ledger({(ORDERS, 0): 5}).admit([rec(5), rec(6), rec(5), rec(6), rec(7)])
    assert offsets(admitted.records) == [(ORDERS, 0, 5), (ORDERS, 0, 6), (ORDERS, 0, 7)]
    assert admitted.already_processed == 2
    assert admitted.gaps == []


def test_an_offset_past_a_gap_delivered_twice_names_the_gap_once() -> None:
    admitted = Ledger({(ORDERS, 0): 0}).admit([rec(4), rec(4)])
    assert admitted.gaps == [Gap(ORDERS, 0, 0, 4)]
    assert offsets(admitted.records) == [(ORDERS, 0, 4)]
    assert admitted.already_processed == 1


def test_admit_does_not_move_the_ledger() -> None:
    ledger = Ledger({(ORDERS, 0): 5})
    ledger.admit([rec(5), rec(6), rec(9)])
    assert ledger.next_offset == {(ORDERS, 0): 5}


# -- load -------------------------------------------------------------------------------


def test_load_takes_the_next_offset_after_the_sinks_last_processed_one() -> None:
    ledger = Ledger()
    ledger.load({(ORDERS, 0): 41, (ORDERS, 1): 0}, [(ORDERS, 0), (ORDERS, 1)])
    assert ledger.next_offset == {(ORDERS, 0): 42, (ORDERS, 1): 1}


def test_load_of_a_partition_the_sink_has_never_stored_starts_at_zero() -> None:
    ledger = Ledger()
    ledger.load({}, [(CALLS, 3)])
    assert ledger.next_offset == {(CALLS, 3): 0}
    assert ledger.knows((CALLS, 3)) and not ledger.knows((CALLS, 2))


def test_load_never_moves_the_ledger_backwards() -> None:
    ledger = Ledger({(ORDERS, 0): 10, (ORDERS, 1): 3})
    ledger.load({(ORDERS, 0): 2}, [(ORDERS, 0), (ORDERS, 1)])  # a stale figure, and none at all
    assert ledger.next_offset == {(ORDERS, 0): 10, (ORDERS, 1): 3}


def test_load_moves_forwards_when_another_worker_advanced_the_sink() -> None:
    ledger = Ledger({(ORDERS, 0): 10})
    ledger.load({(ORDERS, 0): 19}, [(ORDERS, 0)])
    assert ledger.next_offset == {(ORDERS, 0): 20}


def test_load_touches_only_the_partitions_named() -> None:
    ledger = Ledger({(ORDERS, 1): 3})
    ledger.load({(ORDERS, 0): 7, (ORDERS, 1): 50}, [(ORDERS, 0)])
    assert ledger.next_offset == {(ORDERS, 0): 8, (ORDERS, 1): 3}


# -- advance, last_offsets --------------------------------------------------------------


def test_advance_moves_past_the_offsets_processed() -> None:
    ledger = Ledger({(ORDERS, 0): 5})
    ledger.advance({(ORDERS, 0): 9, (CALLS, 2): 0})
    assert ledger.next_offset == {(ORDERS, 0): 10, (CALLS, 2): 1}


def test_advance_never_moves_the_ledger_backwards() -> None:
    ledger = Ledger({(ORDERS, 0): 10})
    ledger.advance({(ORDERS, 0): 3})
    assert ledger.next_offset == {(ORDERS, 0): 10}


def test_last_offsets_are_the_highest_offset_per_partition() -> None:
    records = [rec(7), rec(5), rec(2, 1), rec(6), rec(0, 0, CALLS)]
    assert last_offsets(records) == {(ORDERS, 0): 7, (ORDERS, 1): 2, (CALLS, 0): 0}


def test_last_offsets_of_nothing_is_empty() -> None:
    assert last_offsets([]) == {}


def test_an_admitted_batch_advanced_by_its_last_offsets_drops_its_redelivery() -> None:
    ledger = Ledger({(ORDERS, 0): 0})
    batch = [rec(0), rec(1), rec(2)]
    ledger.advance(last_offsets(ledger.admit(batch).records))
    again = ledger.admit([*batch, rec(3)])
    assert offsets(again.records) == [(ORDERS, 0, 3)]
    assert again.already_processed == 3
