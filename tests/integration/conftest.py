"""Real services: the Kafka broker (started if local) and worker processes per test.

Each test gets its own topics, consumer group, chDB directory and HTTP port, so
tests never see each other's events and the broker is shared.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from hotline.deploy import kafka
from hotline.deploy.worker import WorkerProcess, settings_env
from hotline.settings import Settings
from tests.doubles import free_port
from tests.integration.seed import write_month

REPO = Path(__file__).resolve().parents[2]


MADE: list[Settings] = []  # every test's settings: their topics go at the end of the session


@pytest.fixture(scope="session")
def broker() -> Iterator[Settings]:
    """The local broker, started if needed; the topics the session made are deleted at its end
    (thousands of leftover partitions run a developer's broker out of heap)."""
    settings = Settings()
    kafka.start(settings)
    yield settings
    prefixes = tuple(p for s in MADE for p in (s.app_id, s.calls_topic.rsplit(".", 1)[0] + "."))
    if prefixes and kafka.answers(settings):
        kafka.delete_topics(settings, prefixes)


Worker = WorkerProcess


def isolated_settings(broker: Settings, var_root: Path, **extra: object) -> Settings:
    """Fresh topics, group, chDB directory and port on the shared broker (``extra``: more settings)."""
    tag = uuid.uuid4().hex[:8]
    settings = broker.model_copy(
        update={
            "var_dir": var_root / "var",
            "app_id": f"hotline-test-{tag}",
            "calls_topic": f"t{tag}.calls",
            "orders_topic": f"t{tag}.orders",
            "alerts_topic": f"t{tag}.alerts",
            "deadletter_topic": f"t{tag}.deadletter",
            "web_port": free_port(),
            **extra,
        }
    )
    kafka.ensure_topics(settings, kafka.pipeline_topics(settings))
    MADE.append(settings)
    return settings


@pytest.fixture(scope="session")
def month_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated month that reproduces the seed bulletin, as a replay file (read only: one per session)."""
    return write_month(tmp_path_factory.mktemp("month") / "2019-11.jsonl")


@pytest.fixture
def isolated(broker: Settings, tmp_path: Path) -> Settings:
    """Settings of one test: fresh topics, group, chDB directory and port on the shared broker."""
    return isolated_settings(broker, tmp_path)


@pytest.fixture
def worker(isolated: Settings) -> Iterator[Worker]:
    w = Worker(isolated)
    yield w.start()
    w.stop()


def hotline(settings: Settings, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI as a user would, with this test's settings."""
    result = subprocess.run(
        [sys.executable, "-m", "hotline", *args],
        cwd=REPO,
        env=settings_env(settings),
        capture_output=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    return result


# Headless Debian Chromium (Debian's packages only: nothing downloads a browser or driver), for
# the pages a person uses: the live monitor and the 签收 link.
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1250",
    "--lang=zh-CN",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Debian Chromium with a fresh profile; never a downloaded browser or driver."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)
