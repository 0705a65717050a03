"""Apache Kafka from Maven Central jars, run as a local single-node KRaft process.

No Docker and no tarball: ``deploy/local/kafka/pom.xml`` lists the broker and a log4j2 backend,
Maven copies the jars into a cache once (:mod:`haven.devstack.kafka_jars`, whose names are
re-exported here), and :class:`LocalKafka` runs ``kafka.Kafka`` from them as a combined
broker+controller with settings suited to development and tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import shlex
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import psutil

# Java and the jars live in kafka_jars; their names stay importable from here (``X as X``
# re-exports). _cds_args reads _java_version_text from this module, where tests replace it.
from haven.devstack.kafka_jars import CACHE_DIR_ENV as CACHE_DIR_ENV
from haven.devstack.kafka_jars import (
    KAFKA_DEPLOY_DIR,
    KAFKA_VERSION,
    KafkaError,
    _java_version_text,
    default_cache_dir,
    ensure_jars,
    find_java,
)
from haven.devstack.kafka_jars import MIN_JAVA_MAJOR as MIN_JAVA_MAJOR
from haven.devstack.kafka_jars import MVN_TIMEOUT_S as MVN_TIMEOUT_S
from haven.devstack.kafka_jars import POM_PATH as POM_PATH
from haven.devstack.kafka_jars import REPO_ROOT as REPO_ROOT
from haven.devstack.processes import (
    DEFAULT_STOP_TIMEOUT_S,
    LOOPBACK,
    PID_FILE_NAME,
    ManagedProcess,
    log_tail,
    port_in_use,
    run_sync,
    start_process,
)

__all__ = [
    "DEFAULT_CONTROLLER_PORT",
    "DEFAULT_HEAP",
    "DEFAULT_PORT",
    "KAFKA_VERSION",
    "KafkaError",
    "LocalKafka",
    "default_cache_dir",
    "ensure_jars",
    "find_java",
    "wait_kafka_ready",
    "wait_kafka_ready_async",
]

LOG4J_CONFIG_PATH = KAFKA_DEPLOY_DIR / "log4j2.yaml"
DEFAULT_PORT = 9092
DEFAULT_CONTROLLER_PORT = 9093
DEFAULT_HEAP = "-Xms256m -Xmx512m"
NODE_ID = 1
SMALL_PARTITION_COUNT = 4
"""Partitions of the internal offsets/transaction/share-state topics (Kafka's default is 50)."""
SEGMENT_BYTES = 16 * 1024 * 1024
"""Log segment size; Kafka 4.1+ rejects anything below 1 MiB."""
BROKER_HEARTBEAT_MS = 500
BROKER_SESSION_TIMEOUT_MS = 3000
"""After a crash the restarted broker cannot register until its previous registration's
session expires (Kafka's default is 9 s); a short session makes kill-and-restart quick."""
DEFAULT_READY_TIMEOUT_S = 90.0
_FORMAT_TIMEOUT_S = 120.0
_PROBE_INTERVAL_S = 0.25
_PROBE_REQUEST_TIMEOUT_MS = 5000
CDS_ENV = "HAVEN_KAFKA_CDS"
"""Set to 0 to run Kafka without the AppCDS class-data archive."""
_CDS_FINGERPRINT_CHARS = 12

# Kafka's bin/kafka-run-class.sh defaults (KAFKA_JVM_PERFORMANCE_OPTS).
SHORT_LIVED_JVM_FLAG = "-XX:TieredStopAtLevel=1"
"""C1 only: starts faster; used for the one-shot StorageTool, not for the broker."""
KAFKA_JVM_FLAGS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)


# --------------------------------------------------------------------------- readiness


async def _port_open(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, int(port)), _PROBE_REQUEST_TIMEOUT_MS / 1000
        )
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def wait_kafka_ready_async(
    bootstrap: str, timeout: float = DEFAULT_READY_TIMEOUT_S, *, alive: ManagedProcess | None = None
) -> None:
    """Wait until a real Metadata request to ``bootstrap`` returns at least one broker.

    With ``alive``, fail fast (with the log tail) if that process exits meanwhile.
    """
    from aiokafka.admin import AIOKafkaAdminClient  # lazy: reading KAFKA_VERSION stays cheap

    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if alive is not None and not alive.is_running():
            raise KafkaError(
                f"Kafka exited with status {alive.returncode} before it was "
                f"ready; last log lines ({alive.log_path}):\n{alive.log_tail()}"
            )
        if await _port_open(bootstrap):  # spares aiokafka's "Unable connect" error logs
            admin = AIOKafkaAdminClient(
                bootstrap_servers=bootstrap, request_timeout_ms=_PROBE_REQUEST_TIMEOUT_MS
            )
            try:
                await admin.start()
                cluster = await admin.describe_cluster()
                if cluster.get("brokers"):
                    return
                last_error = KafkaError("metadata lists no brokers yet")
            except Exception as exc:  # any failure means "not ready yet"
                last_error = exc
            finally:
                with contextlib.suppress(Exception):
                    await admin.close()
        else:
            last_error = ConnectionRefusedError(f"nothing listens on {bootstrap}")
        if time.monotonic() >= deadline:
            where = f"; log: {alive.log_path}" if alive is not None else ""
            raise KafkaError(
                f"Kafka at {bootstrap} not ready after {timeout:.0f} s "
                f"(last error: {last_error!r}){where}"
            )
        await asyncio.sleep(_PROBE_INTERVAL_S)


