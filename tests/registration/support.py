"""Helpers of the registration tests: the demo sites and a running service with what a test
needs to talk to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.auth import Role
from shared.events.catalog import AUDIT
from tests.support.clock import FakeClock
from tests.support.tokens import auth_headers
from tests.support.topics import TopicReader

SITES = (
    {
        "id": "MDA-CHI",
        "name": "Chișinău collective centre",
        "country": "MDA",
        "admin1": "MD01",
        "admin2": "MD0101",
        "timezone": "Europe/Chisinau",
    },
    {
        "id": "MDA-PAL",
        "name": "Palanca border crossing",
        "country": "MDA",
        "admin1": "MD34",
        "admin2": "MD3401",
        "timezone": "Europe/Chisinau",
    },
)


@dataclass
class Service:
    """A running registration service and everything a test needs to talk to it."""

    client: httpx.AsyncClient
    engine: AsyncEngine
    clock: FakeClock
    topics: TopicReader
    database_url: str

    def headers(
        self,
        role: Role | str,
        *,
        sites: Sequence[str] = ("MDA-CHI",),
        sub: str | None = None,
    ) -> dict[str, str]:
        return auth_headers(role, sites=sites, sub=sub or f"{role}-tester")

    @property
    def admin(self) -> dict[str, str]:
        return self.headers(Role.ADMIN, sites=())

    @property
    def field(self) -> dict[str, str]:
        return self.headers(Role.FIELD_STAFF)

    @property
    def supervisor(self) -> dict[str, str]:
        """A supervisor of MDA-CHI who registers nobody (so may decide any review there)."""
        return self.headers(Role.SUPERVISOR)

    async def register(
        self, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/households", json=body, headers=headers or self.field
        )
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def get(self, household_id: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.get(
            f"/v1/households/{household_id}", headers=headers or self.admin
        )

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return await conn.scalar(sa.text(sql), params)

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(sa.text(sql), params)).all())

    async def audit_actions(self, household_id: str) -> list[str]:
        """Audit records of a household, read from the audit topic."""
        records = self.topics.matching(
            lambda r: (
                r.topic == AUDIT.name
                and r.value is not None
                and r.data.get("service") == "registration"
                and r.data.get("resource_id") == household_id
            )
        )
        return [r.data["action"] for r in records]
