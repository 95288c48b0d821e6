import csv

from hotline.schemas.registry import DISTRICT_GROUP, default_registry
from hotline.seed import TABLE


def test_registry_holds_the_seed_units_in_bulletin_order() -> None:
    with TABLE.open(encoding="utf-8") as fh:
        names = [row["unit"] for row in csv.DictReader(fh) if row["unit"] != "总计"]
    registry = default_registry()
    assert [u.name for u in registry] == names
    assert len(registry) == 54
    assert len({u.id for u in registry}) == 54


def test_the_eight_districts_and_zones_come_first() -> None:
    groups = [u.group for u in default_registry()]
    assert groups[:8] == [DISTRICT_GROUP] * 8
    assert DISTRICT_GROUP not in groups[8:]
