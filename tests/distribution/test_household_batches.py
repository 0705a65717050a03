"""Registration's profile events applied a batch at a time, set-based: the same read model as
applying them one by one, in a few statements whatever the batch size."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import sqlalchemy as sa
from aiokafka import ConsumerRecord
from sqlalchemy.ext.asyncio import AsyncEngine

from services.distribution import handlers
from shared.consumer import EventConsumer, RetryPolicy
from shared.db import create_engine, session_factory
from shared.events.catalog import HOUSEHOLDS
from shared.events.envelope import Envelope, EventPayload
from shared.events.registration import (
    HouseholdErased,
    HouseholdRegistered,
    HouseholdsMerged,
    HouseholdUpdated,
    MemberProfile,
    NeedsAssessed,
    VulnerabilitiesFlagged,
)
from shared.kafka import LazyProducer
from shared.vocabulary import HouseholdStatus, NeedType, Vulnerability
from tests.distribution.support import (
    Service,
    new_site,
    policy_naming_a_vulnerability,
    profile,
)
from tests.support import consumer_record, sent_statements, unique

EVENT_TIME = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
BATCH_SIZE = 100


@pytest.fixture
async def engine(service: Service) -> AsyncIterator[AsyncEngine]:
    """An engine of the consumer's own: its statements are the only ones on it."""
    assert service.settings.database_url is not None
    own = create_engine(service.settings.database_url)
    yield own
    await own.dispose()


@pytest.fixture
async def consumer(
    engine: AsyncEngine, infra: Any, service: Service, tmp_path: Path
) -> AsyncIterator[EventConsumer]:
    dead_letters = LazyProducer(infra.kafka_bootstrap, client_id=unique("dist-batch-test"))
    events = EventConsumer(
        service=unique("distribution"),
        sessions=session_factory(engine),
        dead_letters=dead_letters,
        retry=RetryPolicy(max_attempts=1, initial_backoff_seconds=0.01),
    )
    # The service's handlers under a policy naming one vulnerability (pregnant_or_lactating)
    settings = service.settings.model_copy(
        update={"policy_dir": policy_naming_a_vulnerability(tmp_path)}
    )
    handlers.register(events, cast(Any, SimpleNamespace(settings=settings)))
    yield events
    await dead_letters.stop()


@dataclass
class World:
    """One copy of the scenario: its own households (by label), its own events."""

    site_id: str = field(default_factory=new_site)
    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    offset: int = 0

    def id(self, label: str) -> uuid.UUID:
        return self.ids.setdefault(label, uuid.uuid4())

    def label(self, household_id: uuid.UUID | None) -> str | None:
        if household_id is None:
            return None
        return next(label for label, known in self.ids.items() if known == household_id)

    def record(self, payload: EventPayload, label: str, minutes: int = 0) -> ConsumerRecord:
        envelope = Envelope.wrap(payload, source="haven/registration", actor="test")
        return self.record_of(envelope, label, minutes)

    def record_of(self, envelope: Envelope[Any], label: str, minutes: int = 0) -> ConsumerRecord:
        timed = envelope.model_copy(update={"time": EVENT_TIME + timedelta(minutes=minutes)})
        self.offset += 1
        return consumer_record(
            timed, topic=HOUSEHOLDS.name, key=str(self.id(label)), offset=self.offset
        )

    def profile(
        self,
        label: str,
        *,
        version: int,
        size: int = 3,
        event: Any = HouseholdRegistered,  # or another HouseholdProfile event
        **kwargs: Any,
    ) -> HouseholdRegistered:
        return profile(
            site_id=self.site_id,
            household_id=self.id(label),
            version=version,
            size=size,
            event=event,
            **kwargs,
        )

    def erased(self, label: str) -> HouseholdErased:
        return HouseholdErased(household_id=self.id(label), site_id=self.site_id)

    def merged(self, merged: str, into: str) -> HouseholdsMerged:
        return HouseholdsMerged(
            surviving_id=self.id(into), merged_id=self.id(merged), site_id=self.site_id
        )


def flagged(world: World, label: str, version: int) -> VulnerabilitiesFlagged:
    base = world.profile(label, version=version, size=2, event=VulnerabilitiesFlagged)
    first, *others = base.members
    members: tuple[MemberProfile, ...] = (
        first.model_copy(
            update={
                "vulnerabilities": (
                    Vulnerability.DISABILITY_SEEING,
                    Vulnerability.PREGNANT_OR_LACTATING,
                    Vulnerability.SURVIVOR_OF_GBV,
                    Vulnerability.SURVIVOR_OF_TRAFFICKING,
                )
            }
        ),
        *others,
    )
    flagged_profile = base.model_copy(update={"members": members})
    assert isinstance(flagged_profile, VulnerabilitiesFlagged)
    return flagged_profile


def history(world: World) -> list[ConsumerRecord]:
    """What the read model holds before the batch: a newer version, an erased household, a
    merged household and its survivor."""
    return [
        world.record(world.profile("newer-here", version=5, size=2), "newer-here"),
        world.record(world.profile("erased", version=1), "erased"),
        world.record(world.erased("erased"), "erased"),
        world.record(world.profile("survivor", version=1), "survivor"),
        world.record(world.profile("merged", version=1), "merged"),
        world.record(world.merged("merged", into="survivor"), "merged"),
    ]


