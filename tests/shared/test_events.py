"""The envelope and the catalog: what goes on the wire and where."""

from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.events import CATALOG, Envelope, MalformedEvent, decode_envelope
from shared.events.asyncapi import asyncapi_document
from shared.events.envelope import headers_to_dict
from shared.events.registration import (
    ConsentFlags,
    HouseholdContact,
    HouseholdErased,
    HouseholdRegistered,
    Location,
    MemberProfile,
)
from shared.vocabulary import AgeBand, DisplacementStatus, HouseholdStatus, Sex


def registered() -> HouseholdRegistered:
    member = MemberProfile(
        member_id=uuid4(), sex=Sex.FEMALE, age_band=AgeBand.AGE_18_59, is_head=True
    )
    return HouseholdRegistered(
        household_id=uuid4(),
        case_number="MDA-CHI-000001",
        site_id="MDA-CHI",
        location=Location(admin1="MD01", admin2="MD0101"),
        displacement_status=DisplacementStatus.REFUGEE,
        status=HouseholdStatus.ACTIVE,
        household_size=1,
        members=(member,),
        preferred_language="uk",
        consent=ConsentFlags(data_processing=True, referral_sharing=True, contact=False),
        version=1,
    )


def test_envelope_round_trips_through_kafka_binary_binding() -> None:
    envelope = Envelope.wrap(
        registered(), source="haven/registration", correlation_id="c-1", actor="user-7"
    )
    headers = headers_to_dict(envelope.kafka_headers())
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_type"] == "HouseholdRegistered"
    assert headers["ce_dataschema"] == "urn:haven:event:HouseholdRegistered:v1"
    assert headers["ce_correlationid"] == "c-1"
    assert headers["correlation_id"] == "c-1"  # read by FastStream
    assert headers["content-type"] == "application/json"

    decoded = decode_envelope(headers, envelope.kafka_value(), HouseholdRegistered)
    assert decoded == envelope


def test_event_ids_are_uuid7_and_time_ordered() -> None:
    ids = [Envelope.wrap(registered(), source="s").id for _ in range(50)]
    assert all(isinstance(i, UUID) and i.version == 7 for i in ids)
    assert ids == sorted(ids)


def test_decode_rejects_missing_specversion_and_bad_payload_without_echoing_values() -> None:
    envelope = Envelope.wrap(registered(), source="s")
    headers = headers_to_dict(envelope.kafka_headers())
    with pytest.raises(MalformedEvent, match="specversion"):
        decode_envelope(
            {k: v for k, v in headers.items() if k != "ce_specversion"}, b"{}", HouseholdRegistered
        )
    with pytest.raises(MalformedEvent) as info:
        decode_envelope(headers, b'{"household_id": "secret-value-123"}', HouseholdRegistered)
    assert "secret-value-123" not in str(info.value)
    assert "household_id" in str(info.value)
    with pytest.raises(MalformedEvent):
        decode_envelope(headers, b"not json", HouseholdRegistered)


@given(st.binary(max_size=200))
def test_decode_never_raises_anything_but_malformed(garbage: bytes) -> None:
    headers = headers_to_dict(Envelope.wrap(registered(), source="s").kafka_headers())
    with pytest.raises(MalformedEvent):
        decode_envelope(headers, garbage, HouseholdErased)


def test_catalog_routes_each_event_type_to_exactly_one_topic() -> None:
    assert CATALOG.topic_for(HouseholdRegistered).name == "haven.registration.households.v1"
    contacts = CATALOG.topic_for(HouseholdContact)
    assert contacts.compacted and contacts.restricted
    assert contacts.consumers == ("notifications",)
    assert contacts.topic_config()["cleanup.policy"] == "compact"
    names = CATALOG.all_topic_names()
    assert "haven.registration.households.v1.dlq" in names
    assert len(names) == len(set(names))


def test_payloads_of_general_topics_carry_no_personal_fields() -> None:
    personal = {
        "given_name",
        "family_name",
        "name",
        "phone",
        "date_of_birth",
        "documents",
        "number",
    }
    for topic in CATALOG.topics:
        if topic.restricted:
            continue
        for event in topic.events:
            fields = set(event.model_json_schema().get("properties", {}))
            for definition in event.model_json_schema().get("$defs", {}).values():
                fields |= set(definition.get("properties", {}))
            assert not fields & personal, (event.event_type, fields & personal)


def test_asyncapi_document_lists_what_a_service_sends_and_receives() -> None:
    doc = asyncapi_document("registration", version="1")
    assert doc["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in doc["channels"].values()}
    assert "haven.registration.households.v1" in addresses
    assert "haven.registration.contacts.v1" in addresses
    assert any(op["action"] == "send" for op in doc["operations"].values())
    assert "HouseholdRegistered" in doc["components"]["schemas"]
    notifications = asyncapi_document("notifications", version="1")
    sent = {
        o["channel"]["$ref"] for o in notifications["operations"].values() if o["action"] == "send"
    }
    # notifications sends only its audit trail and delivery outcomes, never beneficiary data
    assert sent == {"#/channels/haven_audit_v1", "#/channels/haven_notifications_deliveries_v1"}
