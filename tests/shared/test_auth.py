"""Bearer JWT authentication: HS256 in development, RS256/ES256 from a JWKS, roles and sites."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import APIRouter, Depends, Request
from pydantic import SecretStr

import shared.auth as auth_module
from shared.auth import (
    Authenticator,
    AuthSettings,
    Principal,
    PrincipalDep,
    Role,
    decode_token,
    issue_dev_token,
    require_roles,
)
from shared.http import create_app
from shared.problems import PROBLEM_MEDIA_TYPE, Problem, Unauthorized
from tests.support.tokens import JwksServer as Jwks
from tests.support.tokens import bearer, token

SETTINGS = AuthSettings(secret=SecretStr("test-secret-long-enough-for-hs256-keys!"))


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/me")
    async def me(principal: PrincipalDep) -> dict[str, Any]:
        return {"sub": principal.sub, "roles": sorted(principal.roles), "org": principal.org}

    @r.post("/stock", dependencies=[Depends(require_roles(Role.WAREHOUSE_OPERATOR, Role.MANAGER))])
    async def stock() -> dict[str, str]:
        return {"status": "received"}

    return r


def make_client(authenticator: Authenticator) -> httpx.AsyncClient:
    app = create_app(
        service="auth-test",
        title="Auth",
        version="1",
        routers=[router()],
        authenticator=authenticator,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(Authenticator(SETTINGS)) as c:
        yield c


def worker_token(*roles: Role | str, **claims: Any) -> str:
    """A token of worker-1 at site s1 (a field worker unless ``roles`` say otherwise)."""
    return token(
        *(roles or [Role.FIELD_STAFF]), sites=["s1"], sub="worker-1", settings=SETTINGS, **claims
    )


def assert_unauthorized(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert reason in response.json()["detail"]


# --- HS256 ---------------------------------------------------------------------------------


async def test_valid_token_gives_the_principal(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/me", headers=bearer(worker_token("caseworker", "astronaut", org="ngo-a"))
    )
    assert response.status_code == 200
    assert response.json() == {"sub": "worker-1", "roles": ["caseworker"], "org": "ngo-a"}


async def test_missing_or_non_bearer_header_is_401_with_challenge(
    client: httpx.AsyncClient,
) -> None:
    for headers in ({}, {"Authorization": "Basic d29ya2VyOnB3"}, {"Authorization": "Bearer "}):
        response = await client.get("/me", headers=headers)
        assert_unauthorized(response, "Bearer")
        assert response.headers["www-authenticate"] == 'Bearer realm="haven"'


async def test_expired_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers=bearer(worker_token(ttl=timedelta(minutes=-5))))
    assert_unauthorized(response, "expired")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_expiry_within_leeway_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers=bearer(worker_token(ttl=timedelta(seconds=-10))))
    assert response.status_code == 200


async def test_a_verified_token_is_not_verified_again_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verified: list[str] = []
    real_verify = auth_module._verify

    def counting_verify(raw: str, *args: Any) -> tuple[Principal, float]:
        verified.append(raw)
        return real_verify(raw, *args)

    monkeypatch.setattr(auth_module, "_verify", counting_verify)
    clock = [datetime.now(UTC).timestamp()]
    monkeypatch.setattr(auth_module.time, "time", lambda: clock[0])
    short = worker_token(ttl=timedelta(seconds=60))
    async with make_client(Authenticator(SETTINGS)) as c:
        for _ in range(3):
            assert (await c.get("/me", headers=bearer(short))).status_code == 200
        assert len(verified) == 1
        clock[0] += 60 + SETTINGS.leeway_seconds + 1  # past exp + leeway: forgotten
        # verified again (PyJWT's own clock still accepts it; an expired token is refused as
        # test_expired_token_is_refused shows)
        assert (await c.get("/me", headers=bearer(short))).status_code == 200
    assert len(verified) == 2


async def test_wrong_signature_is_refused(client: httpx.AsyncClient) -> None:
    forged = issue_dev_token(
        AuthSettings(secret=SecretStr("another-secret-that-is-also-long-enough")),
        sub="worker-1",
        roles=[Role.ADMIN],
    )
    assert_unauthorized(await client.get("/me", headers=bearer(forged)), "signature")


async def test_wrong_audience_and_issuer_are_refused(client: httpx.AsyncClient) -> None:
    other_audience = issue_dev_token(
        SETTINGS.model_copy(update={"audience": "payments"}), sub="w", roles=[]
    )
    assert_unauthorized(await client.get("/me", headers=bearer(other_audience)), "audience")
    other_issuer = issue_dev_token(
        SETTINGS.model_copy(update={"issuer": "evil"}), sub="w", roles=[]
    )
    assert_unauthorized(await client.get("/me", headers=bearer(other_issuer)), "issuer")


async def test_garbage_and_malformed_claims_are_refused(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.get("/me", headers=bearer("not.a.jwt")), "malformed")
    now = datetime.now(UTC)
    claims = {
        "sub": "w",
        "iss": SETTINGS.issuer,
        "aud": SETTINGS.audience,
        "exp": now + timedelta(hours=1),
        "roles": "admin",  # must be a list
    }
    odd = jwt.encode(claims, SETTINGS.secret.get_secret_value(), algorithm="HS256")
    assert_unauthorized(await client.get("/me", headers=bearer(odd)), "roles")
    no_sub = jwt.encode(
        {k: v for k, v in claims.items() if k not in {"sub", "roles"}},
        SETTINGS.secret.get_secret_value(),
        algorithm="HS256",
    )
    assert_unauthorized(await client.get("/me", headers=bearer(no_sub)), "sub")


async def test_wrong_role_is_403_naming_the_required_roles(client: httpx.AsyncClient) -> None:
    response = await client.post("/stock", headers=bearer(worker_token(Role.CASEWORKER)))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["required_roles"] == ["warehouse_operator", "manager"]
    assert "warehouse_operator" in body["detail"]
    allowed = await client.post("/stock", headers=bearer(worker_token(Role.MANAGER)))
    assert allowed.status_code == 200


async def test_admin_is_not_implicitly_granted_every_role(client: httpx.AsyncClient) -> None:
    response = await client.post("/stock", headers=bearer(worker_token(Role.ADMIN)))
    assert response.status_code == 403


async def test_refusals_of_identified_callers_are_reported_to_the_hook() -> None:
    refused: list[tuple[str, int]] = []

    async def on_refused(request: Request, problem: Problem) -> None:
        refused.append((request.url.path, problem.status))

    async with make_client(Authenticator(SETTINGS, on_refused=on_refused)) as c:
        await c.get("/me")
        await c.post("/stock", headers=bearer(worker_token()))
        await c.get("/me", headers=bearer(worker_token()))
    assert refused == [("/stock", 403)]  # an unauthenticated 401 is counted, not audited


async def test_a_failing_hook_does_not_change_the_answer() -> None:
    async def on_refused(request: Request, problem: Problem) -> None:
        raise RuntimeError("audit store down")

    async with make_client(Authenticator(SETTINGS, on_refused=on_refused)) as c:
        assert (await c.post("/stock", headers=bearer(worker_token()))).status_code == 403


def test_development_secret_is_announced(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.auth"):
        Authenticator(AuthSettings())
        Authenticator(SETTINGS)
    assert ["DEVELOPMENT" in r.getMessage() for r in caplog.records] == [True]


def test_dev_tokens_are_not_issued_in_jwks_mode() -> None:
    settings = AuthSettings(mode="jwks", jwks_url="http://127.0.0.1:9/jwks")
    with pytest.raises(RuntimeError, match="hs256"):
        issue_dev_token(settings, sub="x", roles=[Role.ADMIN])


# --- Principal -----------------------------------------------------------------------------


def principal(roles: set[Role], sites: set[str]) -> Principal:
    return Principal(sub="u", roles=frozenset(roles), sites=frozenset(sites), org=None)


def test_site_access() -> None:
    assert principal({Role.ADMIN}, set()).can_access_site("any-site")
    assert principal({Role.FIELD_STAFF}, {"s1"}).can_access_site("s1")
    assert not principal({Role.FIELD_STAFF}, {"s1"}).can_access_site("s2")
    assert not principal({Role.MANAGER}, set()).can_access_site("s1")  # empty means none
    assert principal({Role.MANAGER}, {"*"}).can_access_site("s9")


def test_primary_role_is_the_most_privileged() -> None:
    assert principal({Role.FIELD_STAFF, Role.MANAGER}, set()).primary_role is Role.MANAGER
    assert principal({Role.PROVIDER, Role.CASEWORKER}, set()).primary_role is Role.CASEWORKER
    assert principal(set(), set()).primary_role is None
    assert principal({Role.CASEWORKER}, set()).has_any(Role.MANAGER, Role.CASEWORKER)
    assert not principal({Role.CASEWORKER}, set()).has_any(Role.MANAGER)


# --- JWKS (RS256 / ES256) served on loopback -----------------------------------------------


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    served = Jwks()
    yield served
    served.shutdown()


def jwks_settings(url: str) -> AuthSettings:
    return AuthSettings(mode="jwks", jwks_url=url, issuer="https://idp.example")


async def test_rs256_and_es256_tokens_verify_against_the_jwks(jwks: Jwks) -> None:
    async with make_client(Authenticator(jwks_settings(jwks.url))) as c:
        for kid in ("rsa-1", "ec-1"):
            response = await c.get("/me", headers=bearer(jwks.sign(kid)))
            assert response.status_code == 200, response.text
            assert response.json()["sub"] == "caseworker-9"


async def test_jwks_keys_are_cached(jwks: Jwks) -> None:
    authenticator = Authenticator(jwks_settings(jwks.url))
    before = jwks.fetches
    async with make_client(authenticator) as c:
        for _ in range(3):
            assert (await c.get("/me", headers=bearer(jwks.sign()))).status_code == 200
    assert jwks.fetches - before == 1


def test_jwks_mode_refuses_unknown_keys_and_hs256_tokens(jwks: Jwks) -> None:
    settings = jwks_settings(jwks.url)
    client = jwt.PyJWKClient(jwks.url, cooldown_duration=0)
    with pytest.raises(Unauthorized, match="unknown key"):
        decode_token(jwks.sign(kid="rsa-rotated-away"), settings, client)
    hs = jwt.encode(
        {"sub": "x", "iss": settings.issuer, "aud": "haven", "exp": 2_000_000_000},
        "some-shared-secret-that-is-long-enough",
        algorithm="HS256",
        headers={"kid": "rsa-1"},
    )
    with pytest.raises(Unauthorized):
        decode_token(hs, settings, client)
    with pytest.raises(Unauthorized, match="expired"):
        decode_token(jwks.sign(exp=datetime.now(UTC) - timedelta(hours=1)), settings, client)


async def test_unreachable_jwks_is_503_not_401(jwks: Jwks) -> None:
    # A closed port on loopback: the identity provider is down, the token may well be fine.
    async with make_client(Authenticator(jwks_settings("http://127.0.0.1:9/jwks.json"))) as c:
        response = await c.get("/me", headers=bearer(jwks.sign()))
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
