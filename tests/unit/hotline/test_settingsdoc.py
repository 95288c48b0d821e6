"""The configuration page is generated from ``Settings``: every field described, the page never stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel, Field

from hotline import settingsdoc
from hotline.settings import Settings

REPO = Path(__file__).resolve().parents[3]
PAGE = REPO / "docs" / "configuration.md"
REGENERATE = "regenerate it: python -m hotline.settingsdoc > docs/configuration.md"


def test_every_setting_has_a_description() -> None:
    missing = settingsdoc.undescribed(Settings)
    assert not missing, f"add description= to these fields of hotline.settings.Settings: {missing}"


def test_a_field_without_a_description_is_found() -> None:
    class Partial(BaseModel):
        described: int = Field(default=1, description="Has one.")
        bare: int = 2
        blank: str = Field(default="", description="  ")

    assert settingsdoc.undescribed(Partial) == ["bare", "blank"]


def test_the_configuration_page_is_what_the_generator_writes() -> None:
    assert PAGE.read_text(encoding="utf-8") == settingsdoc.render(), REGENERATE


def test_python_m_hotline_settingsdoc_prints_the_page() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hotline.settingsdoc"], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout == settingsdoc.render()


def test_one_row_per_setting_in_the_order_of_the_settings() -> None:
    rows = [line for line in settingsdoc.render().splitlines() if line.startswith("| `HOTLINE_")]
    names = [row.split("`")[1] for row in rows]
    assert names == [f"HOTLINE_{name.upper()}" for name in Settings.model_fields]


def _row(name: str) -> list[str]:
    variable = f"`{settingsdoc.variable(name)}`"
    [line] = [line for line in settingsdoc.render().splitlines() if line.startswith(f"| {variable} |")]
    return [cell.strip() for cell in line.strip("|").split(" | ")]


def test_defaults_are_written_as_in_the_environment() -> None:
    assert _row("var_dir")[1] == "`var`"
    assert _row("web_port")[1] == "`6066`"
    assert _row("batch_within_s")[1] == "`0.5`"
    assert _row("session_timeout_s")[1] == "`10`", "a whole number of seconds, not 10.0"
    assert _row("alert_leads_s")[1] == "`[86400, 7200]`", "a JSON list"
    assert _row("deadline_days")[1] == "`{}`", "a JSON object"
    assert _row("alert_channels")[1] == "`{}`"
    assert _row("store_url")[1] == "*unset*"
    assert _row("web_bind")[1] == "*empty*"


def test_no_secret_default_is_shown() -> None:
    secrets = [name for name in Settings.model_fields if settingsdoc.is_secret(name)]
    assert {"kafka_sasl_password", "api_token", "ticket_secret", "store_token"} <= set(secrets)
    for name in secrets:
        assert _row(name)[1] == "—", name


def test_derived_defaults_name_real_fields() -> None:
    assert set(settingsdoc.DERIVED) <= set(Settings.model_fields)


def test_a_description_cannot_break_the_table() -> None:
    for name, info in Settings.model_fields.items():
        assert "\n" not in settingsdoc._cell(info.description or ""), name
        assert len(_row(name)) == 3, name
