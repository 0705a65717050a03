"""Registration's events build the household read model: newer versions only, deactivation,
merges that carry the history over, erasures that leave only anonymous quantities — record by
record through the service's consumer, and end to end through the real broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import ConsumerRecord

from services.distribution import handlers
from services.distribution.models import ItemCategory
from shared.consumer import EventConsumer, RetryPolicy
from shared.events.catalog import HOUSEHOLDS
from shared.events.envelope import Envelope, EventPayload
from shared.events.registration import (
    HouseholdDeactivated,
    HouseholdErased,
    HouseholdsMerged,
    HouseholdUpdated,
    NeedsAssessed,
)
from shared.kafka import LazyProducer
from shared.vocabulary import NeedType
from tests.distribution.support import (
    START,
    Service,
    Site,
    envelope_of,
    ledger_mismatches,
    make_site,
    profile,
    publish,
    running_service,
    settings_for,
)
from tests.support import consumer_record, eventually, migrated_database, start_group_at_end, unique
from tests.support.clock import FakeClock
from tests.support.topics import TopicReader


@pytest.fixture
async def consumer(service: Service, infra: Any) -> AsyncIterator[EventConsumer]:
    """The service's handlers on an EventConsumer, fed record by record."""
    dead_letters = LazyProducer(infra.kafka_bootstrap, client_id=unique("dist-test"))
    events = EventConsumer(
        service=unique("distribution"),
        sessions=service.runtime.sessions,
        dead_letters=dead_letters,
        retry=RetryPolicy(max_attempts=1, initial_backoff_seconds=0.01),
    )
    handlers.register(events, service.runtime)
    yield events
    await dead_letters.stop()


def record(envelope: Envelope[Any], key: uuid.UUID) -> ConsumerRecord[bytes, bytes]:
    return consumer_record(envelope, topic=HOUSEHOLDS.name, key=str(key))


async def feed(consumer: EventConsumer, payload: EventPayload, key: uuid.UUID) -> str:
    return await consumer.process(HOUSEHOLDS, record(envelope_of(payload), key))


async def household_row(site: Site, household_id: uuid.UUID) -> Any:
    async with site.service.runtime.engine.connect() as conn:
        result = await conn.execute(
            sa.text("SELECT * FROM household_view WHERE household_id = :id"), {"id": household_id}
        )
        return result.mappings().first()


async def entitlements(site: Site, household_id: uuid.UUID) -> Any:
    return await site.client.get(
        f"/v1/households/{household_id}/entitlements", headers=site.operator
    )


async def test_only_newer_versions_change_the_read_model(
    site: Site, consumer: EventConsumer
) -> None:
    registered = profile(site_id=site.site_id, size=3)
    hid = registered.household_id
    assert await feed(consumer, registered, hid) == "applied"
    updated = profile(
        site_id=site.site_id, size=5, version=3, household_id=hid, event=HouseholdUpdated
    )
    assert await feed(consumer, updated, hid) == "applied"
    stale = profile(
        site_id=site.site_id,
        size=9,
        needs=[NeedType.SHELTER],
        version=2,
        household_id=hid,
        event=NeedsAssessed,
    )
    assert await feed(consumer, stale, hid) == "applied"
    row = await household_row(site, hid)
    assert (row["household_size"], row["version"], row["needs"]) == (5, 3, ["food", "hygiene"])
    assert "members" not in row  # no rule reads members: not kept (issue #15 item 10)
    envelope = envelope_of(updated)
    assert await consumer.process(HOUSEHOLDS, record(envelope, hid)) == "applied"
    assert await consumer.process(HOUSEHOLDS, record(envelope, hid)) == "duplicate"
    hygiene = next(
        c
        for c in (await entitlements(site, hid)).json()["categories"]
        if c["category"] == "hygiene"
    )
    assert hygiene["due"] == 5  # one kit per person of the newest profile


