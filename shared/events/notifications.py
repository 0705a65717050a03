"""Events of the notifications service: delivery outcomes, without recipients' details."""

from uuid import UUID

from shared.events.envelope import EventPayload


class NotificationDelivered(EventPayload):
    """A notification was accepted by its channel (once per notification)."""

    notification_id: UUID
    event_id: UUID
    source_event_type: str
    channel: str
    household_id: UUID | None = None


class NotificationDead(EventPayload):
    """A notification was given up on; an admin may retry it through the API."""

    notification_id: UUID
    event_id: UUID
    source_event_type: str
    channel: str
    attempts: int
    household_id: UUID | None = None
    # A short code such as "http_400", "smtp_550" or "address_refused"; never an address.
    error_code: str | None = None
