"""When things happen: the month and its neighbour, office hours, working days, completion times.

Orders are dispatched, returned and completed in office hours on working days, visits
happen every day, and a completion is on time or late against the pipeline's own
deadline rule (``hotline.streams.deadlines``); the planners draw every moment from here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from hotline.streams.deadlines import DEFAULT_LIMITS, TZ, due_at, is_workday

WORK_START_S = 8 * 3600 + 30 * 60  # 08:30, office hours for dispatch, returns, completions
WORK_END_S = 17 * 3600 + 30 * 60  # 17:30
VISIT_START_S = 9 * 3600  # return visits by the front desk, every day
VISIT_END_S = 20 * 3600


@dataclass(frozen=True)
class Month:
    """Month M and its neighbours, in the office's time zone."""

    start: datetime
    end: datetime  # exclusive
    prev_start: datetime

    @classmethod
    def of(cls, year: int, month: int) -> Month:
        start = datetime(year, month, 1, tzinfo=TZ)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=TZ)
        prev_start = datetime(year - (month == 1), (month - 2) % 12 + 1, 1, tzinfo=TZ)
        return cls(start, end, prev_start)

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()

    def days(self, previous: bool = False) -> list[date]:
        first = (self.prev_start if previous else self.start).date()
        stop = (self.start if previous else self.end).date()
        return [first + timedelta(days=i) for i in range((stop - first).days)]

    def workdays(self, previous: bool = False) -> list[date]:
        return [d for d in self.days(previous) if is_workday(d)]


def at(day: date, seconds: int) -> datetime:
    """Local time ``seconds`` after midnight of ``day``."""
    return datetime.combine(day, time(), tzinfo=TZ) + timedelta(seconds=seconds)


def work_time(day: date, rng: random.Random) -> datetime:
    return at(day, rng.randint(WORK_START_S, WORK_END_S))


def next_workday(day: date) -> date:
    day += timedelta(days=1)
    while not is_workday(day):
        day += timedelta(days=1)
    return day


def workday_after(day: date, n: int) -> date:
    for _ in range(n):
        day = next_workday(day)
    return day


def next_work_moment(t: datetime, rng: random.Random) -> datetime:
    """``t`` if it is in office hours, else shortly after the next opening."""
    seconds = t.hour * 3600 + t.minute * 60 + t.second
    day = t.date()
    if is_workday(day) and WORK_START_S <= seconds <= WORK_END_S:
        return t
    if not (is_workday(day) and seconds < WORK_START_S):
        day = next_workday(day)
    return at(day, WORK_START_S + rng.randint(0, 2700))


def work_after(t: datetime, rng: random.Random, min_minutes: int, max_minutes: int) -> datetime:
    """An office-hours moment strictly after ``t``: an office step that takes a while."""
    return next_work_moment(t + timedelta(minutes=rng.randint(min_minutes, max_minutes)), rng)


def visit_time(day: date, rng: random.Random) -> datetime:
    return at(day, rng.randint(VISIT_START_S, VISIT_END_S))


def on_time_completion(
    dispatched: datetime, order_type: str, rng: random.Random, close_by: date | None = None
) -> datetime:
    """1-4 working days after dispatch, never after the deadline.

    With ``close_by`` (the month's last day) units hurry to close the month, as
    they do: the delay is capped so the completion stays in the month, down to
    a same-day completion for orders that arrive on the last working day.
    """
    limit = DEFAULT_LIMITS.get(order_type, DEFAULT_LIMITS["other"])
    day = dispatched.date()
    delays = range(1, max(1, min(4, limit - 1)) + 1)
    if close_by is not None:
        delays = range(1, 1 + sum(workday_after(day, d) <= close_by for d in delays)) or range(1, 2)
        seconds = dispatched.hour * 3600 + dispatched.minute * 60 + dispatched.second
        if workday_after(day, 1) > close_by and seconds + 3600 <= WORK_END_S:
            return at(day, rng.randint(seconds + 1800, WORK_END_S))
    done = work_time(workday_after(day, rng.choice(delays)), rng)
    deadline = due_at(dispatched, order_type)
    return done if dispatched < done <= deadline else deadline


def late_completion(dispatched: datetime, order_type: str, rng: random.Random) -> datetime:
    """1-3 working days after the deadline's day, so strictly after the deadline."""
    return work_time(workday_after(due_at(dispatched, order_type).date(), rng.randint(1, 3)), rng)
