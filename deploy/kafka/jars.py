"""Kafka's jars and the JVM that runs them: Maven resolves ``kafka_2.13`` into ``<var>/kafka/libs``.

Why a module of its own: the machine has Java 17 + Maven but no Docker and no Kafka tarball, so
the broker's classpath is Kafka's runtime closure from Maven Central (``deploy/pom.xml``), fetched
once per ``Settings.kafka_version`` and never left half-written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hotline.deploy.kafka.layout import layouts, paths
from hotline.deploy.kafka.process import live_pid, tail_text
from hotline.settings import Settings

POM = Path(__file__).parents[1] / "pom.xml"  # deploy/pom.xml: hotline.deploy's package data
_VERSION_MARKER = ".kafka-version"


def java() -> str:
    """The ``java`` to run: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise RuntimeError("java not found (JAVA_HOME or PATH): Kafka 4.x needs Java 17+")
    return found


def ensure_jars(settings: Settings) -> Path:
    """Resolve Kafka ``settings.kafka_version`` into ``<var>/kafka/libs`` with Maven, once.

    Jars land in a staging dir that replaces ``libs`` only when complete, so an
    interrupted download or a version switch never leaves a mixed classpath.
    """
    p = paths(settings)
    version = settings.kafka_version
    jar_name = f"kafka_2.13-{version}.jar"
    marker = p.libs / _VERSION_MARKER
    if (p.libs / jar_name).is_file() and marker.is_file() and marker.read_text().strip() == version:
        return p.libs
    if any(live_pid(node.paths) is not None for layout in layouts(settings) for node in layout):
        raise RuntimeError(f"Kafka is running from {p.libs}; stop it before switching to {version}")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("mvn not found on PATH: Maven 3.8+ is needed to fetch the Kafka jars")
    java()
    staging = p.home / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        mvn, "-q", "-B", "-f", str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
        "-DincludeScope=runtime",
        f"-Dkafka.version={version}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not (staging / jar_name).is_file():
        tail = tail_text(proc.stdout + proc.stderr)
        raise RuntimeError(f"maven could not fetch Kafka {version} ({' '.join(cmd)}):\n{tail}")
    (staging / _VERSION_MARKER).write_text(version + "\n")
    shutil.rmtree(p.libs, ignore_errors=True)
    staging.rename(p.libs)
    return p.libs
