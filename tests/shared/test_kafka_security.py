"""Kafka listener security from settings: what aiokafka and FastStream are given."""

import pytest
from faststream.security import SASLScram512
from pydantic import ValidationError

from shared.kafka import broker_security, connection_options
from shared.settings import CommonSettings


def test_plaintext_adds_nothing() -> None:
    assert connection_options(CommonSettings()) == {}
    assert broker_security(CommonSettings()) is None


def test_sasl_ssl_scram_is_passed_to_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAVEN_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("HAVEN_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("HAVEN_KAFKA_SASL_USERNAME", "registration")
    monkeypatch.setenv("HAVEN_KAFKA_SASL_PASSWORD", "s3cret")
    settings = CommonSettings()
    options = connection_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "registration"
    assert options["sasl_plain_password"] == "s3cret"
    assert options["ssl_context"] is not None
    security = broker_security(settings)
    assert isinstance(security, SASLScram512)
    assert security.use_ssl
    assert "s3cret" not in repr(settings)  # the password is a secret in settings


def test_sasl_without_credentials_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAVEN_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ValidationError, match="HAVEN_KAFKA_SASL_MECHANISM"):
        CommonSettings()
