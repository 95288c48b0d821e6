"""ClickHouse sink: tables, idempotent batch writes, and the queries the bulletin reads."""
