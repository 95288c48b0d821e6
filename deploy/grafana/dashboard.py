"""Builds ``hotline-monthly.json``: the bulletin's monthly per-unit figures as a Grafana dashboard.

Generated rather than hand-written so that its SQL is the bulletin's own
(``reports/queries.py``: cohort month, latest dispatch's unit and deadline, first
completion after it), its figures, column titles and rates the metric catalogue's
(``hotline.schemas.metrics``) and its unit names and row order the registry's; a unit
test runs the generated SQL on chDB and compares it with the bulletin, and checks
that the committed JSON is what this module produces. Regenerate after changing
either::

    python -m hotline.deploy.grafana.dashboard > deploy/grafana/hotline-monthly.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

from hotline.reports import queries
from hotline.schemas import metrics as mc
from hotline.schemas.events import TZ
from hotline.schemas.metrics import Metric, Rate
from hotline.schemas.office import current_office
from hotline.schemas.registry import Registry, default_registry

PLUGIN = "grafana-clickhouse-datasource"
DATASOURCE = {"type": PLUGIN, "uid": "${datasource}"}
MONTH_SQL = "toYYYYMM(toDate('${month}-01'))"

# The catalogue's figures each panel shows, in column order.
TABLE: tuple[Metric, ...] = (
    mc.DISPATCHED,
    mc.COMPLETED_ON_TIME,
    mc.OVERDUE,
    mc.RETURNED,
    mc.ON_TIME_RATE,
    mc.VISITS,
    mc.VISITS_UNREACHED,
    mc.VISITS_SATISFIED,
    mc.SATISFACTION_RATE,
    mc.NOT_REPLIED,
    mc.PHONE_SUPERVISED,
    mc.WRITTEN_SUPERVISED,
)
TOTALS: tuple[Metric, ...] = (
    mc.DISPATCHED,
    mc.COMPLETED_ON_TIME,
    mc.OVERDUE,
    mc.RETURNED,
    mc.VISITS,
    mc.ON_TIME_RATE,
    mc.SATISFACTION_RATE,
)


def column(m: Metric) -> str:
    """A figure's column title: the bulletin's label; a rate is a number of percent here."""
    return f"{m.label}(%)" if isinstance(m, Rate) else m.label


SATISFACTION_COLUMN = column(mc.SATISFACTION_RATE)
OVERDUE_COLUMN = column(mc.OVERDUE)


def _sql(template: str) -> str:
    """A bulletin query with Grafana's variables in place of the client-side parameters (the period: the month)."""
    first_day, last_day = "'${month}-01'", "toLastDayOfMonth(toDate('${month}-01'))"
    bound = {"%(month)s": MONTH_SQL, "%(first_month)s": MONTH_SQL, "%(last_month)s": MONTH_SQL}
    bound |= {"%(start)s": first_day, "%(end)s": last_day}
    sql = template.replace("{db}", "${database}")
    for parameter, value in bound.items():
        sql = sql.replace(parameter, value)
    return sql.strip()


def _literal(value: str | int) -> str:
    return mc.sql_literal(value)


def _array(values: list[str] | list[int]) -> str:
    return "[" + ", ".join(_literal(v) for v in values) + "]"


def _joined(registry: Registry) -> str:
    """Order columns and event columns of the month, one row per unit with any activity."""
    ids = [u.id for u in registry]
    counts = ",\n       ".join(
        [f"o.{m.name} AS {m.name}" for m in mc.COHORT_COUNTS]
        + [f"e.{m.name} AS {m.name}" for m in mc.UNIT_EVENT_COUNTS]
    )
    return f"""
SELECT if(o.unit_id != '', o.unit_id, e.unit_id) AS unit,
       transform(unit, {_array(ids)}, {_array([u.name for u in registry])}, unit) AS name,
       transform(unit, {_array(ids)}, {_array([u.group for u in registry])}, '') AS unit_group,
       transform(unit, {_array(ids)}, {_array([u.order for u in registry])}, 10000) AS unit_order,
       {counts}
FROM ({_sql(queries.ORDER_COLUMNS)}) AS o
FULL OUTER JOIN ({_sql(queries.EVENT_COLUMNS)}) AS e ON o.unit_id = e.unit_id"""


def _per_unit(m: Metric) -> str:
    """A figure over one unit's row: NULL ('-') where the bulletin prints '-'."""
    expr = m.sql() if isinstance(m, Rate) else m.name
    return f"if({mc.FEEDBACK_EVENTS.name} = 0, NULL, {expr})" if mc.needs_feedback(m) else expr


