"""Java and Kafka's jars for the local broker: a JDK 17+ and Maven Central's Kafka jars in a cache.

``deploy/local/kafka/pom.xml`` lists the broker and a log4j2 backend; :func:`ensure_jars` has
Maven copy them into ``<cache>/kafka-<version>/libs`` once, and :func:`find_java` finds the
JDK that runs them. :mod:`haven.devstack.kafka` runs the broker and re-exports these names.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from haven.devstack.processes import ProcessError

__all__ = [
    "CACHE_DIR_ENV",
    "KAFKA_DEPLOY_DIR",
    "KAFKA_VERSION",
    "MIN_JAVA_MAJOR",
    "POM_PATH",
    "KafkaError",
    "default_cache_dir",
    "ensure_jars",
    "find_java",
]

KAFKA_VERSION = "4.4.0"
"""The one Kafka version Haven runs everywhere (local jars, containers, manifests)."""

_log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_DEPLOY_DIR = REPO_ROOT / "deploy" / "local" / "kafka"
POM_PATH = KAFKA_DEPLOY_DIR / "pom.xml"
CACHE_DIR_ENV = "HAVEN_CACHE_DIR"
MIN_JAVA_MAJOR = 17
MVN_TIMEOUT_S = 900.0
_JAVA_VERSION_TIMEOUT_S = 30.0
_COMPLETE_MARKER = ".complete"


class KafkaError(ProcessError):
    """Local Kafka could not be prepared, started or reached."""


@functools.cache
def _java_version_text(java: str) -> str:
    out = subprocess.run(  # noqa: S603
        [java, "-version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=_JAVA_VERSION_TIMEOUT_S,
    )
    return out.stderr + out.stdout


@functools.cache
def find_java() -> str:
    """Path of a ``java`` (``$JAVA_HOME/bin/java`` first) that is version 17 or newer."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not candidate or not Path(candidate).exists():
        raise KafkaError(
            f"java not found: Haven's local Kafka needs JDK {MIN_JAVA_MAJOR}+ "
            "(apt-get install openjdk-17-jre-headless, or set JAVA_HOME)"
        )
    version_text = _java_version_text(candidate)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_text)
    if not match:
        raise KafkaError(f"cannot tell the version of {candidate}: {version_text.strip()!r}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" style
        major = int(match.group(2))
    if major < MIN_JAVA_MAJOR:
        raise KafkaError(
            f"{candidate} is Java {major}: Haven's local Kafka needs JDK "
            f"{MIN_JAVA_MAJOR}+ (set JAVA_HOME to a newer JDK)"
        )
    return candidate


def default_cache_dir(state_dir: Path | None = None) -> Path:
    """``$HAVEN_CACHE_DIR`` if set, else ``<state_dir>/cache``, else ``<repo>/.haven/cache``."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env)
    if state_dir is not None:
        return Path(state_dir) / "cache"
    return REPO_ROOT / ".haven" / "cache"


def _jar_fingerprint(version: str) -> str:
    digest = hashlib.sha256(POM_PATH.read_bytes())
    digest.update(version.encode())
    return digest.hexdigest()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_jars(cache_dir: Path, version: str = KAFKA_VERSION) -> Path:
    """Resolve Kafka's runtime jars into ``<cache_dir>/kafka-<version>/libs``; return that dir.

    Maven runs only when the marker file is missing or the pom changed; concurrent callers
    serialise on a lock file, and jars land in a temporary directory first.
    """
    home = Path(cache_dir) / f"kafka-{version}"
    libs = home / "libs"
    marker = home / _COMPLETE_MARKER
    if not POM_PATH.is_file():
        raise KafkaError(f"{POM_PATH} is missing: local Kafka runs from a Haven source checkout")
    fingerprint = _jar_fingerprint(version)
    if marker.is_file() and marker.read_text().strip() == fingerprint:
        return libs
    with _file_lock(Path(cache_dir) / f"kafka-{version}.lock"):
        if marker.is_file() and marker.read_text().strip() == fingerprint:
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaError(
                "mvn not found: Haven's local Kafka resolves its jars from Maven "
                "Central with Maven 3.6+ (apt-get install maven)"
            )
        staging = home / f"libs.tmp-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        argv = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(POM_PATH),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
            f"-Dkafka.version={version}",
        ]
        _log.info("resolving Kafka %s jars with Maven into %s", version, libs)
        started = time.monotonic()
        try:
            result = subprocess.run(  # noqa: S603
                argv,
                capture_output=True,
                text=True,
                check=False,
                timeout=MVN_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaError(f"mvn took over {MVN_TIMEOUT_S:.0f} s resolving Kafka jars") from exc
        if result.returncode != 0 or not any(staging.glob(f"kafka_*-{version}.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            raise KafkaError(
                f"mvn could not resolve Kafka {version} jars (exit {result.returncode}):\n{output}"
            )
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker.write_text(fingerprint + "\n")
        _log.info("Kafka %s jars ready in %.1f s", version, time.monotonic() - started)
    return libs
