"""The settings the manifests give each service are settings it has, and it accepts them."""

from __future__ import annotations

import importlib
import os

import pytest
from pydantic_settings import BaseSettings

from shared.auth import AuthSettings
from shared.events.catalog import SERVICES
from shared.http import HttpSettings
from shared.settings import CommonSettings, ServiceSettings, load_settings
from shared.telemetry import TelemetrySettings
from tests.deploy.manifests import OVERLAYS, Resource, named, of_kind

LIBPQ = {"PGPASSWORD", "PGSSLMODE", "PGSSLROOTCERT"}  # read by asyncpg itself


def _settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"services.{service}.settings")
    (cls,) = [
        c
        for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, ServiceSettings) and c is not ServiceSettings
    ]
    return cls


def _env_names(cls: type[BaseSettings], prefix: str) -> set[str]:
    names = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        names.add(alias.upper() if isinstance(alias, str) else f"{prefix}{name}".upper())
    return names


def _environment(resources: list[Resource], service: str) -> dict[str, str]:
    """What the service's container sees: its ConfigMaps, then its env (Secrets as 'x')."""
    pod = named(resources, "Deployment", f"haven-{service}")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    config_maps = {
        c["metadata"]["name"]: c.get("data", {}) for c in of_kind(resources, "ConfigMap")
    }
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        env |= config_maps[source["configMapRef"]["name"]]
    for item in container["env"]:
        env[item["name"]] = item.get("value", "x")
    return env


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_is_known_and_accepted(
    overlays: dict[str, list[Resource]],
    overlay: str,
    service: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _environment(overlays[overlay], service)
    cls = _settings_class(service)
    known = (
        _env_names(cls, f"HAVEN_{service.upper()}_")
        | _env_names(CommonSettings, "HAVEN_")
        | _env_names(AuthSettings, "HAVEN_AUTH_")
        | _env_names(TelemetrySettings, "HAVEN_OTEL_")
        | _env_names(HttpSettings, "HAVEN_HTTP_")
        | LIBPQ
    )
    assert not set(env) - known, f"{service}: settings nobody reads: {set(env) - known}"
    assert f"HAVEN_{service.upper()}_CONSUMER_GROUP" not in env, "the ACLs name haven-<service>"
    for name in list(os.environ):
        if name.startswith("HAVEN_") or name in {"DATABASE_URL", *LIBPQ}:
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(service, cls)  # raises if a value is invalid
    assert settings.http_host == "0.0.0.0" and not settings.migrate_on_start
    assert settings.resolved_database_url().endswith(f"/haven_{service}")
    AuthSettings()
    TelemetrySettings()
    CommonSettings()
