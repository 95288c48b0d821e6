"""The office's edition of a period: the bulletin with what the bare period cannot know by itself.

``build_bulletin`` answers for one period. The document the office issues also compares with
the previous period (环比) and the same period a year before (同比), built the same way, but
only when both periods are complete (:mod:`hotline.reports.coverage`): otherwise it says which
period is incomplete and from when data exist. It lists the previous month's 补录 when that
month was issued, carries the daily series for its chart, and, once issued, its number and
date. They are attached here, in one place, so every format renders the same edition.
"""

from __future__ import annotations

from hotline.reports import periods
from hotline.reports.bulletin import Bulletin, Queryable, build_bulletin, build_rates, period_of
from hotline.reports.charts import daily_series
from hotline.reports.compare import PERIOD_OVER_PERIOD, YEAR_OVER_YEAR, Withheld, compare
from hotline.reports.coverage import Coverage, coverage, issued
from hotline.reports.issued import Issue, late_data
from hotline.reports.periods import Kind, Period
from hotline.schemas.office import Office
from hotline.schemas.registry import Registry, default_registry


def incomplete(db: Queryable, held: Coverage, period: Period, name: str) -> str | None:
    """Why ``period`` cannot be compared (``10月数据自10月8日起，不完整``), or None: it is complete
    by coverage, or it was issued (what went out is the record)."""
    reason = held.gap(period, name)
    if reason is None or issued(db, period):
        return None
    return reason


def _others(period: Period) -> tuple[tuple[str, Period, str], ...]:
    """The comparisons a period's bulletin makes: kind, the other period, and how the sentence names it."""
    before, year_before = periods.previous(period), periods.year_before(period)
    return (PERIOD_OVER_PERIOD, before, before.short), (YEAR_OVER_YEAR, year_before, year_before.label)


def compare_honestly(
    db: Queryable, bulletin: Bulletin, registry: Registry | None = None, office: Office | None = None
) -> None:
    """Attach 环比 and 同比 where both periods are complete, else what is withheld and why."""
    shown = bulletin.period
    held = coverage(db)
    bulletin.coverage = held
    own = incomplete(db, held, shown, shown.term)
    withheld: list[Withheld] = []
    for kind, other, name in _others(shown):
        reasons = tuple(r for r in (own, incomplete(db, held, other, name)) if r is not None)
        if reasons:
            withheld.append(Withheld(kind, other.key, reasons))
            continue
        made = compare(bulletin, build_rates(db, other, registry, office), kind, registry or default_registry())
        if kind == PERIOD_OVER_PERIOD:
            bulletin.comparison = made
        else:
            bulletin.year_over_year = made
    bulletin.withheld = tuple(withheld)


def assemble(
    db: Queryable,
    month: str | Period,
    registry: Registry | None = None,
    issue: Issue | None = None,
    office: Office | None = None,
) -> Bulletin:
    """The period's bulletin (``month``: any period's key, a month's by default) with its honest
    comparisons, 补录 (for a month), the daily series and (when issuing) the issue; ``office`` is
    whose bulletin it is (the configured office's without)."""
    shown = period_of(month)
    bulletin = build_bulletin(db, shown, registry, office=office)
    compare_honestly(db, bulletin, registry, office)
    if shown.kind is Kind.MONTH:
        bulletin.late = late_data(db, periods.previous(shown).key, registry)
    bulletin.daily = daily_series(db, shown.key)
    bulletin.issue = issue
    return bulletin
