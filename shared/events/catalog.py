"""The topic catalog: the single source of truth for topics, their events and who uses them.

Code publishes and subscribes through it, topic creation and the AsyncAPI documents are
generated from it, and so are the Kafka manifests under deploy/.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from shared.events.audit import AuditEvent
from shared.events.distribution import (
    DistributionRecorded,
    DistributionVoided,
    ShelterAllocated,
    ShelterReleased,
    StockExpired,
    StockLow,
)
from shared.events.envelope import EventPayload
from shared.events.notifications import NotificationDead, NotificationDelivered
from shared.events.referral import (
    ConsentFollowUpRequested,
    ReferralAccepted,
    ReferralCancelled,
    ReferralCompleted,
    ReferralCreated,
    ReferralDeclined,
    ReferralEscalated,
    ReferralOverdue,
    ReferralRerouted,
    ReferralRevoked,
    ReferralSent,
    ReferralStarted,
)
from shared.events.registration import (
    DuplicateReviewRequested,
    HouseholdContact,
    HouseholdDeactivated,
    HouseholdErased,
    HouseholdRegistered,
    HouseholdsMerged,
    HouseholdUpdated,
    NeedsAssessed,
    VulnerabilitiesFlagged,
)

DLQ_SUFFIX = ".dlq"
HOUR_MS = 60 * 60 * 1000
DAY_MS = 24 * HOUR_MS
DEAD_LETTER_RETENTION_MS = 90 * DAY_MS
PERSONAL_DEAD_LETTER_RETENTION_MS = 7 * DAY_MS
ERASURE_BOUND = {
    # A tombstone (an erasure, a withdrawn contact) removes the record it supersedes within a
    # day: the active segment rolls every hour and the cleaner must compact within 24 h.
    "min.compaction.lag.ms": "0",
    "segment.ms": str(HOUR_MS),
    "max.compaction.lag.ms": str(DAY_MS),
}
Service = Literal["registration", "distribution", "referral", "notifications"]
SERVICES: tuple[Service, ...] = ("registration", "distribution", "referral", "notifications")


@dataclass(frozen=True)
class Topic:
    """A Kafka topic: its shape, its events, and the services that produce and consume it."""

    name: str
    description: str
    key: str
    partitions: int
    producers: tuple[Service, ...]
    consumers: tuple[Service, ...]
    events: tuple[type[EventPayload], ...]
    compacted: bool = False
    retention_ms: int | None = 30 * DAY_MS
    restricted: bool = False  # carries personal data: readable only by its consumers
    # Its dead letters are about households: kept briefly, compacted by household, and purged
    # by a tombstone when the household is erased (docs/data-protection.md).
    erasable_dead_letters: bool = False
    config: dict[str, str] = field(default_factory=dict)

    @cached_property
    def producer_sources(self) -> frozenset[str]:
        """The envelope sources of this topic's producers (``haven/<service>``)."""
        return frozenset(f"haven/{producer}" for producer in self.producers)

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX

    def topic_config(self) -> dict[str, str]:
        """Kafka topic-level configuration (cleanup policy, retention)."""
        settings = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if self.retention_ms is not None and not self.compacted:
            settings["retention.ms"] = str(self.retention_ms)
        if self.compacted:
            settings["min.compaction.lag.ms"] = "0"
        return settings | self.config

    def dead_letter_config(self) -> dict[str, str]:
        """Kafka configuration of this topic's dead-letter topic."""
        if not self.erasable_dead_letters:
            return {"retention.ms": str(DEAD_LETTER_RETENTION_MS)}
        return {
            "cleanup.policy": "compact,delete",
            "retention.ms": str(PERSONAL_DEAD_LETTER_RETENTION_MS),
            **ERASURE_BOUND,
        }


HOUSEHOLDS = Topic(
    name="haven.registration.households.v1",
    description="Household lifecycle, pseudonymous: no names, documents, birth dates or phones.",
    key="household_id",
    partitions=6,
    producers=("registration",),
    consumers=("distribution", "referral", "notifications"),
    events=(
        HouseholdRegistered,
        HouseholdUpdated,
        NeedsAssessed,
        VulnerabilitiesFlagged,
        HouseholdDeactivated,
        HouseholdsMerged,
        HouseholdErased,
        DuplicateReviewRequested,
    ),
    retention_ms=365 * DAY_MS,
    erasable_dead_letters=True,
)

