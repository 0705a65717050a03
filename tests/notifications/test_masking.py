"""Recipients as the API shows them."""

from services.notifications.domain.masking import mask
from services.notifications.settings import Channel


def test_phone_keeps_country_code_and_last_two_digits() -> None:
    assert mask(Channel.SMS, "+37360123412") == "+3736*****12"
    assert mask(Channel.SMS, "+380671234567") == "+3806******67"


def test_email_keeps_first_letter_and_domain() -> None:
    assert mask(Channel.EMAIL, "ana.popescu@example.org") == "a***@example.org"


def test_webhook_keeps_scheme_and_host_only() -> None:
    masked = mask(Channel.WEBHOOK, "https://hooks.example.org/T0/B1/secret-token?x=1")
    assert masked == "https://hooks.example.org/…"
    assert "secret" not in masked