def wait_kafka_ready(bootstrap: str, timeout: float = DEFAULT_READY_TIMEOUT_S) -> None:
    """Blocking :func:`wait_kafka_ready_async`; usable inside a running event loop."""
    run_sync(wait_kafka_ready_async(bootstrap, timeout))


# --------------------------------------------------------------------------- the broker


def _new_cluster_id() -> str:
    """A random (v4) UUID as URL-safe base64 without padding, never starting with '-'
    (what ``kafka-storage random-uuid`` prints)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class LocalKafka:
    """A single-node KRaft Kafka (combined broker+controller) run from Maven jars.

    Data lives in ``<state_dir>/kafka/data`` and survives :meth:`stop`/:meth:`start`;
    output goes to ``<state_dir>/logs/kafka.log``.
    """

    def __init__(
        self,
        state_dir: Path,
        port: int = DEFAULT_PORT,
        controller_port: int = DEFAULT_CONTROLLER_PORT,
        heap: str = DEFAULT_HEAP,
        *,
        cache_dir: Path | None = None,
        extra_properties: Mapping[str, str] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.cache_dir = (
            Path(cache_dir) if cache_dir is not None else default_cache_dir(self.state_dir)
        )
        self.extra_properties = dict(extra_properties or {})
        self.home = self.state_dir / "kafka"
        self.data_dir = self.home / "data"
        self.properties_path = self.home / "server.properties"
        self.cluster_id_path = self.home / "cluster.id"
        self.log_dir = self.state_dir / "logs"
        self.log_path = self.log_dir / "kafka.log"
        self._process: ManagedProcess | None = None
        self._cds_dump: Path | None = None

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>``, for ``bootstrap_servers``."""
        return f"{LOOPBACK}:{self.port}"

    def __repr__(self) -> str:
        return f"LocalKafka({self.bootstrap}, state_dir={self.state_dir})"

    def properties(self) -> dict[str, str]:
        """The ``server.properties`` this broker runs with."""
        props = {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.voters": f"{NODE_ID}@{LOOPBACK}:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://{LOOPBACK}:{self.port},CONTROLLER://{LOOPBACK}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": str(SMALL_PARTITION_COUNT),
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": str(SMALL_PARTITION_COUNT),
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "share.coordinator.state.topic.num.partitions": str(SMALL_PARTITION_COUNT),
            "log.segment.bytes": str(SEGMENT_BYTES),
            "broker.heartbeat.interval.ms": str(BROKER_HEARTBEAT_MS),
            "broker.session.timeout.ms": str(BROKER_SESSION_TIMEOUT_MS),
        }
        props.update(self.extra_properties)
        return props

    def _cluster_id(self) -> str:
        if self.cluster_id_path.is_file():
            return self.cluster_id_path.read_text().strip()
        cluster_id = _new_cluster_id()
        self.cluster_id_path.write_text(cluster_id + "\n")
        return cluster_id

    def _jvm_args(self) -> list[str]:
        return [
            *shlex.split(self.heap),
            *KAFKA_JVM_FLAGS,
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG_PATH}",
            f"-Dkafka.logs.dir={self.log_dir}",
        ]

    def _cds_args(self, java: str, libs: Path, *, dump: bool = True) -> list[str]:
        """AppCDS halves the broker's start-up (about 3.5 s -> 1.8 s here).

        The first start dumps the loaded classes into a dynamic archive when the JVM exits
        (stop() then takes a few seconds longer, once); later starts map it. The archive name
        hashes the exact JVM build and jar list; a stale or unusable archive is ignored by the
        JVM (-Xshare:auto), never fatal.
        """
        if os.environ.get(CDS_ENV, "1") == "0":
            return []
        digest = hashlib.sha256(_java_version_text(java).encode())
        for jar in sorted(libs.glob("*.jar")):
            digest.update(jar.name.encode())
        archive = libs.parent / f"cds-{digest.hexdigest()[:_CDS_FINGERPRINT_CHARS]}.jsa"
        quiet = "-Xlog:cds*=off"  # skipped-class warnings would flood kafka.log
        for stale in libs.parent.glob("cds-*.jsa.tmp-*"):  # dumps of runs that were killed
            owner = stale.name.rsplit(".tmp-", 1)[1].split("-")[0]
            if owner.isdigit() and not psutil.pid_exists(int(owner)):
                stale.unlink(missing_ok=True)
        if archive.is_file():
            return [f"-XX:SharedArchiveFile={archive}", quiet]
        if not dump:
            return []
        self._cds_dump = archive.with_name(f"{archive.name}.tmp-{os.getpid()}-{id(self)}")
        return [f"-XX:ArchiveClassesAtExit={self._cds_dump}", quiet]

    def _keep_cds_dump(self, keep: bool) -> None:
        dump, self._cds_dump = self._cds_dump, None
        if dump is None:
            return
        if keep and dump.is_file() and dump.stat().st_size:
            os.replace(dump, dump.with_name(dump.name.split(".tmp-")[0]))
        else:
            dump.unlink(missing_ok=True)

    def _format_storage(self, java: str, libs: Path) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return  # already formatted; StorageTool would only say so
        argv = [
            java,
            *self._jvm_args(),
            *self._cds_args(java, libs, dump=False),
            SHORT_LIVED_JVM_FLAG,
            "-cp",
            str(libs / "*"),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self._cluster_id(),
            "-c",
            str(self.properties_path),
            "--ignore-formatted",
        ]
        result = subprocess.run(  # noqa: S603
            argv,
            capture_output=True,
            text=True,
            check=False,
            timeout=_FORMAT_TIMEOUT_S,
        )
        with self.log_path.open("a") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise KafkaError(
                f"formatting Kafka storage in {self.data_dir} failed "
                f"(exit {result.returncode}):\n{result.stdout}{result.stderr}"
            )

    def start(self) -> None:
        """Write the config, format storage if new, and launch the broker (non-blocking)."""
        if self.is_running():
            return
        if self._process is not None:  # it exited on its own: reap and forget it
            self._process.kill()
            self._process = None
            self._keep_cds_dump(keep=False)
        java = find_java()
        libs = ensure_jars(self.cache_dir)
        classpath = str(libs / "*")
        for port in (self.port, self.controller_port):
            if port_in_use(port):
                raise KafkaError(f"cannot start Kafka: port {port} on {LOOPBACK} is in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.properties_path.write_text(
            "# Written by haven.devstack.kafka on every start; edits are overwritten.\n"
            + "".join(f"{k}={v}\n" for k, v in self.properties().items())
        )
        self._format_storage(java, libs)
        argv = [
            java,
            *self._jvm_args(),
            *self._cds_args(java, libs),
            "-cp",
            classpath,
            "kafka.Kafka",
            str(self.properties_path),
        ]
        self._process = start_process(
            "kafka", argv, log_path=self.log_path, cwd=self.home, pid_file=self.home / PID_FILE_NAME
        )

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT_S) -> None:
        """Block until a Metadata request succeeds; raise KafkaError if it exits or times out."""
        run_sync(self.wait_ready_async(timeout))

    async def wait_ready_async(self, timeout: float = DEFAULT_READY_TIMEOUT_S) -> None:
        """Async :meth:`wait_ready`."""
        if self._process is None:
            raise KafkaError("Kafka was not started")
        await wait_kafka_ready_async(self.bootstrap, timeout, alive=self._process)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """SIGTERM (controlled shutdown), wait up to ``timeout`` s, then SIGKILL."""
        if self._process is not None:
            status = self._process.stop(signal.SIGTERM, timeout)
            self._process = None
            self._keep_cds_dump(keep=status != -signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would; data stays for the next :meth:`start`."""
        if self._process is not None:
            self._process.kill()
            self._process = None
            self._keep_cds_dump(keep=False)

    def is_running(self) -> bool:
        """True while the broker process is alive (not necessarily ready)."""
        return self._process is not None and self._process.is_running()

    @property
    def process(self) -> ManagedProcess | None:
        """The running broker process, if any."""
        return self._process

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of ``kafka.log``."""
        return log_tail(self.log_path, lines)

    def __enter__(self) -> LocalKafka:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