def mixed_batch(world: World) -> list[ConsumerRecord]:
    """Profile events of every kind, several of one household, older and newer versions, an
    erasure in the middle, and a redelivered event."""
    new = world.record(world.profile("new", version=1, size=3), "new", minutes=1)
    return [
        new,
        world.record(world.profile("twice", version=1, size=2), "twice", minutes=2),
        world.record(
            world.profile(
                "twice", version=3, size=4, needs=[NeedType.FOOD], event=HouseholdUpdated
            ),
            "twice",
            minutes=3,
        ),
        world.record(
            world.profile("twice", version=2, size=5, event=NeedsAssessed), "twice", minutes=4
        ),
        world.record(
            world.profile("newer-here", version=4, size=6, event=HouseholdUpdated),
            "newer-here",
            minutes=5,
        ),
        world.record(world.profile("erased", version=9, event=HouseholdUpdated), "erased"),
        world.record(
            world.profile("merged", version=7, size=4, event=HouseholdUpdated),
            "merged",
            minutes=6,
        ),
        world.record(world.profile("erased-now", version=1), "erased-now"),
        world.record(world.erased("erased-now"), "erased-now"),
        world.record(world.profile("erased-now", version=2, event=HouseholdUpdated), "erased-now"),
        world.record(
            world.profile("newer-here", version=6, size=1, needs=[NeedType.SHELTER]),
            "newer-here",
            minutes=7,
        ),
        world.record(world.profile("tie", version=2, size=2), "tie", minutes=8),
        world.record(
            world.profile("tie", version=2, size=3, event=HouseholdUpdated), "tie", minutes=9
        ),
        world.record(flagged(world, "flagged", version=1), "flagged", minutes=10),
        world.record(
            world.profile("merged-in-profile", version=1, status=HouseholdStatus.MERGED),
            "merged-in-profile",
            minutes=11,
        ),
        world.record(
            world.profile("merged-in-profile", version=2, size=5, event=HouseholdUpdated),
            "merged-in-profile",
            minutes=12,
        ),
        new,  # redelivered within the batch
    ]


async def read_model(engine: AsyncEngine, world: World) -> dict[str, Any]:
    """The world's rows (ids replaced by labels) and the households remembered as erased."""
    ids = list(world.ids.values())
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text("SELECT * FROM household_view WHERE household_id = ANY(:ids)"),
                {"ids": ids},
            )
        ).mappings()
        model: dict[str, Any] = {
            world.label(row["household_id"]) or "": {
                **row,
                "household_id": None,
                "merged_into": world.label(row["merged_into"]),
            }
            for row in rows
        }
        erased = await conn.scalars(
            sa.text("SELECT household_id FROM household_erased WHERE household_id = ANY(:ids)"),
            {"ids": ids},
        )
        model["erased"] = sorted(world.label(household) or "" for household in erased)
    return model


@pytest.fixture
def no_fallback(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], None]]:
    """A check that no batch fell back to the one-by-one path (which would hide a broken
    batch path behind the right result)."""
    caplog.set_level(logging.WARNING, logger="shared.consumer")

    def check() -> None:
        fallbacks = [r for r in caplog.records if "one by one" in r.getMessage()]
        assert fallbacks == []

    yield check


async def test_a_mixed_batch_leaves_the_read_model_applying_one_by_one_leaves(
    consumer: EventConsumer, engine: AsyncEngine, no_fallback: Callable[[], None]
) -> None:
    site_id = new_site()
    one_by_one, batched = World(site_id), World(site_id)
    for world in (one_by_one, batched):
        for record in history(world):
            assert await consumer.process(HOUSEHOLDS, record) == "applied"

    outcomes = [await consumer.process(HOUSEHOLDS, r) for r in mixed_batch(one_by_one)]
    assert await consumer.process_batch(HOUSEHOLDS, mixed_batch(batched)) == outcomes
    assert outcomes == ["applied"] * 16 + ["duplicate"]
    no_fallback()

    expected = await read_model(engine, one_by_one)
    assert await read_model(engine, batched) == expected
    assert {
        label: (row["version"], row["household_size"], row["status"], row["merged_into"])
        for label, row in expected.items()
        if label != "erased"
    } == {
        "new": (1, 3, "active", None),
        "twice": (3, 4, "active", None),
        "newer-here": (6, 1, "active", None),
        "survivor": (1, 3, "active", None),
        "merged": (7, 4, "merged", "survivor"),
        "tie": (2, 2, "active", None),
        "flagged": (1, 2, "active", None),
        "merged-in-profile": (2, 5, "merged", None),
    }
    assert expected["erased"] == ["erased", "erased-now"]
    assert expected["twice"]["needs"] == ["food"]
    assert expected["newer-here"]["needs"] == ["shelter"]
    assert expected["newer-here"]["updated_at"] == EVENT_TIME + timedelta(minutes=7)
    # only the vulnerability the policy names is kept, on both paths (issue #15 item 10)
    assert expected["flagged"]["vulnerabilities"] == ["pregnant_or_lactating"]
    assert "members" not in expected["flagged"]


async def test_a_batch_of_new_households_costs_two_statements(
    consumer: EventConsumer, engine: AsyncEngine, no_fallback: Callable[[], None]
) -> None:
    """The inbox claim and one upsert for the whole batch; a household repeated in the batch
    costs one more upsert (a statement changes a row once)."""
    world = World()
    records = [
        world.record(world.profile(f"h{i}", version=1, size=1 + i % 4), f"h{i}")
        for i in range(BATCH_SIZE - 1)
    ]
    records.append(world.record(world.profile("h0", version=2, event=HouseholdUpdated), "h0"))
    with sent_statements(engine) as statements:
        outcomes = await consumer.process_batch(HOUSEHOLDS, records)
    assert outcomes == ["applied"] * BATCH_SIZE
    no_fallback()
    assert len(statements) == 3, statements
    model = await read_model(engine, world)
    assert len(model) == BATCH_SIZE - 1 + 1  # the households, and the (empty) erased list
    assert model["h0"]["version"] == 2
