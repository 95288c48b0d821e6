"""The wheel as a new user gets it: a quiet build, complete, working outside the repository.

The wheel is built from a copy of the working tree (so a stale ``build/`` cannot leak into it) with
``pip wheel -v``, which shows everything the build backend says; it is installed into a fresh venv
in a temporary directory, and the commands run there, from a directory that is not the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotline.generate import generate, write_jsonl
from hotline.seed import HEADLINE, TABLE

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
NAME = PYPROJECT["project"]["name"]
VERSION = PYPROJECT["project"]["version"]
SUBPACKAGES = ("schemas", "streams", "sinks", "reports", "deploy", "seed")
# What the commands read besides code: the contract, the registry, the monitor page, Maven's POM, the seed.
DATA = (
    "schemas/contract-v1.schema.json",
    "schemas/data/units.csv",
    "schemas/data/xiangtan.toml",
    "static/monitor.html",
    "deploy/pom.xml",
    "seed/xiangtan-2019-11-units.csv",
    "seed/xiangtan-2019-11-headline.json",
    "seed/xiangtan-2019-11-bulletin.txt",
)
# The monitor's chart library, served by the worker (no CDN), with its Apache-2.0 licence and notice.
ECHARTS = ("echarts.min.js", "LICENSE", "NOTICE", "README.md")
ECHARTS_DIR = "static/vendor/echarts"
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "test-artifacts"
)


def _env(**extra: str) -> dict[str, str]:
    """This environment without the project's settings, the checkout's paths or the active venv."""
    drop = ("HOTLINE_", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


@dataclass(frozen=True)
class Build:
    wheel: Path
    output: str


@dataclass(frozen=True)
class Installed:
    venv: Path
    cwd: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            args, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        return result


def _warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.search(r"warn|deprecat|would be ignored", line, re.I)]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree, copied: what a fresh clone with these changes holds."""
    src = tmp_path_factory.mktemp("source") / "hotline12345"
    shutil.copytree(REPO, src, symlinks=True, ignore=NOT_COPIED)
    return src


@pytest.fixture(scope="module")
def build(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Build:
    root = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(root / "dist"), str(source)],
        cwd=root,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    (wheel,) = (root / "dist").glob(f"{NAME}-{VERSION}-*.whl")
    return Build(wheel, output)


@pytest.fixture(scope="module")
def installed(build: Build) -> Iterator[Installed]:
    with tempfile.TemporaryDirectory(prefix="hotline-wheel-") as tmp:  # ~1 GB with the dependencies: not kept
        yield _install(build, Path(tmp))


def _install(build: Build, root: Path) -> Installed:
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_env())
    env = _env(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", HOTLINE_VAR_DIR=str(root / "var"))
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(build.wheel)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-3000:]
    cwd = root / "elsewhere"
    cwd.mkdir()
    return Installed(venv, cwd, env)


def test_the_build_prints_no_warning(build: Build) -> None:
    warnings = _warnings(build.output)
    assert not warnings, "the build warns:\n" + "\n".join(warnings)


def test_the_editable_install_prints_no_warning(source: Path, tmp_path: Path) -> None:
    """What ``./run`` does on a fresh clone (``pip install -e``), without the dependencies."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=_env())
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-v", "--no-deps", "-e", str(source)],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    warnings = _warnings(output)
    assert not warnings, "the editable install warns:\n" + "\n".join(warnings)


def test_the_wheel_holds_one_top_level_package_with_everything_the_commands_read(build: Build) -> None:
    with zipfile.ZipFile(build.wheel) as whl:
        names = set(whl.namelist())
        dist_info = f"{NAME}-{VERSION}.dist-info"
        assert whl.read(f"{dist_info}/top_level.txt").decode().split() == ["hotline"]
    assert {n.split("/")[0] for n in names if not n.startswith(dist_info)} == {"hotline"}

    expected = {f"hotline/{p.name}" for p in (REPO / "hotline").glob("*.py")}
    for sub in SUBPACKAGES:
        expected |= {
            f"hotline/{p.relative_to(REPO).as_posix()}"
            for p in (REPO / sub).rglob("*.py")
            if "__pycache__" not in p.parts
        }
    expected |= {f"hotline/{d}" for d in DATA}
    assert sorted(expected - names) == []


def test_the_wheel_carries_echarts_as_vendored(build: Build) -> None:
    """The very bytes the checkout holds, so the page's chart works from an installed wheel, offline."""
    with zipfile.ZipFile(build.wheel) as whl:
        for name in ECHARTS:
            shipped = (REPO / "hotline" / ECHARTS_DIR / name).read_bytes()
            assert whl.read(f"hotline/{ECHARTS_DIR}/{name}") == shipped, name
        script = whl.read(f"hotline/{ECHARTS_DIR}/echarts.min.js")
    assert len(script) > 500_000 and b"Apache" in script[:2000]


def test_version(installed: Installed) -> None:
    assert installed.run("hotline", "--version").stdout == f"hotline {VERSION}\n"


def test_units(installed: Installed) -> None:
    lines = installed.run("hotline", "units", "--format", "csv").stdout.splitlines()
    assert lines[0] == "id,name,group,order"
    assert len(lines) == 1 + 54


def test_generate_writes_the_month_the_checkout_writes(installed: Installed, tmp_path: Path) -> None:
    out = installed.cwd / "m.jsonl"
    installed.run("hotline", "generate", "--out", str(out))
    reference = tmp_path / "reference.jsonl"
    write_jsonl(generate(TABLE, HEADLINE), reference)
    assert out.read_bytes() == reference.read_bytes()


def test_bulletin_help(installed: Installed) -> None:
    assert "--month" in installed.run("hotline", "bulletin", "--help").stdout


def test_only_hotline_is_importable_and_it_reads_its_files_from_the_venv(installed: Installed) -> None:
    python = str(installed.venv / "bin" / "python")
    for bare in SUBPACKAGES:
        result = subprocess.run(
            [python, "-c", f"import {bare}"], cwd=installed.cwd, env=installed.env, capture_output=True, text=True
        )
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, f"`import {bare}` works"
    where = installed.run(
        python,
        "-c",
        "import hotline.seed, hotline.monitor, hotline.deploy.kafka as k;"
        "print(hotline.seed.HEADLINE); print(hotline.monitor.PAGE); print(k.POM)",
    ).stdout.split()
    site = installed.venv.resolve()
    assert all(Path(p).resolve().is_relative_to(site) and Path(p).is_file() for p in where), where
