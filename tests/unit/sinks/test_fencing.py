"""The store's fencing rule, pure: per group and source partition, the generation holding it while its claim is live."""

from __future__ import annotations

import pytest

from hotline.sinks.fencing import Claims, Fence, StoreFenced

P0, P1 = ("hotline.orders", 0), ("hotline.orders", 1)


def _claimed(claims: Claims, group: str, fence: Fence) -> list[tuple[str, int]]:
    persisted: list[tuple[str, int]] = []
    claims.claim(group, fence, persisted.extend)
    return persisted


def test_a_call_for_a_partition_claimed_by_a_newer_generation_is_refused() -> None:
    claims = Claims()
    _claimed(claims, "g", Fence.of(6, [P0]))
    with pytest.raises(StoreFenced) as refused:
        claims.check("write", "g", Fence.of(5, [P0, P1]))
    assert refused.value.op == "write" and refused.value.generation == 5
    assert refused.value.claims == {P0: 6}, "only the partition a newer generation holds is named"


def test_a_call_of_the_claiming_or_a_newer_generation_passes() -> None:
    claims = Claims()
    _claimed(claims, "g", Fence.of(6, [P0]))
    claims.check("write", "g", Fence.of(6, [P0]))
    claims.check("record_progress", "g", Fence.of(7, [P0, P1]))


def test_an_older_claim_is_refused_and_changes_nothing() -> None:
    claims = Claims()
    _claimed(claims, "g", Fence.of(6, [P0]))
    with pytest.raises(StoreFenced):
        _claimed(claims, "g", Fence.of(5, [P0, P1]))
    assert claims.holder("g", P0) == 6 and claims.holder("g", P1) is None, "a refused claim holds nothing"


def test_only_rising_claims_are_persisted_and_they_count_only_once_persisted() -> None:
    claims = Claims()
    assert _claimed(claims, "g", Fence.of(6, [P0])) == [P0]
    assert _claimed(claims, "g", Fence.of(6, [P0, P1])) == [P1], "a repeated claim writes nothing"

    def failing(partitions: list[tuple[str, int]]) -> None:
        raise ConnectionError("ClickHouse is down")

    with pytest.raises(ConnectionError):
        claims.claim("g", Fence.of(7, [P0]), failing)
    assert claims.holder("g", P0) == 6, "a claim the store could not make durable does not fence anyone"


def test_each_consumer_group_counts_its_own_generations() -> None:
    claims = Claims()
    _claimed(claims, "hotline", Fence.of(40, [P0]))
    claims.check("write", "hotline-renamed", Fence.of(1, [P0]))  # a new HOTLINE_APP_ID starts at 1


def test_a_fence_and_a_refusal_travel_as_json() -> None:
    fence = Fence.of(3, [P1, P0, P0])
    assert fence.partitions == (P0, P1)
    assert Fence.from_json(fence.as_json()) == fence
    refusal = StoreFenced("write", 3, {P1: 4})
    again = StoreFenced.from_json(refusal.as_json())
    assert (again.op, again.generation, again.claims) == ("write", 3, {P1: 4})
    for bad in ({"generation": "3", "partitions": []}, {"generation": 3, "partitions": [["t"]]}, [3]):
        with pytest.raises(ValueError):
            Fence.from_json(bad)


class Clock:
    """The store's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_lapsed_claim_is_taken_by_a_lower_generation() -> None:
    clock = Clock()
    claims = Claims(lease_s=300, clock=clock)
    _claimed(claims, "g", Fence.of(57, [P0]))
    clock.now += 301  # the group had no member that long; Kafka deleted it, and it starts again at 1
    assert _claimed(claims, "g", Fence.of(1, [P0])) == [P0]
    assert claims.holder("g", P0) == 1
    with pytest.raises(StoreFenced):
        claims.check("write", "g", Fence.of(0, [P0]))


def test_calls_under_a_claim_renew_it() -> None:
    clock = Clock()
    claims = Claims(lease_s=300, clock=clock)
    _claimed(claims, "g", Fence.of(6, [P0]))
    for _ in range(3):
        clock.now += 200
        claims.check("write", "g", Fence.of(6, [P0]))  # the holder at work
    with pytest.raises(StoreFenced):
        claims.check("write", "g", Fence.of(5, [P0]))


def test_claims_read_back_at_a_stores_start_hold_a_full_lease() -> None:
    clock = Clock()
    claims = Claims({("g", *P0): 6}, lease_s=300, clock=clock)
    clock.now += 299
    with pytest.raises(StoreFenced):
        claims.check("write", "g", Fence.of(5, [P0]))
    clock.now += 2
    claims.check("write", "g", Fence.of(5, [P0]))


def test_a_claim_from_the_future_is_refused_and_changes_nothing() -> None:
    from hotline.sinks.fencing import MAX_GENERATION_STEP, ImplausibleClaim

    claims = Claims()
    _claimed(claims, "g", Fence.of(7, [P0, P1]))
    with pytest.raises(ImplausibleClaim):
        _claimed(claims, "g", Fence.of(7 + MAX_GENERATION_STEP + 1, [P0, P1]))
    assert claims.holder("g", P0) == 7
    claims.check("write", "g", Fence.of(7, [P0, P1]))  # the real holder still writes


def test_a_rising_generation_within_reach_is_taken() -> None:
    claims = Claims()
    _claimed(claims, "g", Fence.of(7, [P0]))
    assert _claimed(claims, "g", Fence.of(907, [P0])) == [P0]
