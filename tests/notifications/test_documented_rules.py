"""The notifications document says what the server refuses (issue 15, item 14: found by the
contract fuzzer): template text and staff addresses carry the patterns the validators check,
so a value matches the document exactly when the server takes it."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from services.notifications.domain import recipients
from services.notifications.domain.errors import InvalidAddress
from services.notifications.models import StaffRecipientCreate, TemplateUpdate
from services.notifications.settings import Channel

SCHEMA = TemplateUpdate.model_json_schema()["properties"]
STAFF = StaffRecipientCreate.model_json_schema()


def _documented(pattern: str, value: str) -> bool:
    return re.search(pattern, value) is not None


def _accepted(**fields: str) -> bool:
    try:
        TemplateUpdate.model_validate(fields)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    "text",
    ["Hello {{ case_number }}", "a\nb", "a\r\nb", " \t padded \n", "\u0095", "a\rb", "a\tb",
     "\x1cx", " ", "\u3000x\u3000", "x\x00"],
)  # fmt: skip
def test_template_text_matches_its_pattern_exactly_when_accepted(text: str) -> None:
    body = SCHEMA["body"]["pattern"]
    subject = SCHEMA["subject"]["anyOf"][0]["pattern"]
    assert _documented(body, text) == _accepted(body=text)
    assert _documented(subject, text) == _accepted(body="x", subject=text)


def _address_pattern(channel: str) -> str:
    rules = [
        r for r in STAFF["allOf"] if r["if"]["properties"].get("channel") == {"const": channel}
    ]
    assert len(rules) == 1
    pattern: str = rules[0]["then"]["properties"]["address"]["pattern"]
    return pattern


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        (Channel.EMAIL, "ana@example.org"),
        (Channel.EMAIL, "not-an-address"),
        (Channel.EMAIL, "a@b@c.d"),
        (Channel.WEBHOOK, "https://hooks.example.org/services/T0?token=x"),
        (Channel.WEBHOOK, "http://127.0.0.1:8080/haven"),
        (Channel.WEBHOOK, "ftp://example.org/x"),
        (Channel.WEBHOOK, "https://user:pw@example.org/x"),
        (Channel.WEBHOOK, "https://[::1]/x"),
    ],
)
def test_a_staff_address_matches_the_documented_pattern_exactly_when_accepted(
    channel: Channel, address: str
) -> None:
    try:
        recipients.check_address(channel, address)
        accepted = True
    except InvalidAddress:
        accepted = False
    assert _documented(_address_pattern(channel), address) == accepted


def test_the_document_says_staff_get_no_sms_and_provider_contacts_name_their_provider() -> None:
    assert STAFF["properties"]["channel"]["enum"] == ["email", "webhook"]
    with pytest.raises(InvalidAddress):
        recipients.check_address(Channel.SMS, "+37360000000")
    provider = next(r for r in STAFF["allOf"] if "role" in r["if"]["properties"])
    assert provider["if"]["properties"]["role"] == {"const": "provider_contact"}
    assert provider["then"]["required"] == ["provider_id"]
