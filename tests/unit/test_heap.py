import gc
from collections.abc import Iterator

import pytest

from hotline.heap import THRESHOLDS, for_long_runs


@pytest.fixture
def restored_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_thresholds")
def test_long_runs_collect_cycles_rarely_but_still_collect() -> None:
    for_long_runs()
    assert gc.get_threshold() == THRESHOLDS
    assert gc.isenabled()
    assert THRESHOLDS[0] > 700  # CPython's default young threshold: what made the fold pay 40% for collection
