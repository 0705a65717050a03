"""The notifications service's errors, as problem+json values."""

from shared.problems import Conflict, Forbidden, NotFound, NotInYourSites, UnprocessableContent


class NotificationNotFound(NotFound):
    type_slug, title = "notification-not-found", "Notification not found"


class NotificationOutOfScope(NotificationNotFound, NotInYourSites):
    """A notification of a site outside the caller's token: 404, audited as refused."""


class NotRetryable(Conflict):
    type_slug, title = "notification-not-retryable", "This notification cannot be retried"


class UnknownMessageType(NotFound):
    type_slug, title = "unknown-message-type", "No message is sent for this event type"


class TemplateNotFound(NotFound):
    type_slug, title = "template-not-found", "Template not found"


class TemplateInvalid(UnprocessableContent):
    type_slug, title = "template-invalid", "The template cannot be used"


class StaffRecipientExists(Conflict):
    type_slug, title = "staff-recipient-exists", "This staff recipient is already listed"


class StaffRecipientNotFound(NotFound):
    type_slug, title = "staff-recipient-not-found", "Staff recipient not found"


class InvalidAddress(UnprocessableContent):
    type_slug, title = "invalid-address", "The address does not suit the channel"


class StaffRecipientOutOfScope(StaffRecipientNotFound, NotInYourSites):
    """A directory entry of a site outside the caller's token: 404, audited as refused."""


class SiteOutOfScope(NotInYourSites):
    """A manager adding an entry for a site (or for every site, "*") their token lacks."""

    type_slug, title = "site-not-found", "Site not found"

    def __init__(self, site_id: str) -> None:
        super().__init__(f"Site {site_id} not found among yours.", site_id=site_id)


class ProviderContactsForAdmins(Forbidden):
    """Provider contacts are told about their referrals at every site: admins list them."""

    type_slug, title = "provider-contacts-for-admins", "Only admins list provider contacts"