CONTACTS = Topic(
    name="haven.registration.contacts.v1",
    description="Beneficiary contact details (phone, language, contact consent); "
    "compacted, a tombstone on withdrawal or erasure. Notifications only.",
    key="household_id",
    partitions=6,
    producers=("registration",),
    consumers=("notifications",),
    events=(HouseholdContact,),
    compacted=True,
    retention_ms=None,
    restricted=True,
    erasable_dead_letters=True,
    config={**ERASURE_BOUND, "delete.retention.ms": str(DAY_MS)},
)

DISTRIBUTIONS = Topic(
    name="haven.distribution.distributions.v1",
    description="Distributions recorded and voided, shelter allocated and released.",
    key="household_id",
    partitions=6,
    producers=("distribution",),
    consumers=("notifications",),
    events=(DistributionRecorded, DistributionVoided, ShelterAllocated, ShelterReleased),
    retention_ms=365 * DAY_MS,
)

STOCK = Topic(
    name="haven.distribution.stock.v1",
    description="Stock alerts per warehouse: below reorder level, expired and written off.",
    key="warehouse_id",
    partitions=3,
    producers=("distribution",),
    consumers=("notifications",),
    events=(StockLow, StockExpired),
)

REFERRALS = Topic(
    name="haven.referral.referrals.v1",
    description="Referral lifecycle: created, sent, accepted ... overdue, escalated.",
    key="household_id",
    partitions=6,
    producers=("referral",),
    consumers=("notifications",),
    events=(
        ReferralCreated,
        ReferralSent,
        ReferralAccepted,
        ReferralDeclined,
        ReferralRerouted,
        ReferralStarted,
        ReferralCompleted,
        ReferralCancelled,
        ReferralRevoked,
        ReferralOverdue,
        ReferralEscalated,
        ConsentFollowUpRequested,
    ),
    retention_ms=365 * DAY_MS,
)

NOTIFICATIONS = Topic(
    name="haven.notifications.deliveries.v1",
    description="Notification outcomes (delivered, dead), without recipients' details.",
    key="notification_id",
    partitions=3,
    producers=("notifications",),
    consumers=(),
    events=(NotificationDelivered, NotificationDead),
)

AUDIT = Topic(
    name="haven.audit.v1",
    description="Audit trail of every change and every read of personal data, hash-chained "
    "per service.",
    key="service",
    partitions=4,
    producers=SERVICES,
    consumers=(),
    events=(AuditEvent,),
    retention_ms=None,
    config={"retention.ms": "-1"},
)

TOPICS: tuple[Topic, ...] = (
    HOUSEHOLDS,
    CONTACTS,
    DISTRIBUTIONS,
    STOCK,
    REFERRALS,
    NOTIFICATIONS,
    AUDIT,
)


class Catalog:
    """Look-ups over a set of topics (the default catalog, or a test's own)."""

    def __init__(self, topics: Iterable[Topic]) -> None:
        self.topics = tuple(topics)
        self._by_name = {t.name: t for t in self.topics}
        self._topic_of: dict[str, Topic] = {}
        self._payloads: dict[str, type[EventPayload]] = {}
        for topic in self.topics:
            for event in topic.events:
                if event.event_type in self._payloads:
                    raise ValueError(f"event type {event.event_type} is in two topics")
                self._topic_of[event.event_type] = topic
                self._payloads[event.event_type] = event

    def topic(self, name: str) -> Topic:
        return self._by_name[name]

    def topic_for(self, event: type[EventPayload] | EventPayload) -> Topic:
        """The one topic an event type is published on."""
        try:
            return self._topic_of[event.event_type]
        except KeyError:
            raise KeyError(f"event type {event.event_type} is not in the topic catalog") from None

    def payload_model(self, event_type: str) -> type[EventPayload] | None:
        return self._payloads.get(event_type)

    def produced_by(self, service: str) -> tuple[Topic, ...]:
        return tuple(t for t in self.topics if service in t.producers)

    def consumed_by(self, service: str) -> tuple[Topic, ...]:
        return tuple(t for t in self.topics if service in t.consumers)

    def all_topic_names(self) -> list[str]:
        """Every topic to create: the topics and the dead-letter topic of each consumed one."""
        names = [t.name for t in self.topics]
        names += [t.dlq for t in self.topics if t.consumers]
        return names


CATALOG = Catalog(TOPICS)