def _ordered() -> str:
    """Whether a row's unit is of the office's groups printed first in registry order (SQL)."""
    groups = current_office().bulletin.ordered_groups
    return f"unit_group IN ({', '.join(mc.sql_literal(g) for g in groups)})" if groups else "false"


def per_unit_sql(registry: Registry) -> str:
    """The attachment table: '-' (NULL) where the bulletin prints '-', its row order."""
    columns = ",\n       ".join([f'name AS "{mc.UNIT_LABEL}"', *(f'{_per_unit(m)} AS "{column(m)}"' for m in TABLE)])
    return f"""SELECT {columns}
FROM ({_joined(registry)})
ORDER BY if({_ordered()}, 0, 1), if({_ordered()}, unit_order, 0),
         {mc.DISPATCHED.name} DESC, unit_order"""


def totals_sql(registry: Registry) -> str:
    def total(m: Metric) -> str:
        return m.sql(lambda p: f"sum({p.name})") if isinstance(m, Rate) else f"sum({m.name})"

    columns = ",\n       ".join(f'{total(m)} AS "{column(m)}"' for m in TOTALS)
    return f"""SELECT {columns}
FROM ({_joined(registry)})"""


def _target(sql: str) -> dict[str, Any]:
    return {
        "refId": "A",
        "datasource": DATASOURCE,
        "editorType": "sql",
        "queryType": "table",
        "format": 1,
        "rawSql": sql,
    }


def _override(column: str, steps: list[dict[str, Any]], mode: str) -> dict[str, Any]:
    return {
        "matcher": {"id": "byName", "options": column},
        "properties": [
            {"id": "thresholds", "value": {"mode": "absolute", "steps": steps}},
            {"id": "custom.cellOptions", "value": {"type": mode}},
        ],
    }


def _panels(registry: Registry) -> list[dict[str, Any]]:
    stats = {
        "id": 1,
        "type": "stat",
        "title": "${month} 全市汇总",
        "gridPos": {"h": 5, "w": 24, "x": 0, "y": 0},
        "datasource": DATASOURCE,
        "targets": [_target(totals_sql(registry))],
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "textMode": "auto"},
        "fieldConfig": {"defaults": {"decimals": 0}, "overrides": []},
    }
    red: list[dict[str, Any]] = [{"color": "transparent", "value": None}, {"color": "red", "value": 1}]
    satisfaction: list[dict[str, Any]] = [{"color": "red", "value": None}, {"color": "transparent", "value": 50}]
    table = {
        "id": 2,
        "type": "table",
        "title": "${month} 成员单位办理情况（通报附件口径）",
        "gridPos": {"h": 24, "w": 24, "x": 0, "y": 5},
        "datasource": DATASOURCE,
        "targets": [_target(per_unit_sql(registry))],
        "options": {"showHeader": True, "cellHeight": "sm"},
        "fieldConfig": {
            "defaults": {"noValue": "-", "custom": {"align": "auto"}},
            "overrides": [
                _override(OVERDUE_COLUMN, red, "color-background"),
                _override(SATISFACTION_COLUMN, satisfaction, "color-background"),
            ],
        },
    }
    return [stats, table]


def _variables() -> list[dict[str, Any]]:
    months = (
        "SELECT DISTINCT formatDateTime(occurred_at, '%Y-%m') AS month "
        "FROM ${database}.events FINAL ORDER BY month DESC"
    )
    return [
        {"name": "datasource", "label": "ClickHouse 数据源", "type": "datasource", "query": PLUGIN, "current": {}},
        {
            "name": "database",
            "label": "数据库",
            "type": "textbox",
            "query": "hotline",
            "current": {"text": "hotline", "value": "hotline"},
        },
        {
            "name": "month",
            "label": "月份",
            "type": "query",
            "datasource": DATASOURCE,
            "query": months,
            "definition": months,
            "refresh": 1,
            "sort": 0,
            "current": {},
        },
    ]


def build_dashboard(registry: Registry | None = None) -> dict[str, Any]:
    return {
        "__requires": [{"type": "datasource", "id": PLUGIN, "name": "ClickHouse", "version": "4.0.0"}],
        "uid": "hotline-monthly",
        "title": "12345 热线 · 月度通报指标",
        "description": "Per-unit monthly figures by the bulletin's rules, from deploy/grafana/dashboard.py.",
        "tags": ["hotline", "12345"],
        "timezone": TZ.key,  # the office's
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "",
        "time": {"from": "now-90d", "to": "now"},
        "annotations": {"list": []},
        "templating": {"list": _variables()},
        "panels": _panels(registry or default_registry()),
    }


def render(registry: Registry | None = None) -> str:
    return json.dumps(build_dashboard(registry), ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
