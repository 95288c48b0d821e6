"""The office profile: one TOML file, validated, whose errors name the file and the key."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from hotline.schemas.office import DEFAULT_PROFILE, OfficeError, current_office, load_office
from hotline.settings import Settings

SHIPPED = DEFAULT_PROFILE.read_text(encoding="utf-8")


def _profile(tmp_path: Path, text: str, name: str = "office.toml") -> Path:
    (tmp_path / "units.csv").write_text("unit_id,name,group,order\na,甲局,部门,1\n", encoding="utf-8")
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _replace(old: str, new: str) -> str:
    assert old in SHIPPED, old
    return SHIPPED.replace(old, new, 1)


def test_the_shipped_profile_is_the_default() -> None:
    office = load_office()
    assert office.source == DEFAULT_PROFILE
    assert office.zone.key == tomllib.loads(SHIPPED)["timezone"]
    assert office.registry_path.is_file()


def test_the_setting_names_the_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _profile(tmp_path, _replace('timezone = "Asia/Shanghai"', 'timezone = "Asia/Urumqi"'))
    assert Settings(office=path).office == path
    monkeypatch.setenv("HOTLINE_OFFICE", str(path))
    from hotline.settings import get_settings

    get_settings.cache_clear()
    current_office.cache_clear()
    try:
        assert current_office().timezone == "Asia/Urumqi"
    finally:
        monkeypatch.delenv("HOTLINE_OFFICE")
        get_settings.cache_clear()
        current_office.cache_clear()


def test_a_share_out_of_range_is_named_by_its_key(tmp_path: Path) -> None:
    path = _profile(tmp_path, _replace("high = 0.8", "high = 80"), "xiangtan.toml")
    with pytest.raises(
        OfficeError, match=r"^office profile xiangtan.toml: bulletin.satisfaction_lists.high: must be between 0 and 1$"
    ):
        load_office(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('timezone = "Asia/Shanghai"', 'timezone = "Mars/Olympus"', "timezone: unknown time zone 'Mars/Olympus'"),
        ("consultation = 3\n", "", "deadlines: missing order types: consultation"),
        ("complaint = 5", "complaint = 0", "deadlines: working days must be at least 1"),
        (
            "[bulletin.standards]",
            "[bulletin.standards]\nconnection_rate = 0.9",
            "bulletin.standards: connection_rate: not a unit rate",
        ),
        (
            "[bulletin.standards]",
            "[bulletin.standards]\nsatisfaction_rate = 1.5",
            "bulletin.standards.satisfaction_rate: must be between 0 and 1",
        ),
        (
            "provincial_checks = true",
            "provincial_checks = true\nprovince = true",
            "bulletin.sections.province: Extra inputs",
        ),
        ('masthead = "', 'mast = "', "names.masthead: Field required"),
        ('registry = "units.csv"', 'registry = "nowhere.csv"', "registry: no file"),
    ],
)
def test_a_bad_profile_names_the_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(OfficeError, match=f"^office profile office.toml: {message}"):
        load_office(_profile(tmp_path, _replace(old, new)))


def test_a_file_that_is_not_toml_says_so(tmp_path: Path) -> None:
    with pytest.raises(OfficeError, match=r"office profile office\.toml: not valid TOML"):
        load_office(_profile(tmp_path, "timezone = \n"))


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(OfficeError, match=r"office profile absent\.toml: cannot be read"):
        load_office(tmp_path / "absent.toml")


def test_standards_are_read_as_exact_shares(tmp_path: Path) -> None:
    office = load_office(
        _profile(tmp_path, _replace("[bulletin.standards]", "[bulletin.standards]\nsatisfaction_rate = 0.925"))
    )
    assert office.bulletin.standards == {"satisfaction_rate": Decimal("0.925")}
    assert office.percent(office.bulletin.standards["satisfaction_rate"]) == "92.5%"


def test_the_registry_is_read_beside_the_profile(tmp_path: Path) -> None:
    office = load_office(_profile(tmp_path, SHIPPED))
    assert office.registry_path == tmp_path / "units.csv"
