"""The systemd units: what a long-running service needs from its unit."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[3] / "deploy" / "systemd"


@pytest.mark.parametrize(
    "unit", ["hotline-store.service", "hotline-worker@.service", "hotline-kafka@.service", "hotline-notify.service"]
)
def test_each_service_may_hold_more_descriptors_than_systemds_default(unit: str) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / unit)
    assert int(parser["Service"]["LimitNOFILE"]) >= 65536
