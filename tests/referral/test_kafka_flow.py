"""Against the real broker, through the running service (consumers, relay, scheduler):
registration's events in, referrals created, sent, accepted and escalated, events out on
``haven.referral.referrals.v1`` keyed by household."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from shared.events.catalog import AUDIT, HOUSEHOLDS, REFERRALS
from shared.events.envelope import headers_to_dict
from shared.vocabulary import NeedType, Priority
from tests.referral.factories import (
    ADMIN,
    CASEWORKER,
    envelope,
    profile,
    provider_auth,
    provider_body,
    running_app,
)
from tests.support import create_catalog_topics, eventually, start_group_at_end, unique
from tests.support.topics import TopicReader

pytestmark = pytest.mark.asyncio(loop_scope="session")


def summary(records: list[Any]) -> list[str]:
    return [headers_to_dict(r.headers)["ce_type"] for r in records]


async def test_from_registration_events_to_accepted_and_escalated_referrals_on_the_topic(
    infra,
) -> None:
    bootstrap = infra.kafka_bootstrap
    await create_catalog_topics(bootstrap)
    region = f"MD{uuid.uuid4().int % 10**6:06d}"
    referrals_topic = await TopicReader(bootstrap, REFERRALS.name).open()
    audit_topic = await TopicReader(bootstrap, AUDIT.name).open()
    name = unique("referral")
    await start_group_at_end(bootstrap, f"haven-{name}", [HOUSEHOLDS.name])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        async with running_app(infra, consumers=True, relay=True, scheduler=True, name=name) as app:
            created = await app.client.post(
                "/v1/providers",
                json=provider_body(regions=[region], services=["medical"]),
                headers=ADMIN,
            )
            provider = created.json()["id"]
            accepted_later = profile(
                needs=[(NeedType.MEDICAL_CARE, Priority.URGENT)], admin1=region, admin2=None
            )
            left_waiting = profile(
                needs=[(NeedType.MEDICAL_CARE, Priority.URGENT)], admin1=region, admin2=None
            )
            no_consent = profile(needs=[NeedType.LEGAL_AID], referral_sharing=False)
            for event in (accepted_later, left_waiting, no_consent):
                env = envelope(event)
                await producer.send_and_wait(
                    HOUSEHOLDS.name,
                    env.kafka_value(),
                    key=str(event.household_id).encode(),
                    headers=env.kafka_headers(),
                )

            async def referred(household_id: uuid.UUID) -> list[dict[str, Any]]:
                response = await app.client.get(
                    "/v1/referrals", params={"household_id": str(household_id)}, headers=CASEWORKER
                )
                return list(response.json()["items"])

            async def both_referred() -> bool:
                return all([await referred(h.household_id) for h in (accepted_later, left_waiting)])

            await eventually(both_referred, timeout=60, what="referrals made from the events")
            (referral,) = await referred(accepted_later.household_id)
            assert referral["provider_id"] == provider and referral["urgency"] == "urgent"
            accepted = await app.client.post(
                f"/v1/referrals/{referral['id']}/accept", headers=provider_auth(provider)
            )
            assert accepted.status_code == 200, accepted.text

            app.clock.advance(hours=24)  # the scheduler, running every 0.2 s, sees the deadline
            first = await referrals_topic.for_key(
                str(accepted_later.household_id), count=3, timeout=60
            )
            waiting = await referrals_topic.for_key(
                str(left_waiting.household_id), count=4, timeout=60
            )
            asked = await referrals_topic.for_key(str(no_consent.household_id), timeout=60)

            def acceptance_audited(records: list[Any]) -> bool:
                return any(
                    json.loads(r.value).get("resource_id") == referral["id"]
                    and json.loads(r.value).get("action") == "referral.accept"
                    for r in records
                )

            audited = await audit_topic.wait_for(
                lambda r: r.key == "referral" and acceptance_audited([r]), timeout=60
            )
    finally:
        await producer.stop()
        await referrals_topic.close()
        await audit_topic.close()

    assert summary(first) == ["ReferralCreated", "ReferralSent", "ReferralAccepted"]
    assert summary(waiting) == [
        "ReferralCreated",
        "ReferralSent",
        "ReferralOverdue",
        "ReferralEscalated",
    ]
    assert summary(asked) == ["ConsentFollowUpRequested"]
    sent = json.loads(first[1].value)
    assert sent["provider_id"] == provider
    assert sent["provider_name"] and sent["provider_address"] and sent["provider_opening_hours"]
    assert sent["status"] == "sent" and sent["urgency"] == "urgent"
    headers = headers_to_dict(first[2].headers)
    assert headers["ce_source"] == "haven/referral"
    assert headers["ce_dataschema"] == "urn:haven:event:ReferralAccepted:v1"
    escalated = json.loads(waiting[3].value)
    assert escalated["tier"] == 1 and escalated["audience"] == "provider"
    assert acceptance_audited(audited)
