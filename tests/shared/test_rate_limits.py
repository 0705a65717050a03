"""Unauthenticated requests cost nothing: counted not audited, limited per address; subjects
are limited too; a limit answers 429 problem+json with Retry-After."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request
from prometheus_client import REGISTRY
from pydantic import SecretStr

from shared.auth import Authenticator, AuthSettings, PrincipalDep
from shared.http import create_app
from shared.problems import PROBLEM_MEDIA_TYPE, Problem
from shared.rate_limits import RateLimitSettings
from tests.support.tokens import auth_headers

SETTINGS = AuthSettings(secret=SecretStr("rate-limit-test-secret-long-enough-for-hs256"))


def app_with(limits: RateLimitSettings, audited: list[int]) -> httpx.AsyncClient:
    router = APIRouter()

    @router.get("/v1/things/{thing_id}")
    async def thing(thing_id: str, principal: PrincipalDep) -> dict[str, Any]:
        return {"sub": principal.sub}

    async def on_refused(request: Request, problem: Problem) -> None:
        audited.append(problem.status)

    authenticator = Authenticator(SETTINGS, on_refused=on_refused, rate_limits=limits)
    app = create_app(
        service="limits-test", title="t", version="1", routers=[router], authenticator=authenticator
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def counted(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "http_unauthenticated_requests_total",
        {"service": "limits-test", "route": "/v1/things/{thing_id}", "reason": reason},
    )
    return value or 0.0


def bearer(sub: str) -> dict[str, str]:
    return auth_headers("field_staff", sites=["s1"], sub=sub, settings=SETTINGS)


async def test_unauthenticated_requests_are_counted_by_route_and_reason_not_audited() -> None:
    audited: list[int] = []
    before_missing, before_invalid = counted("missing_token"), counted("invalid_token")
    async with app_with(RateLimitSettings(per_address="100/minute"), audited) as client:
        for _ in range(3):
            assert (await client.get("/v1/things/1")).status_code == 401
        bad = {"Authorization": "Bearer not-a-jwt"}
        assert (await client.get("/v1/things/2", headers=bad)).status_code == 401
    assert counted("missing_token") - before_missing == 3
    assert counted("invalid_token") - before_invalid == 1
    assert audited == []


async def test_an_address_that_keeps_failing_gets_429_with_retry_after() -> None:
    audited: list[int] = []
    before = counted("rate_limited")
    async with app_with(RateLimitSettings(per_address="5/minute"), audited) as client:
        statuses = [(await client.get("/v1/things/1")).status_code for _ in range(5)]
        limited = await client.get("/v1/things/1", headers={"Authorization": "Bearer forged"})
        # A caller with a valid token from the same address is not locked out.
        allowed = await client.get("/v1/things/1", headers=bearer("clerk-1"))
    assert statuses == [401] * 5
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["type"] == "urn:haven:problem:rate-limited"
    assert allowed.status_code == 200
    assert counted("rate_limited") - before == 1


async def test_a_subject_is_limited_on_its_own() -> None:
    audited: list[int] = []
    async with app_with(RateLimitSettings(per_subject="3/minute"), audited) as client:
        first = [(await client.get("/v1/things/1", headers=bearer("a"))).status_code for _ in "abc"]
        over = await client.get("/v1/things/1", headers=bearer("a"))
        other = await client.get("/v1/things/1", headers=bearer("b"))
    assert first == [200, 200, 200]
    assert over.status_code == 429
    assert int(over.headers["retry-after"]) >= 1
    assert other.status_code == 200


def test_limits_are_validated_and_can_be_turned_off() -> None:
    with pytest.raises(ValueError):
        RateLimitSettings(per_address="lots")
    assert RateLimitSettings(per_subject="off").per_subject == "off"
