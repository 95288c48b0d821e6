"""Builds ``hotline-monthly.json``: the bulletin's monthly per-unit figures as a Grafana dashboard.

Generated rather than hand-written so that its SQL is the bulletin's own
(``reports/queries.py``: cohort month, latest dispatch's unit and deadline, first
completion after it) and its unit names and row order are the registry's; a unit
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
from hotline.schemas.registry import DISTRICT_GROUP, Registry, default_registry

PLUGIN = "grafana-clickhouse-datasource"
DATASOURCE = {"type": PLUGIN, "uid": "${datasource}"}
MONTH_SQL = "toYYYYMM(toDate('${month}-01'))"
SATISFACTION_COLUMN = "回访满意率(%)"
OVERDUE_COLUMN = "逾期数"


def _sql(template: str) -> str:
    """A bulletin query with Grafana's variables in place of the client-side parameters."""
    return template.replace("{db}", "${database}").replace("%(month)s", MONTH_SQL).strip()


def _literal(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _array(values: list[str] | list[int]) -> str:
    return "[" + ", ".join(_literal(v) for v in values) + "]"


def _joined(registry: Registry) -> str:
    """Order columns and event columns of the month, one row per unit with any activity."""
    ids = [u.id for u in registry]
    return f"""
SELECT if(o.unit_id != '', o.unit_id, e.unit_id) AS unit,
       transform(unit, {_array(ids)}, {_array([u.name for u in registry])}, unit) AS name,
       transform(unit, {_array(ids)}, {_array([u.group for u in registry])}, '') AS unit_group,
       transform(unit, {_array(ids)}, {_array([u.order for u in registry])}, 10000) AS unit_order,
       o.dispatched AS dispatched, o.completed_on_time AS on_time, o.overdue AS overdue, e.returned AS returned,
       e.visits AS visits, e.visits_unreached AS visits_unreached, e.visits_satisfied AS visits_satisfied,
       e.not_replied AS not_replied, e.phone_supervised AS phone_supervised,
       e.written_supervised AS written_supervised, e.feedback_events AS feedback_events
FROM ({_sql(queries.ORDER_COLUMNS)}) AS o
FULL OUTER JOIN ({_sql(queries.EVENT_COLUMNS)}) AS e ON o.unit_id = e.unit_id"""


def per_unit_sql(registry: Registry) -> str:
    """The attachment table: '-' (NULL) where the bulletin prints '-', its row order."""

    def feedback(expr: str) -> str:
        return f"if(feedback_events = 0, NULL, {expr})"

    return f"""SELECT name AS "单位",
       dispatched AS "交办数", on_time AS "按期办结数", overdue AS "{OVERDUE_COLUMN}", returned AS "退单数",
       if(dispatched = 0, NULL, round(100 * on_time / dispatched, 2)) AS "按期办结率(%)",
       {feedback("visits")} AS "回访数", {feedback("visits_unreached")} AS "回访未应答",
       {feedback("visits_satisfied")} AS "回访满意数",
       {feedback("if(visits = 0, NULL, round(100 * visits_satisfied / visits, 2))")} AS "{SATISFACTION_COLUMN}",
       {feedback("not_replied")} AS "未答复当事人数",
       {feedback("phone_supervised")} AS "电话督办数", {feedback("written_supervised")} AS "书面督办数"
FROM ({_joined(registry)})
ORDER BY if(unit_group = '{DISTRICT_GROUP}', 0, 1), if(unit_group = '{DISTRICT_GROUP}', unit_order, 0),
         dispatched DESC, unit_order"""


def totals_sql(registry: Registry) -> str:
    return f"""SELECT sum(dispatched) AS "交办", sum(on_time) AS "按期办结", sum(overdue) AS "逾期",
       sum(returned) AS "退单", sum(visits) AS "有效回访",
       if(sum(dispatched) = 0, NULL, round(100 * sum(on_time) / sum(dispatched), 2)) AS "按期办结率(%)",
       if(sum(visits) = 0, NULL, round(100 * sum(visits_satisfied) / sum(visits), 2)) AS "回访满意率(%)"
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
        "description": "Per-unit monthly figures by the bulletin's rules (SPEC.md), from deploy/grafana/dashboard.py.",
        "tags": ["hotline", "12345"],
        "timezone": "Asia/Shanghai",
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
