"""Grafana dashboards over ClickHouse, generated from the bulletin's SQL."""
