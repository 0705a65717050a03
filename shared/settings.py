"""Configuration through environment variables, with documented defaults.

Common settings use the ``HAVEN_`` prefix (``HAVEN_KAFKA_BOOTSTRAP``) plus the plain
``DATABASE_URL``; each service has its own prefix (``HAVEN_REGISTRATION_HTTP_PORT``).
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from shared.audit_chain import development_key

DEFAULT_PORTS: dict[str, int] = {
    "registration": 8001,
    "distribution": 8002,
    "referral": 8003,
    "notifications": 8004,
}
DEFAULT_DATABASE_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:54320/postgres"


class CommonSettings(BaseSettings):
    """Settings every service shares."""

    model_config = SettingsConfigDict(env_prefix="HAVEN_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    kafka_bootstrap: str = "127.0.0.1:9092"
    # Kafka client security (a cluster's listeners; the local broker is PLAINTEXT on loopback).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    # A server URL; each service uses its own database ``haven_<service>`` on it.
    database_url: str = Field(DEFAULT_DATABASE_SERVER, validation_alias="DATABASE_URL")
    topic_replication_factor: int = 1

    @model_validator(mode="after")
    def _sasl_complete(self) -> CommonSettings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "HAVEN_KAFKA_SECURITY_PROTOCOL=SASL_* needs HAVEN_KAFKA_SASL_MECHANISM, "
                "HAVEN_KAFKA_SASL_USERNAME and HAVEN_KAFKA_SASL_PASSWORD"
            )
        return self


class ServiceSettings(BaseSettings):
    """One service's settings; ``HAVEN_<SERVICE>_`` prefix (set by :func:`load_settings`)."""

    model_config = SettingsConfigDict(extra="ignore")

    service: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 0
    # Overrides the common DATABASE_URL for this service only (used verbatim).
    database_url: str | None = None
    db_pool_size: int = 10
    migrate_on_start: bool = True
    relay_enabled: bool = True
    relay_batch_size: int = 500
    relay_poll_seconds: float = 1.0
    consumers_enabled: bool = True
    # The Kafka consumer group; ``haven-<service>`` unless set (tests run several at once).
    consumer_group: str | None = None
    consumer_max_attempts: int = 5
    consumer_backoff_initial_seconds: float = 0.2
    consumer_backoff_max_seconds: float = 30.0
    # A subscriber woken for a part batch waits this long for the records right behind
    # (a transaction and an offset commit per batch, whatever its size); 0 never waits.
    consumer_batch_linger_ms: int = Field(20, ge=0)
    # Event ids are remembered longer than any topic keeps events (365 days), so no event
    # that can still be redelivered is forgotten.
    inbox_retention_days: int = 400
    inbox_prune_interval_seconds: float = 6 * 3600
    # How often gauges derived from the database (stock, beds, open referrals...) are re-read.
    metrics_refresh_seconds: float = 15.0
    # How often the consumer group's lag is measured from the broker (besides after each batch).
    consumer_lag_refresh_seconds: float = 15.0

    # This service's audit chain key (HMAC): from a secret in production, where the
    # development key derived from the service name is refused.
    audit_chain_key: SecretStr | None = None

    common: CommonSettings = Field(default_factory=CommonSettings, exclude=True)

    def chain_key(self, service: str) -> bytes:
        """The key of ``service``'s audit chain (its development key when none is set)."""
        if self.audit_chain_key is None:
            return development_key(service)
        return self.audit_chain_key.get_secret_value().encode()

    def resolved_database_url(self) -> str:
        """This service's own database: the override, or ``haven_<service>`` on the server."""
        if self.database_url:
            return self.database_url
        return (
            make_url(self.common.database_url)
            .set(database=f"haven_{self.service}")
            .render_as_string(hide_password=False)
        )


S = TypeVar("S", bound="ServiceSettings")


def load_settings(service: str, settings_class: type[S]) -> S:
    """Read a service's settings from the environment with its own prefix."""
    prefix = f"HAVEN_{service.upper()}_"
    settings = settings_class(_env_prefix=prefix)
    settings.service = service
    if not settings.http_port:
        settings.http_port = DEFAULT_PORTS.get(service, 8000)
    return settings
