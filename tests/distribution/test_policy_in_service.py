"""The policy in the running service: a new version applies from its effective date and never
to earlier distributions; a bad policy file stops the service at start-up."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.distribution.domain.policy import PolicyError
from services.distribution.models import ItemCategory
from tests.distribution.support import START, make_site, running_service, settings_for
from tests.support import migrated_database
from tests.support.clock import FakeClock

V1 = """
version: "v1"
effective_from: 2025-01-01
categories:
  food: {basis: household, quantity: 1, window_days: 30}
"""
V2 = """
version: "v2"
effective_from: 2025-04-01
categories:
  food: {basis: household, quantity: 2, window_days: 30}
  hygiene: {basis: person, quantity: 1, window_days: 30}
"""


async def test_a_policy_change_applies_from_its_effective_date_never_retroactively(
    infra: Any, tmp_path: Path
) -> None:
    (tmp_path / "2025-01-01.yaml").write_text(V1)
    (tmp_path / "2025-04-01.yaml").write_text(V2)
    url = await migrated_database(infra, "distribution")
    clock = FakeClock(datetime(2025, 3, 20, 10, tzinfo=UTC))
    async with running_service(
        settings_for(infra, url, policy_dir=tmp_path), clock=clock
    ) as service:
        site = await make_site(service)
        food = await site.stocked(ItemCategory.FOOD, 10)
        kits = await site.stocked(ItemCategory.HYGIENE, 10)
        household = await site.household(size=2)
        march = await site.distribute(household, [{"sku": food, "quantity": 1}])
        assert march.status_code == 201 and march.json()["policy_version"] == "v1"
        # v2 is known but not yet in force: hygiene is not in v1, food is still one parcel
        assert (await site.distribute(household, [{"sku": kits, "quantity": 1}])).status_code == 409
        assert (await site.distribute(household, [{"sku": food, "quantity": 1}])).status_code == 409
        clock.set(datetime(2025, 3, 31, 23, 59, tzinfo=UTC))
        assert (await site.distribute(household, [{"sku": food, "quantity": 1}])).status_code == 409
        clock.set(datetime(2025, 4, 1, 8, tzinfo=UTC))
        april = await site.distribute(household, [{"sku": food, "quantity": 1}])
        assert april.status_code == 201 and april.json()["policy_version"] == "v2"
        # the March parcel still counts in the window; 2 allowed now, so nothing more is due
        over = await site.distribute(household, [{"sku": food, "quantity": 1}])
        assert over.status_code == 409 and over.json()["policy_version"] == "v2"
        assert (await site.distribute(household, [{"sku": kits, "quantity": 2}])).status_code == 201
        # the March distribution keeps the policy it was given under
        again = await service.client.get(
            f"/v1/distributions/{march.json()['id']}", headers=site.manager
        )
        assert again.json()["policy_version"] == "v1"
        entitlements = await service.client.get(
            f"/v1/households/{household}/entitlements", headers=site.operator
        )
        assert entitlements.json()["policy_version"] == "v2"


async def test_a_bad_policy_file_stops_the_service_with_a_clear_error(
    infra: Any, tmp_path: Path
) -> None:
    (tmp_path / "2025-01-01.yaml").write_text(V1.replace("quantity: 1", "quantity: -1"))
    url = await migrated_database(infra, "distribution")
    settings = settings_for(infra, url, policy_dir=tmp_path)
    with pytest.raises(PolicyError, match=r"2025-01-01.yaml is invalid: categories.food.quantity"):
        async with running_service(settings, clock=FakeClock(START)):
            pass
