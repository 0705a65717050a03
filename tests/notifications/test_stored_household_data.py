"""What notifications keeps from registration's households topic (issue 15, item 10): only
what a template or a rule uses — pinned here column by column, and nothing else of a profile
(members, vulnerabilities, needs, arrival, size) in any table."""

from __future__ import annotations

from datetime import date
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.domain.messages import MESSAGES
from shared.consumer import EventConsumer
from shared.events.catalog import CATALOG
from shared.events.envelope import EventPayload
from shared.events.registration import ConsentFlags, MemberProfile
from shared.vocabulary import AgeBand, NeedType, Sex, Vulnerability
from tests.notifications import support
from tests.notifications.support import rows
from tests.support.events import envelope as wrap_event
from tests.support.events import household_profile

# Every column kept about a household, and the rule or template that needs it. A new column
# needs a line here — and a reason.
KEPT: dict[str, dict[str, str]] = {
    "notification_household": {  # from the households topic
        "household_id": "the key",
        "site_id": "routes staff alerts of events that carry no site; the alerts' site_id",
        "case_number": "the staff alerts' case_number",
        "contact_consent": "skips a confirmation at once when registration says no consent",
        "version": "a newer profile wins over an older one",
    },
    "notification_contact": {  # from the contacts topic
        "household_id": "the key",
        "case_number": "the beneficiaries' case_number",
        "site_id": "the quiet hours of the site's time zone",
        "phone": "where an SMS goes",
        "language": "the message's language",
        "contact_consent": "no message without it",
        "updated_at": "when the contact last changed",
    },
    "notification_erasure": {"household_id": "the key", "erased_at": "when"},
}


async def test_the_household_tables_keep_only_the_pinned_columns(engine: AsyncEngine) -> None:
    found = await rows(
        engine,
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = ANY(:tables)",
        tables=list(KEPT),
    )
    stored: dict[str, set[str]] = {}
    for row in found:
        stored.setdefault(row.table_name, set()).add(row.column_name)
    assert stored == {table: set(columns) for table, columns in KEPT.items()}


def test_a_confirmation_keeps_no_more_of_the_profile_than_its_site() -> None:
    kind = MESSAGES["HouseholdRegistered"]
    assert kind.payload_variables() == {"site_id"}
    assert kind.variables() == {"site_id", "case_number"}  # the case number: from the contact


async def test_nothing_else_of_a_profile_is_stored_anywhere(
    consumer: EventConsumer, engine: AsyncEngine
) -> None:
    household = uuid4()
    survivor = MemberProfile(
        member_id=uuid4(),
        sex=Sex.FEMALE,
        age_band=AgeBand.AGE_18_59,
        is_head=True,
        vulnerabilities=(Vulnerability.SURVIVOR_OF_TRAFFICKING,),
    )
    profile = household_profile(
        household,
        site_id="MDA-PAL",
        case_number="MDA-PAL-000777",
        size=7,
        members=[survivor],
        needs=[NeedType.PSYCHOSOCIAL_SUPPORT],
        language="ro",
        consent=ConsentFlags(data_processing=True, referral_sharing=True, contact=True),
    ).model_copy(update={"arrival_date": date(2025, 12, 24)})
    await _deliver(consumer, support.contact(household), household)
    await _deliver(consumer, profile, household)

    (queued,) = await rows(
        engine, "SELECT context FROM notification WHERE household_id = :h", h=household
    )
    assert queued.context == {"site_id": "MDA-PAL"}
    dump = await rows(
        engine,
        "SELECT (SELECT json_agg(t)::text FROM notification t) AS n, "
        "(SELECT json_agg(t)::text FROM notification_household t) AS h",
    )
    everything = f"{dump[0].n} {dump[0].h}"
    for absent in (
        "survivor",
        "psychosocial",
        str(survivor.member_id),
        "2025-12-24",
        "household_size",
        "preferred_language",
        "refugee",
    ):
        assert absent not in everything, absent


async def _deliver(consumer: EventConsumer, payload: EventPayload, key: UUID) -> None:
    envelope = wrap_event(payload)
    assert (
        await consumer.process(CATALOG.topic_for(payload), support.record_of(envelope, str(key)))
        == "applied"
    )
