"""Order deadlines in working days, honouring China's holidays and make-up workdays (调休).

The calendar comes from the maintained ``chinese_calendar`` package; for years it
does not cover yet we fall back to Monday–Friday and log it once, rather than
refusing to compute a deadline.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from functools import lru_cache

import chinese_calendar

from hotline.schemas.events import TZ as OFFICE_TZ
from hotline.schemas.office import Office, current_office
from hotline.settings import Settings

log = logging.getLogger(__name__)

TZ = OFFICE_TZ  # the office's time zone, defined with the contract

# 办理时限 by order type, in working days: the office profile's (``[deadlines]``).
DEFAULT_LIMITS: dict[str, int] = dict(current_office().deadlines)


def limits_of(settings: Settings, office: Office | None = None) -> dict[str, int]:
    """The 办理时限 in force: the office profile's, with ``HOTLINE_DEADLINE_DAYS``'s overrides over them."""
    return {**(office or current_office()).deadlines, **settings.deadline_days}


@lru_cache(maxsize=4096)
def is_workday(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        _warn_uncovered(day.year)
        return day.weekday() < 5


@lru_cache(maxsize=64)
def _warn_uncovered(year: int) -> None:
    log.warning("chinese_calendar has no holiday data for %s: using Monday-Friday", year)


def add_working_days(start: datetime, days: int) -> datetime:
    """The same local time of day, ``days`` working days after ``start``'s date."""
    local = start.astimezone(TZ)
    current = local.date()
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if is_workday(current):
            remaining -= 1
    return datetime.combine(current, local.timetz())


def due_at(dispatched_at: datetime, order_type: str, limits: dict[str, int] | None = None) -> datetime:
    """Deadline of a dispatch that did not carry ``due_at``."""
    table = limits or DEFAULT_LIMITS
    return add_working_days(dispatched_at, table.get(order_type, DEFAULT_LIMITS["other"]))