async def test_a_deactivated_household_is_not_served(site: Site, consumer: EventConsumer) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 5)
    registered = profile(site_id=site.site_id)
    hid = registered.household_id
    await feed(consumer, registered, hid)
    deactivated = HouseholdDeactivated(
        household_id=hid, site_id=site.site_id, reason_code="left_area", version=2
    )
    await feed(consumer, deactivated, hid)
    response = await site.distribute(str(hid), [{"sku": sku, "quantity": 1}])
    assert response.status_code == 409 and response.json()["household_status"] == "deactivated"
    assert all(c["due"] in (0, None) for c in (await entitlements(site, hid)).json()["categories"])
    # a deactivation that arrives before the profile leaves a stub an older profile cannot revive
    early = uuid.uuid4()
    await feed(
        consumer,
        HouseholdDeactivated(household_id=early, site_id=site.site_id, reason_code="x", version=4),
        early,
    )
    await feed(consumer, profile(site_id=site.site_id, household_id=early, version=3), early)
    assert (await household_row(site, early))["status"] == "deactivated"


async def test_a_merge_moves_the_history_so_the_pair_cannot_claim_twice(
    site: Site, consumer: EventConsumer
) -> None:
    sku = await site.stocked(ItemCategory.FOOD, 10)
    merged, survivor = profile(site_id=site.site_id), profile(site_id=site.site_id)
    await feed(consumer, merged, merged.household_id)
    await feed(consumer, survivor, survivor.household_id)
    served = await site.distribute(str(merged.household_id), [{"sku": sku, "quantity": 1}])
    assert served.status_code == 201

    event = HouseholdsMerged(
        surviving_id=survivor.household_id, merged_id=merged.household_id, site_id=site.site_id
    )
    assert await feed(consumer, event, survivor.household_id) == "applied"

    refused = await site.distribute(str(survivor.household_id), [{"sku": sku, "quantity": 1}])
    assert refused.status_code == 409 and refused.json()["type"].endswith("entitlement-exceeded")
    to_merged = await site.distribute(str(merged.household_id), [{"sku": sku, "quantity": 1}])
    assert to_merged.status_code == 409
    assert to_merged.json()["surviving_household_id"] == str(survivor.household_id)
    history = await site.client.get(
        "/v1/distributions",
        params={"household_id": str(survivor.household_id)},
        headers=site.manager,
    )
    assert [d["id"] for d in history.json()["items"]] == [served.json()["id"]]
    # a later profile of the merged household does not bring it back
    later = profile(
        site_id=site.site_id, household_id=merged.household_id, version=5, event=HouseholdUpdated
    )
    await feed(consumer, later, merged.household_id)
    assert (await household_row(site, merged.household_id))["status"] == "merged"


async def test_a_merge_moves_the_prescription_references_to_the_survivor(
    site: Site, consumer: EventConsumer
) -> None:
    sku = await site.stocked(ItemCategory.MEDICATION, 9, batch="RX-M", expires_on="2026-06-30")
    merged, survivor = profile(site_id=site.site_id), profile(site_id=site.site_id)
    for household in (merged, survivor):
        await feed(consumer, household, household.household_id)
    reference = await site.prescribed(str(merged.household_id))
    event = HouseholdsMerged(
        surviving_id=survivor.household_id, merged_id=merged.household_id, site_id=site.site_id
    )
    assert await feed(consumer, event, merged.household_id) == "applied"
    line = {"sku": sku, "quantity": 1, "prescription_reference": reference}
    assert (await site.distribute(str(survivor.household_id), [line])).status_code == 201


