"""Authentication hardening: no development secret in production, removed keys stop working."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter

from shared.auth import Authenticator, AuthSettings, InsecureConfiguration, PrincipalDep
from shared.http import create_app
from shared.service import ServiceDefinition, build_app, run
from shared.settings import ServiceSettings
from tests.support.tokens import JwksServer

DEFINITION = ServiceDefinition(
    name="hardening",
    title="Hardening",
    settings_class=ServiceSettings,
    migrations=Path(__file__).parent,
)


def test_production_refuses_to_start_with_the_development_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HAVEN_ENVIRONMENT", "production")
    monkeypatch.delenv("HAVEN_AUTH_SECRET", raising=False)
    monkeypatch.setenv("HAVEN_AUTH_MODE", "hs256")
    with pytest.raises(InsecureConfiguration, match="HAVEN_AUTH_SECRET"):
        build_app(DEFINITION)
    with pytest.raises(SystemExit) as exited:
        run(DEFINITION)
    assert exited.value.code == 2


def test_production_starts_with_secrets_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAVEN_ENVIRONMENT", "production")
    monkeypatch.setenv("HAVEN_AUTH_SECRET", "a-real-secret-from-the-cluster-0123456789")
    monkeypatch.setenv("HAVEN_HARDENING_AUDIT_CHAIN_KEY", "a-chain-key-from-the-cluster")
    assert build_app(DEFINITION) is not None


def test_production_refuses_to_start_without_its_own_audit_chain_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HAVEN_ENVIRONMENT", "production")
    monkeypatch.setenv("HAVEN_AUTH_SECRET", "a-real-secret-from-the-cluster-0123456789")
    monkeypatch.delenv("HAVEN_HARDENING_AUDIT_CHAIN_KEY", raising=False)
    with pytest.raises(InsecureConfiguration, match="HAVEN_HARDENING_AUDIT_CHAIN_KEY"):
        build_app(DEFINITION)


def test_development_still_starts_with_the_development_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HAVEN_ENVIRONMENT", raising=False)
    monkeypatch.delenv("HAVEN_AUTH_SECRET", raising=False)
    assert build_app(DEFINITION) is not None


@pytest.fixture
def provider() -> Iterator[JwksServer]:
    served = JwksServer()
    yield served
    served.shutdown()


async def test_a_key_removed_by_the_identity_provider_stops_verifying_within_the_cache_lifetime(
    provider: JwksServer,
) -> None:
    router = APIRouter()

    @router.get("/me")
    async def me(principal: PrincipalDep) -> dict[str, str]:
        return {"sub": principal.sub}

    settings = AuthSettings(
        mode="jwks", jwks_url=provider.url, issuer="https://idp.example", jwks_cache_seconds=1
    )
    app = create_app(
        service="jwks-rotation",
        title="t",
        version="1",
        routers=[router],
        authenticator=Authenticator(settings),
    )
    token = {"Authorization": f"Bearer {provider.sign()}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/me", headers=token)).status_code == 200
        provider.rotate()  # the key that signed the token is removed
        time.sleep(1.2)
        refused = await client.get("/me", headers=token)
        provider.keys = []  # no key at all: still a refusal, not a server error
        time.sleep(1.2)
        empty = await client.get("/me", headers=token)
    assert refused.status_code == 401
    assert empty.status_code == 401
