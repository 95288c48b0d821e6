"""The Word bulletin's charts: 回访满意率 by unit, and the month's daily 交办 and 逾期.

Drawn with matplotlib on its Agg canvas (no display, no pyplot state) with a CJK font found
through ``matplotlib.font_manager``; the PNGs are deterministic (fixed size and DPI, no
``Software`` metadata), so an issued Word file can be produced again byte for byte.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, cast

from hotline.reports import periods, queries
from hotline.reports.bulletin import Bulletin, Queryable
from hotline.reports.compare import unit_fraction
from hotline.schemas import metrics as mc

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Fonts with Chinese glyphs, in order of preference; the first one matplotlib finds is used.
# Debian: fonts-wqy-zenhei (the tests' machine has only WenQuanYi Zen Hei).
CJK_FAMILIES = (
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "SimHei",
    "Microsoft YaHei",
    "WenQuanYi Micro Hei",
)
DPI = 150
WIDTH_IN = 6.1  # the type area's 156 mm
LOW_COLOUR, HIGH_COLOUR = "#c00000", "#2e7d32"  # the bulletin's two lists: below the low, at or above the high
PNG_METADATA: dict[str, str | None] = {"Software": None}


def plain(label: str) -> str:
    """A label drawn as it is written: matplotlib reads ``$…$`` as mathtext, so a unit named by an
    event (``$\\foo$``) would fail the whole chart; a ``$`` is escaped."""
    return label.replace("$", r"\$")


class ChartFontMissing(RuntimeError):
    """No font with Chinese glyphs: charts would print empty boxes instead of unit names."""


@dataclass(frozen=True)
class DailySeries:
    """Per day of the month, the orders first dispatched that day and how many of them are overdue."""

    month: str
    days: tuple[date, ...]
    dispatched: tuple[int, ...]
    overdue: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "days": [d.isoformat() for d in self.days],
            mc.DISPATCHED.name: list(self.dispatched),
            mc.OVERDUE.name: list(self.overdue),
        }


def daily_series(db: Queryable, month: str) -> DailySeries:
    """The period's days (``month``: a period's key, a month's by default) from the cohort days'
    order states (the period's partitions, one query).

    Days are the cohort's: an order counts on the day of its first dispatch, and as 逾期 on that
    day when it was completed late or is still open past its deadline, as the table counts it.
    """
    sql = f"""
    SELECT cohort_day AS day, {queries.select_counts((mc.DISPATCHED, mc.OVERDUE))}
    FROM ({queries.order_rows(where=f"cohort_day {queries.DAYS}")})
    GROUP BY day
    ORDER BY day
    """
    period = periods.parse(month)
    rows = {r["day"]: r for r in db.query_rows(sql, queries.period_parameters(period))}
    days = tuple(period.start + timedelta(days=n) for n in range(period.days))
    return DailySeries(
        month,
        days,
        tuple(int(rows[d][mc.DISPATCHED.name]) if d in rows else 0 for d in days),
        tuple(int(rows[d][mc.OVERDUE.name]) if d in rows else 0 for d in days),
    )


def cjk_family() -> tuple[str, int | str]:
    """The first installed family of :data:`CJK_FAMILIES` and its weight (asking for another
    weight than the file's makes matplotlib warn on every text); a clear error when there is none."""
    from matplotlib import font_manager

    installed = {f.name: f.weight for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in installed:
            return family, installed[family]
    raise ChartFontMissing(
        "no font with Chinese glyphs for the bulletin's charts (looked for "
        + ", ".join(CJK_FAMILIES)
        + "): install one, e.g. `apt-get install fonts-wqy-zenhei`, then remove matplotlib's font cache "
        "(~/.cache/matplotlib) so it is found"
    )


@contextmanager
def _figure(height_in: float) -> Iterator[Figure]:
    """A figure in the CJK font, outside pyplot (no global state between charts)."""
    import matplotlib
    from matplotlib.figure import Figure

    family, weight = cjk_family()
    style: dict[str, Any] = {
        "font.family": [family],
        "font.weight": weight,
        "axes.labelweight": weight,
        "axes.titleweight": weight,
        "figure.titleweight": weight,
        "axes.unicode_minus": False,
        "font.size": 8,
        "svg.hashsalt": "hotline",
        "path.simplify": True,
    }
    with matplotlib.rc_context(cast(Any, style)):
        yield Figure(figsize=(WIDTH_IN, height_in), dpi=DPI)


def _png(fig: Figure) -> bytes:
    """PNG bytes with no timestamp or software version in them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata=PNG_METADATA)
    return out.getvalue()


def satisfaction_points(bulletin: Bulletin) -> list[tuple[str, float]]:
    """(unit, 回访满意率 in %) for every unit that has one, in the table's order."""
    points = []
    for unit in bulletin.units:
        value = unit_fraction(mc.SATISFACTION_RATE, unit)
        if value is not None:
            points.append((unit.name, float(value * 100)))
    return points


def satisfaction_png(bulletin: Bulletin) -> bytes | None:
    """Horizontal bars of 回访满意率 by unit with the office's two list cut-offs as lines; None when no
    unit has one."""
    points = satisfaction_points(bulletin)
    if not points:
        return None
    office = bulletin.office
    cut = office.bulletin.satisfaction_lists
    low, high = float(cut.low * 100), float(cut.high * 100)
    lines = ((low, office.percent(cut.low), LOW_COLOUR), (high, office.percent(cut.high), HIGH_COLOUR))
    with _figure(min(8.6, 1.2 + 0.14 * len(points))) as fig:
        ax = fig.add_subplot()
        names = [plain(name) for name, _ in points][::-1]
        values = [value for _, value in points][::-1]
        colours = [LOW_COLOUR if v < low else HIGH_COLOUR if v >= high else "#4a6fa5" for v in values]
        ax.barh(range(len(values)), values, color=colours, height=0.7)
        ax.set_yticks(range(len(names)), names, fontsize=6.5)
        ax.set_xlim(0, 100)
        ax.set_ylim(-0.6, len(values) - 0.4)
        for threshold, text, colour in lines:
            ax.axvline(threshold, color=colour, linestyle="--", linewidth=1)
            ax.text(threshold, len(values) - 0.3, text, color=colour, ha="center", va="bottom", fontsize=7)
        ax.set_xlabel(f"{mc.SATISFACTION_RATE.label}（%）")
        ax.grid(axis="x", linewidth=0.3, alpha=0.5)
        fig.tight_layout()
        return _png(fig)


def daily_png(series: DailySeries) -> bytes:
    """Bars of the orders dispatched each day, the overdue ones among them drawn over them."""
    with _figure(2.8) as fig:
        ax = fig.add_subplot()
        x = [d.day for d in series.days]
        ax.bar(x, series.dispatched, color="#4a6fa5", label=mc.DISPATCHED.label.removesuffix("数"))
        ax.bar(x, series.overdue, color="#c00000", label=mc.OVERDUE.label.removesuffix("数"))
        ax.set_xticks(x, [str(day) for day in x], fontsize=6.5)
        ax.set_xlim(0.3, len(x) + 0.7)
        ax.set_xlabel("日")
        ax.set_ylabel("工单（件）")
        ax.legend(loc="upper right", frameon=False)
        ax.grid(axis="y", linewidth=0.3, alpha=0.5)
        fig.tight_layout()
        return _png(fig)
