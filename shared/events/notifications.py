"""Events of the notifications service: delivery outcomes, without recipients' details."""

from uuid import UUID

from shared.events.envelope import EventPayload


class NotificationDelivered(EventPayload):
    notification_id: UUID
    event_id: UUID
    source_event_type: str
    channel: str
    household_id: UUID | None = None


class NotificationDead(EventPayload):
    notification_id: UUID
    event_id: UUID
    source_event_type: str
    channel: str
    attempts: int
    household_id: UUID | None = None
