import csv
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.schemas.office import current_office
from hotline.schemas.registry import RegistryError, default_registry, parse_registry, to_csv
from hotline.seed import TABLE

HEADER = "unit_id,name,group,order,valid_from,valid_to,successor\n"
# A year with a rename (same id) on 1 June and two units merged into a third on 1 July.
REORGANISED = HEADER + (
    "bank,市银保监局,市直部门,1,,2023-05-31,\n"
    "bank,金融监管分局,市直部门,1,2023-06-01,,\n"
    "water,市水务局,市直部门,2,,2023-06-30,resources\n"
    "land,市国土局,市直部门,3,,2023-06-30,resources\n"
    "resources,市资源局,市直部门,4,2023-07-01,,\n"
    "old,市老干局,市直部门,5,,2023-03-31,\n"
)


def test_registry_holds_the_seed_units_in_bulletin_order() -> None:
    with TABLE.open(encoding="utf-8") as fh:
        names = [row["unit"] for row in csv.DictReader(fh) if row["unit"] != "总计"]
    registry = default_registry()
    assert [u.name for u in registry] == names
    assert len(registry) == 54
    assert len({u.id for u in registry}) == 54


def test_the_eight_districts_and_zones_come_first() -> None:
    (districts,) = current_office().bulletin.ordered_groups
    groups = [u.group for u in default_registry()]
    assert groups[:8] == [districts] * 8
    assert districts not in groups[8:]


def test_a_month_is_reported_with_the_units_in_force_then() -> None:
    registry = parse_registry(REORGANISED)
    may = registry.during(date(2023, 5, 1), date(2023, 5, 31))
    august = registry.during(date(2023, 8, 1), date(2023, 8, 31))
    assert [u.name for u in may] == ["市银保监局", "市水务局", "市国土局"]
    assert [u.name for u in august] == ["金融监管分局", "市资源局"]


def test_a_renamed_unit_is_named_as_on_its_last_day_in_the_period() -> None:
    year = parse_registry(REORGANISED).during(date(2023, 1, 1), date(2023, 12, 31))
    assert year.by_id["bank"].name == "金融监管分局"


def test_an_event_is_known_only_while_its_unit_is_in_force() -> None:
    registry = parse_registry(REORGANISED)
    assert registry.knows("resources", date(2023, 7, 1))
    assert not registry.knows("resources", date(2023, 6, 30))
    assert registry.knows("water", date(2023, 6, 30))
    assert not registry.knows("water", date(2023, 7, 1))
    assert not registry.knows("nobody", date(2023, 7, 1))


def test_a_merged_units_earlier_figures_are_its_predecessors() -> None:
    registry = parse_registry(REORGANISED)
    assert registry.lineage("resources", date(2023, 6, 1), date(2023, 6, 30)) == {"water", "land"}
    assert registry.lineage("resources", date(2023, 7, 1), date(2023, 7, 31)) == {"resources"}


def test_a_renamed_unit_is_its_own_lineage() -> None:
    assert parse_registry(REORGANISED).lineage("bank", date(2023, 5, 1), date(2023, 5, 31)) == {"bank"}


def test_changes_are_dated_and_named() -> None:
    kinds = [(c.day.isoformat(), c.kind, c.unit_id) for c in parse_registry(REORGANISED).changes()]
    assert kinds == [
        ("2023-03-31", "retired", "old"),
        ("2023-06-01", "renamed", "bank"),
        ("2023-06-30", "succeeded", "land"),
        ("2023-06-30", "succeeded", "water"),
        ("2023-07-01", "merged", "resources"),
    ]


def test_a_unit_succeeding_one_under_a_new_id_replaces_it() -> None:
    registry = parse_registry(HEADER + "a,市甲局,g,1,,2023-03-31,b\nb,市乙局,g,1,2023-04-01,,\n")
    assert [(c.kind, c.unit_id, c.text) for c in registry.changes()] == [
        ("succeeded", "a", "市甲局 → b"),
        ("replaced", "b", "a → 市乙局"),
    ]
    assert registry.lineage("b", date(2023, 3, 1), date(2023, 3, 31)) == {"a"}


@given(st.permutations(REORGANISED.splitlines()[1:]))
def test_the_version_and_the_units_do_not_depend_on_the_rows_order(lines: list[str]) -> None:
    shuffled, original = parse_registry(HEADER + "\n".join(lines)), parse_registry(REORGANISED)
    assert shuffled.version == original.version
    assert (
        shuffled.during(date(2023, 1, 1), date(2023, 12, 31)).units
        == original.during(date(2023, 1, 1), date(2023, 12, 31)).units
    )


def test_the_version_changes_with_any_row() -> None:
    assert parse_registry(REORGANISED).version != parse_registry(REORGANISED.replace("市老干局", "市老干部局")).version


def test_the_csv_round_trips() -> None:
    registry = parse_registry(REORGANISED)
    assert parse_registry(to_csv(registry)).version == registry.version


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER + "a,甲,g,x,,,\n", "line 2: order: not a whole number"),
        (HEADER + "a,甲,g,1,2023-13-01,,\n", "line 2: valid_from: not a date"),
        (HEADER + "a,,g,1,,,\n", "line 2: name: missing"),
        (HEADER + "a,甲,g,1,,2023-01-31,b\n", "successor 'b' is not in the registry"),
        (HEADER + "a,甲,g,1,,,\na,乙,g,1,2023-01-01,,\n", "two rows in force on the same day"),
        (HEADER + "a,甲,g,1,2023-02-01,2023-01-31,\n", "is before valid_from"),
    ],
)
def test_a_bad_registry_names_the_line_and_column(text: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        parse_registry(text)
