"""Kafka clients configured the way Haven needs them: idempotent producers, catalog topics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from shared.events.catalog import Catalog
from shared.settings import CommonSettings

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_BYTES = 256 * 1024
"""Largest record batch a producer builds: the outbox relay sends a partition's share of a
round (500 rows of ~1 KB) as one batch, well under the broker's 1 MB message.max.bytes."""


def connection_options(settings: CommonSettings | None) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured listener: TLS and SASL, if any."""
    if settings is None or settings.kafka_security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    if settings.kafka_security_protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # checked by CommonSettings
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    return options


def broker_security(settings: CommonSettings | None) -> BaseSecurity | None:
    """The same listener settings in FastStream's terms, for a KafkaBroker."""
    options = connection_options(settings)
    if not options:
        return None
    ssl_context = options.get("ssl_context")
    mechanism = options.get("sasl_mechanism")
    if mechanism is None:
        return BaseSecurity(ssl_context=ssl_context)
    security_class = {
        "PLAIN": SASLPlaintext,
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
    }[mechanism]
    return security_class(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        ssl_context=ssl_context,
        use_ssl=ssl_context is not None,
    )


def create_producer(
    bootstrap: str,
    *,
    client_id: str,
    linger_ms: int = 5,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    settings: CommonSettings | None = None,
) -> AIOKafkaProducer:
    """An idempotent producer (``acks=all``): retries never duplicate or reorder a partition."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        **connection_options(settings),
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=max_batch_bytes,
        request_timeout_ms=15_000,
        retry_backoff_ms=200,
    )


def new_topics(catalog: Catalog, replication_factor: int) -> list[NewTopic]:
    """Every catalog topic and dead-letter topic, as admin-client requests."""
    requests: list[NewTopic] = []
    for topic in catalog.topics:
        requests.append(
            _new_topic(topic.name, topic.partitions, replication_factor, topic.topic_config())
        )
        if topic.consumers:
            requests.append(
                _new_topic(topic.dlq, 1, replication_factor, topic.dead_letter_config())
            )
    return requests


def _new_topic(name: str, partitions: int, replication: int, config: dict[str, str]) -> NewTopic:
    return NewTopic(
        name=name, num_partitions=partitions, replication_factor=replication, topic_configs=config
    )


async def ensure_topics(
    bootstrap: str,
    catalog: Catalog,
    *,
    replication_factor: int = 1,
    settings: CommonSettings | None = None,
) -> list[str]:
    """Create the catalog's topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="haven-admin", **connection_options(settings)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in new_topics(catalog, replication_factor) if t.name not in existing]
        if missing:
            # another process may have created them meanwhile
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("created topics", extra={"topics": [t.name for t in missing]})
            await wait_for_topics(admin, [t.name for t in missing])
        return [t.name for t in missing]
    finally:
        await admin.close()


async def wait_for_topics(
    admin: AIOKafkaAdminClient, names: list[str], *, timeout_s: float = 30.0
) -> None:
    """Wait until the broker's metadata lists every topic in ``names``.

    A KRaft broker answers CreateTopics before its own metadata cache has the new topics,
    so a listing (or a consumer's first fetch) right after creation can miss them.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        missing = set(names) - set(await admin.list_topics())
        if not missing:
            return
        if asyncio.get_running_loop().time() >= deadline:
            raise TimeoutError(f"topics not visible after {timeout_s:.0f} s: {sorted(missing)}")
        await asyncio.sleep(0.1)


class LazyProducer:
    """One producer per process, started on first use, so a service starts while Kafka is down."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        settings: CommonSettings | None = None,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.settings = settings
        self.max_batch_bytes = max_batch_bytes
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = create_producer(
                    self.bootstrap,
                    client_id=self.client_id,
                    max_batch_bytes=self.max_batch_bytes,
                    settings=self.settings,
                )
                await producer.start()  # raises while Kafka is unreachable; callers retry
                self._producer = producer
            return self._producer

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None