async def test_an_erasure_leaves_only_anonymous_quantities(
    site: Site, consumer: EventConsumer, distributions_topic: TopicReader
) -> None:
    sku = await site.stocked(ItemCategory.MEDICATION, 20, batch="E-1", expires_on="2026-01-01")
    registered = profile(site_id=site.site_id, size=2, needs=[NeedType.SHELTER])
    hid = registered.household_id
    await feed(consumer, registered, hid)
    client_ref = f"erase-{hid}"
    reference = await site.prescribed(str(hid))
    served = await site.distribute(
        str(hid),
        [{"sku": sku, "quantity": 3, "prescription_reference": reference}],
        client_ref=client_ref,
    )
    assert served.status_code == 201
    shelter = (
        await site.client.post(
            "/v1/shelters",
            json={
                "name": f"S-{hid}",
                "site_id": site.site_id,
                "capacity_beds": 4,
                "floor_area_m2": 40,
            },
            headers=site.admin,
        )
    ).json()
    allocation = await site.client.post(
        f"/v1/shelters/{shelter['id']}/allocations",
        json={"household_id": str(hid), "beds": 2, "check_in": "2025-03-10"},
        headers=site.operator,
    )
    assert allocation.status_code == 201

    assert (
        await feed(consumer, HouseholdErased(household_id=hid, site_id=site.site_id), hid)
        == "applied"
    )

    assert await household_row(site, hid) is None
    gone = await entitlements(site, hid)
    assert gone.status_code == 404 and gone.json()["type"].endswith("household-not-known-yet")
    kept = (
        await site.client.get(f"/v1/distributions/{served.json()['id']}", headers=site.manager)
    ).json()
    assert kept["household_id"] is None and kept["lines"][0]["prescription_reference"] is None
    assert kept["lines"][0]["issued"][0]["quantity"] == 3  # the quantities stay
    assert (await site.stock())[sku]["on_hand"] == 17
    assert await ledger_mismatches(site.service) == []
    freed = (await site.client.get(f"/v1/shelters/{shelter['id']}", headers=site.manager)).json()
    assert freed["beds_occupied"] == 0
    (released,) = await distributions_topic.wait_for(
        lambda r: (
            r.type == "ShelterReleased"
            and r.data["allocation_id"] == allocation.json()["allocation"]["id"]
        )
    )
    assert (released.data["beds"], released.data["reason_code"]) == (2, "household_erased")
    async with site.service.runtime.engine.connect() as conn:
        leftovers = await conn.scalar(
            sa.text(
                "SELECT count(*) FROM distribution "
                "WHERE household_id = :id OR response::text LIKE :pattern"
            ),
            {"id": hid, "pattern": f"%{hid}%"},
        )
        allocations = await conn.scalar(
            sa.text("SELECT count(*) FROM shelter_allocation WHERE household_id = :id"), {"id": hid}
        )
        prescriptions = await conn.scalar(
            sa.text("SELECT count(*) FROM prescription WHERE household_id = :id"), {"id": hid}
        )
    assert (leftovers, allocations, prescriptions) == (0, 0, 0)
    # a re-send of the erased household's request cannot resurrect the answer
    resent = await site.distribute(
        str(hid),
        [{"sku": sku, "quantity": 3, "prescription_reference": reference}],
        client_ref=client_ref,
    )
    assert resent.status_code == 409
    # nor can a late profile event
    await feed(consumer, profile(site_id=site.site_id, household_id=hid, version=9), hid)
    assert await household_row(site, hid) is None


async def test_registration_events_on_the_real_broker_reach_the_read_model(infra: Any) -> None:
    """HouseholdRegistered published on the topic -> entitlements answer; erased -> gone."""
    url = await migrated_database(infra, "distribution")
    name = unique("distribution")
    await start_group_at_end(infra.kafka_bootstrap, f"haven-{name}", HOUSEHOLDS.name)
    settings = settings_for(
        infra, url, consumers_enabled=True, consumer_backoff_initial_seconds=0.05
    )
    async with running_service(settings, clock=FakeClock(START), name=name) as service:
        site = await make_site(service)
        registered = profile(site_id=site.site_id, size=6)
        hid = registered.household_id
        before = await entitlements(site, hid)
        assert before.status_code == 404 and before.headers["retry-after"] == "5"

        await publish(infra.kafka_bootstrap, registered, key=str(hid))

        async def known() -> bool:
            return (await entitlements(site, hid)).status_code == 200

        await eventually(known, timeout=45, what="the household to reach distribution")
        food = next(
            c
            for c in (await entitlements(site, hid)).json()["categories"]
            if c["category"] == "food"
        )
        assert food["allowed"] == 2  # six members: two parcels

        await publish(
            infra.kafka_bootstrap,
            HouseholdErased(household_id=hid, site_id=site.site_id),
            key=str(hid),
        )

        async def erased() -> bool:
            return (await entitlements(site, hid)).status_code == 404

        await eventually(erased, timeout=30, what="the erasure to reach distribution")
