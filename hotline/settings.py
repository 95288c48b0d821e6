"""All configuration in one place: environment variables prefixed ``HOTLINE_``.

Every other module receives a :class:`Settings` (or calls :func:`get_settings`);
nothing else reads the environment.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Pipeline configuration; defaults run everything on this machine."""

    model_config = SettingsConfigDict(env_prefix="HOTLINE_", env_file=".env", extra="ignore")

    var_dir: Path = Field(default=Path("var"), description="Local state: Kafka data, chDB, pid files.")

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int = 9093
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = None
    kafka_version: str = "4.1.1"

    # Topics
    calls_topic: str = "hotline.calls"
    orders_topic: str = "hotline.orders"
    alerts_topic: str = "hotline.alerts"
    deadletter_topic: str = "hotline.deadletter"
    partitions: int = 4

    # Faust
    app_id: str = "hotline"
    table_store: str = "memory://"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    session_timeout_s: float = 10.0  # how long a killed worker's partitions wait before moving
    batch_size: int = 1000
    batch_within_s: float = 0.5

    # ClickHouse: empty means embedded chDB under var_dir/clickhouse
    clickhouse_dsn: str = ""
    clickhouse_database: str = "hotline"

    timezone: str = "Asia/Shanghai"

    @property
    def var_path(self) -> Path:
        return self.var_dir.resolve()

    @property
    def resolved_clickhouse_dsn(self) -> str:
        """chDB DSNs need an absolute path (``chdb:///abs/path``)."""
        if self.clickhouse_dsn:
            return self.clickhouse_dsn
        return f"chdb://{self.var_path / 'clickhouse'}"

    @property
    def web_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
