"""Distribution keeps only what entitlements use (issue #15 item 10): no members, and of the
vulnerabilities only those a policy rule names — a sensitive one (survivor of trafficking or of
GBV) never reaches ``household_view``, whichever path applies the profile, and a migration
strips what was stored before."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

from services.distribution.models import ItemCategory
from shared.db import asyncpg_dsn, upgrade
from shared.events.registration import HouseholdRegistered
from shared.vocabulary import Vulnerability
from tests.distribution.support import (
    START,
    Service,
    Site,
    insert_household,
    make_site,
    policy_naming_a_vulnerability,
    profile,
    running_service,
    settings_for,
)
from tests.support import ROOT, migrated_database
from tests.support.clock import FakeClock

MIGRATIONS = ROOT / "services" / "distribution" / "migrations"
SENSITIVE = (Vulnerability.SURVIVOR_OF_TRAFFICKING, Vulnerability.SURVIVOR_OF_GBV)


def flagged(site_id: str, *vulnerabilities: Vulnerability, size: int = 2) -> HouseholdRegistered:
    """A household whose head is flagged with ``vulnerabilities``."""
    base = profile(site_id=site_id, size=size)
    head, *others = base.members
    members = (head.model_copy(update={"vulnerabilities": vulnerabilities}), *others)
    return base.model_copy(update={"members": members})


async def stored(service: Service, household_id: uuid.UUID) -> dict[str, Any]:
    async with service.runtime.engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    sa.text("SELECT * FROM household_view WHERE household_id = :id"),
                    {"id": household_id},
                )
            )
            .mappings()
            .one()
        )
    return dict(row)


async def entitlements(site: Site, household_id: uuid.UUID) -> dict[str, Any]:
    response = await site.client.get(
        f"/v1/households/{household_id}/entitlements", headers=site.operator
    )
    assert response.status_code == 200, response.text
    return {c["category"]: c for c in response.json()["categories"]}


async def test_sensitive_vulnerabilities_never_reach_the_read_model(site: Site) -> None:
    """The shipped policy names no vulnerability: none is kept, and no member either."""
    others = (Vulnerability.PREGNANT_OR_LACTATING, Vulnerability.DISABILITY_SEEING)
    payload = flagged(site.site_id, *SENSITIVE, *others)
    await insert_household(site.service, payload)
    row = await stored(site.service, payload.household_id)
    assert row["vulnerabilities"] == [] and "members" not in row
    assert "survivor" not in repr(row) and "trafficking" not in repr(row)
    assert row["household_size"] == 2 and row["needs"] == ["food", "hygiene"]


async def test_the_policys_own_vulnerability_is_kept_and_entitles_as_before(
    infra: Any, tmp_path: Path
) -> None:
    url = await migrated_database(infra, "distribution")
    settings = settings_for(infra, url, policy_dir=policy_naming_a_vulnerability(tmp_path))
    async with running_service(settings, clock=FakeClock(START)) as service:
        site = await make_site(service)
        kits = await site.stocked(ItemCategory.HYGIENE, 20)
        both = flagged(site.site_id, Vulnerability.PREGNANT_OR_LACTATING, *SENSITIVE)
        own_only = flagged(site.site_id, Vulnerability.PREGNANT_OR_LACTATING)
        sensitive_only = flagged(site.site_id, *SENSITIVE)
        for payload in (both, own_only, sensitive_only):
            await insert_household(service, payload)
        assert (await stored(service, both.household_id))["vulnerabilities"] == [
            "pregnant_or_lactating"
        ]
        assert (await stored(service, sensitive_only.household_id))["vulnerabilities"] == []
        # the sensitive flags change nothing: the same entitlements as the policy's own alone
        assert await entitlements(site, both.household_id) == await entitlements(
            site, own_only.household_id
        )
        hygiene = (await entitlements(site, both.household_id))["hygiene"]
        assert (hygiene["allowed"], hygiene["due"], hygiene["reason"]) == (2, 2, None)
        refused = (await entitlements(site, sensitive_only.household_id))["hygiene"]
        assert (refused["due"], refused["reason"]) == (0, "vulnerability_not_flagged")
        line = [{"sku": kits, "quantity": 2}]
        assert (await site.distribute(str(both.household_id), line)).status_code == 201
        over = await site.distribute(str(sensitive_only.household_id), line)
        assert over.status_code == 409
        assert over.json()["lines"][0]["reason"] == "vulnerability_not_flagged"


async def test_the_migration_strips_what_was_stored(infra: Any) -> None:
    url = await migrated_database(infra, "distribution")
    await asyncio.to_thread(_migrate, url, "0003")
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        household = uuid.uuid4()
        await conn.execute(
            "INSERT INTO household_view (household_id, site_id, household_size, members, needs,"
            " vulnerabilities, status, version, updated_at) VALUES ($1, 'S', 2, $2, '{food}',"
            " $3, 'active', 1, now())",
            household,
            '[{"sex": "female", "age_band": "18-59", "is_head": true,'
            ' "vulnerabilities": ["survivor_of_gbv"]}]',
            ["survivor_of_gbv", "survivor_of_trafficking", "pregnant_or_lactating"],
        )
        await asyncio.to_thread(upgrade, url, Path(MIGRATIONS))
        row = await conn.fetchrow("SELECT * FROM household_view WHERE household_id = $1", household)
        assert row is not None
        assert row["vulnerabilities"] == [] and "members" not in dict(row)
        assert (row["household_size"], row["needs"]) == (2, ["food"])
    finally:
        await conn.close()


def _migrate(url: str, revision: str) -> None:
    from alembic import command

    from shared.db import alembic_config

    command.downgrade(alembic_config(url, MIGRATIONS), revision)
