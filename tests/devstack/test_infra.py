"""Choosing between env endpoints, Docker and local processes."""

from __future__ import annotations

import time

import pytest

from haven.devstack import infra as infra_mod
from haven.devstack.infra import InfraError, InfraHandle, docker_available, select_kind

DOCKER_PROBE_BUDGET_S = 10.0


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HAVEN_INFRA", "HAVEN_KAFKA_BOOTSTRAP", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_env_endpoints_win(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HAVEN_KAFKA_BOOTSTRAP", "kafka:9092")
    clean_env.setenv("DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/postgres")
    assert select_kind() == "env"


@pytest.mark.parametrize("name", ["HAVEN_KAFKA_BOOTSTRAP", "DATABASE_URL"])
def test_half_configured_env_is_an_error(clean_env: pytest.MonkeyPatch, name: str) -> None:
    clean_env.setenv(name, "something")
    with pytest.raises(InfraError, match="set both"):
        select_kind()


def test_docker_then_local(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setattr(infra_mod, "docker_available", lambda: True)
    assert select_kind() == "docker"
    clean_env.setattr(infra_mod, "docker_available", lambda: False)
    assert select_kind() == "local"


def test_forced_kind(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HAVEN_INFRA", "local")
    clean_env.setenv("HAVEN_KAFKA_BOOTSTRAP", "kafka:9092")
    assert select_kind() == "local"
    clean_env.setenv("HAVEN_INFRA", "kubernetes")
    with pytest.raises(InfraError, match="expected one of"):
        select_kind()


def test_docker_probe_never_raises_and_is_quick() -> None:
    started = time.monotonic()
    assert docker_available() in (True, False)
    assert time.monotonic() - started < DOCKER_PROBE_BUDGET_S


def test_database_urls_keep_credentials_and_options() -> None:
    handle = InfraHandle(
        kind="env",
        kafka_bootstrap="kafka:9092",
        admin_database_url="postgresql+asyncpg://app:s%40cret@db:5433/postgres?ssl=require",
    )
    assert (
        handle.database_url("registration")
        == "postgresql+asyncpg://app:s%40cret@db:5433/registration?ssl=require"
    )


def test_session_infra_is_usable(infra: InfraHandle) -> None:
    assert infra.kind in ("env", "docker", "local")
    host, _, port = infra.kafka_bootstrap.rpartition(":")
    assert host and port.isdigit()
    if infra.kind == "local":
        assert infra.kafka is not None and infra.kafka.is_running()
        assert infra.postgres is not None and infra.postgres.is_running()


class FakeContainer:
    """Records what _start_kafka_container asks of a testcontainers DockerContainer."""

    def __init__(self) -> None:
        self.env: dict[str, str] = {}
        self.ports: list[int] = []
        self.command: list[str] = []
        self.archives: list[bytes] = []
        self.attrs = {"Config": {"Hostname": "abc123"}}

    def with_env(self, key: str, value: str) -> None:
        self.env[key] = value

    def with_exposed_ports(self, *ports: int) -> None:
        self.ports += ports

    def with_command(self, command: list[str]) -> None:
        self.command = command

    def start(self) -> None:
        pass

    def get_container_host_ip(self) -> str:
        return "localhost"

    def get_exposed_port(self, port: int) -> int:
        return 32771

    def get_wrapped_container(self) -> FakeContainer:
        return self

    def put_archive(self, path: str, data: bytes) -> bool:
        self.archives.append(data)
        return True


def test_kafka_container_advertises_the_mapped_port(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import tarfile

    monkeypatch.setattr(infra_mod, "wait_kafka_ready", lambda bootstrap, timeout: None)
    container = FakeContainer()

    assert infra_mod._start_kafka_container(container) == "localhost:32771"

    assert container.ports == [9092]
    assert container.env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    files = {}
    for archive in container.archives:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            for member in tar.getmembers():
                extracted = tar.extractfile(member)
                assert extracted is not None
                files[member.name] = extracted.read().decode()
    script_path, ready_path = files  # the script lands before the marker the command waits for
    assert "PLAINTEXT://localhost:32771,BROKER://abc123:9093" in files[script_path]
    assert script_path in container.command[-1] and ready_path in container.command[-1]
