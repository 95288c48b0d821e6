"""The store's wire: what a worker's calls announce, and which announcements the store takes."""

from __future__ import annotations

import pytest

from hotline.settings import Settings
from hotline.sinks.wire import METRICS_HEADER, WORKER_HEADER, announced, announcement


def test_a_worker_announces_its_web_and_its_metrics_address() -> None:
    settings = Settings(web_host="10.0.0.7", web_port=6067)
    assert announcement(settings) == {WORKER_HEADER: "10.0.0.7:6067", METRICS_HEADER: "http://10.0.0.7:6067/metrics"}
    found = announced(announcement(settings))
    assert found is not None and found == ("10.0.0.7:6067", "http://10.0.0.7:6067/metrics")


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("w:1", "http://127.0.0.1:6066/secret"),
        ("w:1", "http://127.0.0.1:6066/metrics?target=x"),
        ("w:1", "http://user:pass@127.0.0.1:6066/metrics"),
        ("w:1", "file:///metrics"),
        ("w:1", "http://127.0.0.1:port/metrics"),
        ("w:1", "http://127.0.0.1:6066/metrics" + "#" * 600),
        ("w\n1", "http://127.0.0.1:6066/metrics"),
        ('w"1', "http://127.0.0.1:6066/metrics"),
        ("", "http://127.0.0.1:6066/metrics"),
        ("w:1", ""),
    ],
)
def test_only_a_plain_metrics_address_under_a_plain_name_is_taken(name: str, url: str) -> None:
    assert announced({WORKER_HEADER: name, METRICS_HEADER: url}) is None
