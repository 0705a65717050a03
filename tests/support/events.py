"""The one event factory of the tests: household profiles as registration publishes them, their
envelopes, and the Kafka records a consumer would receive for them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from aiokafka import ConsumerRecord

from shared.events.catalog import CATALOG
from shared.events.envelope import Envelope, EventPayload
from shared.events.registration import (
    ConsentFlags,
    HouseholdProfile,
    HouseholdRegistered,
    Location,
    MemberProfile,
    Need,
)
from shared.vocabulary import AgeBand, DisplacementStatus, HouseholdStatus, NeedType, Priority, Sex

P = TypeVar("P", bound=HouseholdProfile)


def members_of(count: int) -> tuple[MemberProfile, ...]:
    """``count`` members: a female head, then alternating sexes; two adults, then children."""
    return tuple(
        MemberProfile(
            member_id=uuid.uuid4(),
            sex=Sex.FEMALE if i % 2 == 0 else Sex.MALE,
            age_band=AgeBand.AGE_18_59 if i < 2 else AgeBand.AGE_5_17,
            is_head=i == 0,
        )
        for i in range(count)
    )


def household_profile(
    household_id: uuid.UUID | None = None,
    *,
    event: type[P] = HouseholdRegistered,  # type: ignore[assignment]
    site_id: str = "MDA-CHI",
    case_number: str = "MDA-TST-000001",
    size: int = 3,
    members: Sequence[MemberProfile] | int = 1,
    needs: Sequence[NeedType | tuple[NeedType, Priority]] = (),
    status: HouseholdStatus = HouseholdStatus.ACTIVE,
    location: Location | None = None,
    language: str = "uk",
    consent: ConsentFlags | None = None,
    version: int = 1,
) -> P:
    """A household profile event (registered, updated, ...) as registration publishes it.

    ``size`` is the household size; ``members`` the profiles sent (or how many to make).
    """
    return event(
        household_id=household_id or uuid.uuid4(),
        case_number=case_number,
        site_id=site_id,
        location=location or Location(admin1="MD01"),
        displacement_status=DisplacementStatus.REFUGEE,
        status=status,
        household_size=size,
        members=members_of(members) if isinstance(members, int) else tuple(members),
        needs=tuple(
            Need(type=n[0], priority=n[1]) if isinstance(n, tuple) else Need(type=n) for n in needs
        ),
        preferred_language=language,
        consent=consent
        or ConsentFlags(data_processing=True, referral_sharing=False, contact=False),
        version=version,
    )


def producer_source(payload: EventPayload) -> str:
    """The source the payload's producer writes (consumers refuse events from anyone else)."""
    return f"haven/{CATALOG.topic_for(payload).producers[0]}"


def envelope(
    payload: EventPayload, *, source: str | None = None, actor: str | None = None
) -> Envelope[Any]:
    """``payload`` in the envelope its producing service would send."""
    return Envelope.wrap(payload, source=source or producer_source(payload), actor=actor)


def consumer_record(
    envelope: Envelope[Any] | None,
    *,
    topic: str | None = None,
    key: str,
    offset: int = 0,
) -> ConsumerRecord[bytes, bytes]:
    """The Kafka record a consumer would receive for ``envelope`` (None: a tombstone, which
    needs its ``topic``); the topic defaults to the catalog's topic of the event."""
    if topic is None:
        assert envelope is not None, "a tombstone needs its topic"
        topic = CATALOG.topic_for(envelope.data).name
    value = envelope.kafka_value() if envelope is not None else None
    raw_key = key.encode()
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=raw_key,
        value=value,
        checksum=None,
        serialized_key_size=len(raw_key),
        serialized_value_size=len(value) if value is not None else -1,
        headers=envelope.kafka_headers() if envelope is not None else [],
    )
