"""The office's edition of a month: the bulletin with what the bare month cannot know by itself.

``build_bulletin`` answers for one month. The document the office issues also compares with
the previous month (built the same way), lists the previous month's 补录 when that month was
issued, carries the daily series for its chart, and, once issued, its number and date. They
are attached here, in one place, so every format renders the same edition.
"""

from __future__ import annotations

from hotline.reports.bulletin import Bulletin, Queryable, build_bulletin, build_rates
from hotline.reports.charts import daily_series
from hotline.reports.compare import compare, previous_month
from hotline.reports.issued import Issue, late_data
from hotline.schemas.office import Office
from hotline.schemas.registry import Registry


def assemble(
    db: Queryable,
    month: str,
    registry: Registry | None = None,
    issue: Issue | None = None,
    office: Office | None = None,
) -> Bulletin:
    """The month's bulletin with month over month, 补录, the daily series and (when issuing) the issue;
    ``office`` is whose bulletin it is (the configured office's without)."""
    bulletin = build_bulletin(db, month, registry, office=office)
    before = previous_month(month)
    bulletin.comparison = compare(bulletin, build_rates(db, before, registry, office))
    bulletin.late = late_data(db, before, registry)
    bulletin.daily = daily_series(db, month)
    bulletin.issue = issue
    return bulletin
