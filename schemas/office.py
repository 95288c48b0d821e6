"""The office profile: who issues the bulletin, in which time zone, by which lists and standards.

Everything that differs from one 12345 office to the next lives in one TOML file, so a new
office sets itself up from files rather than code: its names and masthead, the time zone
in which a local day or month is counted, the bulletin's lists and minimum standards, the
sections it prints and its 办理时限. ``HOTLINE_OFFICE`` names the file; unset, the shipped
demo profile (package data) serves the demo. The profile also names the office's unit
registry CSV (relative to the profile), which stands in until a registry is imported.

There is one loading point, :func:`load_office`; :func:`current_office` caches the
configured one for the process. A local day is a process-wide notion (the contract, the
deadlines and the store's DDL all use it), so the time zone is read once at import
(:data:`hotline.schemas.events.TZ`); everything else is handed down as an :class:`Office`
value, which tests swap by passing another one.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

DATA = Path(__file__).parent / "data"
DEFAULT_PROFILE = DATA / "xiangtan.toml"


def _share(value: Decimal) -> Decimal:
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1")
    return value


Share = Annotated[Decimal, AfterValidator(_share)]


class OfficeError(ValueError):
    """A profile that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Names(_Strict):
    """How the office and its hotline are called in print."""

    city: str = Field(min_length=1, description="The city as the bulletin names it (e.g. 某某市).")
    hotline: str = Field(min_length=1, description="The hotline's name in the first sentence of section 一.")
    office: str = Field(min_length=1, description="The issuing office, printed in the masthead and as author.")
    masthead: str = Field(min_length=1, description="The red title of the Word file's masthead (版头).")
    title: str = Field(min_length=1, description="The bulletin's title after the period, e.g. 12345热线工作情况通报.")
    table: str = Field(min_length=1, description="The attachment table's title after the period.")


class SatisfactionLists(_Strict):
    """Section （三）'s two lists of units by 回访满意率."""

    high: Share = Field(description="Units at or above this 回访满意率 are listed as doing well.")
    low: Share = Field(description="Units below this 回访满意率 are listed as doing badly.")


class Sections(_Strict):
    """Which optional sections the office prints."""

    provincial_checks: bool = Field(
        description="Section 二 (the provincial 12345 platform's checks): only where a provincial platform checks "
        "the office."
    )


class BulletinRules(_Strict):
    """The bulletin's lists and standards."""

    satisfaction_lists: SatisfactionLists
    most_deducted_share: Share = Field(
        description="Test-call items that lost at least this share of the largest deduction are named 扣分较多."
    )
    standards: dict[str, Share] = Field(
        default_factory=dict,
        description="Minimum standard per catalogue rate (metric name -> share); units below one are listed "
        "as 未达标. Empty: no standards section.",
    )
    ordered_groups: tuple[str, ...] = Field(
        default=(),
        description="Unit groups printed first and in registry order (e.g. districts); the other units follow by "
        "交办数, the most first.",
    )
    top_units: int = Field(default=5, ge=1, le=10, description="How many units a 'the most' sentence names.")
    sections: Sections

    @field_validator("standards")
    @classmethod
    def _known_rates(cls, standards: dict[str, Decimal]) -> dict[str, Decimal]:
        from hotline.schemas import metrics as mc

        per_unit = set(mc.UNIT_COUNTS)
        rates = {
            m.name
            for m in mc.CATALOGUE
            if isinstance(m, mc.Rate) and {*m.numerator, m.denominator} <= per_unit  # judged per unit
        }
        unknown = sorted(set(standards) - rates)
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)}: not a unit rate of the catalogue (one of {', '.join(sorted(rates))})"
            )
        return standards


class Office(_Strict):
    """One office's profile, as read from its TOML file."""

    timezone: str = Field(description="The IANA time zone in which a local day and month are counted.")
    week_starts_on: int = Field(default=1, ge=1, le=7, description="ISO weekday a reporting week starts on (1: Mon).")
    registry: str = Field(
        description="The unit registry CSV, relative to the profile: used until `hotline units import` stores one."
    )
    deadlines: dict[str, int] = Field(
        description="办理时限 in working days by order type (complaint, help, suggestion, consultation, other).",
    )
    names: Names
    bulletin: BulletinRules
    source: Path = Field(default=DEFAULT_PROFILE, exclude=True, description="Where the profile was read from.")

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, key: str) -> str:
        try:
            ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {key!r}") from exc
        return key

    @field_validator("deadlines")
    @classmethod
    def _every_type(cls, days: dict[str, int]) -> dict[str, int]:
        missing = sorted({"complaint", "help", "suggestion", "consultation", "other"} - set(days))
        if missing:
            raise ValueError(f"missing order types: {', '.join(missing)}")
        if any(n < 1 for n in days.values()):
            raise ValueError("working days must be at least 1")
        return days

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def registry_path(self) -> Path:
        return self.source.parent / self.registry

    def percent(self, share: Decimal) -> str:
        """``92.5%``: a threshold as the bulletin prints it."""
        return f"{(share * 100).normalize():f}%"


def _location(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(top)"


def load_office(path: Path | str | None = None) -> Office:
    """The profile at ``path`` (the shipped demo one without), validated; a bad one raises
    :class:`OfficeError` naming the file and the key, so an office fixes its file, not our code."""
    path = Path(path) if path else DEFAULT_PROFILE
    where = f"office profile {path.name}"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise OfficeError(f"{where}: cannot be read ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise OfficeError(f"{where}: not valid TOML ({exc})") from exc
    try:
        office = Office.model_validate({**raw, "source": path})
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        raise OfficeError(f"{where}: {_location(first)}: {message}") from exc
    if not office.registry_path.is_file():
        raise OfficeError(f"{where}: registry: no file {office.registry_path}")
    return office


@lru_cache(maxsize=1)
def current_office() -> Office:
    """The office this process serves: ``HOTLINE_OFFICE``'s profile, else the shipped one.

    Read at import (the time zone): that one setting only, so a bad other one is said by the
    command that loads the settings, in one line, not by a traceback from an import."""
    from hotline.settings import office_setting

    return load_office(office_setting())
