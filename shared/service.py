"""One service process: HTTP app, event subscribers and outbox relay in one lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar

import sqlalchemy as sa
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY, start_http_server
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import audit, inbox
from shared.auth import (
    Authenticator,
    AuthSettings,
    InsecureConfiguration,
    refuse_development_secret,
)
from shared.clock import Clock, system_clock
from shared.consumer import EventConsumer, LagWatcher, RetryPolicy
from shared.db import create_engine, migrate, session_factory
from shared.events.asyncapi import asyncapi_document
from shared.http import HttpSettings, create_app
from shared.jobs import BackgroundJob, periodic
from shared.kafka import LazyProducer, broker_security
from shared.outbox import OutboxRelay
from shared.problems import NotInYourSites, Problem
from shared.settings import ServiceSettings, load_settings
from shared.telemetry import TelemetrySettings, configure_logging, setup_tracing

log = logging.getLogger(__name__)

VERSION = "0.1.0"
NOT_FOUND = 404
KAFKA_RETRY_SECONDS = 2.0


S = TypeVar("S", bound=ServiceSettings)


@dataclass
class ServiceDefinition(Generic[S]):
    """What makes one service: its typed settings, routers, event handlers, background jobs
    and migrations. Every service's ``service.py`` builds one of these and nothing else."""

    name: str
    title: str
    settings_class: type[S]
    migrations: Path
    routers: Sequence[APIRouter] = ()
    # Subscribes the service's handlers; they read settings and clock from the runtime.
    handlers: Callable[[EventConsumer, ServiceRuntime[S]], None] | None = None
    jobs: Sequence[BackgroundJob] = field(default=())

    def load_settings(self) -> S:
        """This service's settings from the environment (``HAVEN_<NAME>_*``)."""
        return load_settings(self.name, self.settings_class)


class ServiceRuntime(Generic[S]):
    """The long-lived resources of a running service and their start/stop order; it carries
    the service's typed settings and the clock every part of the service reads."""

    def __init__(
        self, definition: ServiceDefinition[S], settings: S, clock: Clock = system_clock
    ) -> None:
        self.definition = definition
        self.settings = settings
        self.clock = clock
        self.database_url = settings.resolved_database_url()
        self.engine = create_engine(self.database_url, pool_size=settings.db_pool_size)
        self.sessions = session_factory(self.engine)
        bootstrap = settings.common.kafka_bootstrap
        self.producer = LazyProducer(
            bootstrap, client_id=f"haven-{definition.name}", settings=settings.common
        )
        self.consumer = EventConsumer(
            service=definition.name,
            sessions=self.sessions,
            dead_letters=self.producer,
            retry=RetryPolicy(
                max_attempts=settings.consumer_max_attempts,
                initial_backoff_seconds=settings.consumer_backoff_initial_seconds,
                max_backoff_seconds=settings.consumer_backoff_max_seconds,
            ),
            group_id=settings.consumer_group,
            batch_linger_ms=settings.consumer_batch_linger_ms,
        )
        if definition.handlers:
            definition.handlers(self.consumer, self)
        self.broker = KafkaBroker(
            bootstrap,
            client_id=f"haven-{definition.name}",
            consumer_only=True,
            logger=log,
            security=broker_security(settings.common),
            middlewares=[
                KafkaPrometheusMiddleware(registry=REGISTRY, app_name=f"haven-{definition.name}")
            ],
        )
        self.consumer.subscribe(self.broker)
        self.lag_watcher = LagWatcher(
            bootstrap,
            service=definition.name,
            group_id=self.consumer.group_id,
            topics=[topic.name for topic in self.consumer.topics()],
            settings=settings.common,
        )
        self.relay = OutboxRelay(
            self.engine,
            self.producer,
            service=definition.name,
            batch_size=settings.relay_batch_size,
            poll_seconds=settings.relay_poll_seconds,
            audit_key=settings.chain_key(definition.name),
        )
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.broker_started = asyncio.Event()

    async def start(self) -> None:
        if self.settings.migrate_on_start:
            await migrate(self.database_url, self.definition.migrations)
        self._stop.clear()
        if self.settings.relay_enabled:
            self._tasks.append(asyncio.create_task(self.relay.run(self._stop), name="relay"))
        if self.settings.consumers_enabled and self.consumer.topics():
            self._tasks.append(asyncio.create_task(self._start_broker(), name="broker"))
        if self.consumer.topics():
            prune = periodic(
                lambda settings: settings.inbox_prune_interval_seconds,
                _prune_inbox,
                name="inbox-pruner",
            )
            self._tasks.append(asyncio.create_task(prune(self, self._stop), name="inbox-pruner"))
            self._tasks.append(
                asyncio.create_task(
                    self.lag_watcher.run(self._stop, self.settings.consumer_lag_refresh_seconds),
                    name="lag-watcher",
                )
            )
        for job in self.definition.jobs:
            name = getattr(job, "__name__", type(job).__name__)
            self._tasks.append(asyncio.create_task(job(self, self._stop), name=name))

    async def _start_broker(self) -> None:
        """Start consuming; while Kafka is unreachable keep trying (HTTP writes go on)."""
        while not self._stop.is_set():
            try:
                await self.broker.start()
                self.broker_started.set()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("Kafka unavailable for consumers; retrying", extra={"error": repr(exc)})
                with contextlib.suppress(Exception):
                    await self.broker.stop()
                await asyncio.sleep(KAFKA_RETRY_SECONDS)

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            if task.get_name() == "broker":
                task.cancel()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), timeout=10)
        with contextlib.suppress(Exception):
            await self.broker.stop()
        await self.producer.stop()
        await self.engine.dispose()

    async def audit_refusal(self, request: Request, problem: Problem) -> None:
        """Audit a refused request (401, 403, or 404 on another site's data) on its own."""
        route = request.scope.get("route")
        async with self.sessions() as session, session.begin():
            await audit.record(
                session,
                service=self.definition.name,
                principal=getattr(request.state, "principal", None),
                action=f"{request.method} {getattr(route, 'path', 'unmatched')}",
                resource_type="request",
                resource_id=None,
                outcome=audit.Outcome.NOT_FOUND
                if problem.status == NOT_FOUND
                else audit.Outcome.DENIED,
                reason=problem.type_slug,
            )

    async def check_database(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def check_kafka(self) -> None:
        producer = await self.producer.get()
        await producer.client.fetch_all_metadata()


async def _prune_inbox(runtime: ServiceRuntime[Any]) -> None:
    """Forget processed event ids older than any event that can still be redelivered."""
    async with runtime.sessions() as session, session.begin():
        forgotten = await inbox.prune(
            session, older_than_days=runtime.settings.inbox_retention_days
        )
    if forgotten:
        log.info("pruned the inbox", extra={"forgotten": forgotten})


def build_app(
    definition: ServiceDefinition[S], settings: S | None = None, *, clock: Clock = system_clock
) -> FastAPI:
    """The service's FastAPI app; its lifespan runs the whole runtime. Settings come from the
    environment unless given; tests pass their own settings and clock."""
    telemetry = TelemetrySettings()
    configure_logging(definition.name, telemetry)
    setup_tracing(definition.name, telemetry)
    settings = settings or definition.load_settings()
    auth_settings = AuthSettings()
    refuse_development_secret(auth_settings, settings.common.environment)
    if settings.common.environment == "production" and settings.audit_chain_key is None:
        raise InsecureConfiguration(
            f"HAVEN_ENVIRONMENT=production without HAVEN_{definition.name.upper()}_AUDIT_CHAIN_KEY:"
            " the audit chain would be keyed with the development key, which anyone can forge."
        )
    runtime = ServiceRuntime(definition, settings, clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = create_app(
        service=definition.name,
        title=definition.title,
        version=VERSION,
        routers=definition.routers,
        lifespan=lifespan,
        readiness_checks={
            "postgresql": runtime.check_database,
            "kafka": runtime.check_kafka,
        },
        asyncapi_document=lambda: asyncapi_document(definition.name, version=VERSION),
        authenticator=Authenticator(auth_settings, on_refused=runtime.audit_refusal),
    )
    app.state.runtime = runtime

    async def refused_outside_sites(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotInYourSites)
        try:
            await runtime.audit_refusal(request, exc)
        except Exception:
            log.exception("could not audit a refused request")
        return exc.to_response(instance=request.url.path)

    app.add_exception_handler(NotInYourSites, refused_outside_sites)
    return app


def run(definition: ServiceDefinition[Any]) -> None:
    """Process entry point (every service's ``__main__``): serve until SIGINT/SIGTERM.
    A configuration unfit for production stops the process with its reason (exit code 2)."""
    try:
        app = build_app(definition)
    except InsecureConfiguration as refused:
        log.critical("refusing to start: %s", refused)
        raise SystemExit(2) from refused
    serve(app)


def serve(app: FastAPI) -> None:
    """Serve a service's app (from :func:`build_app`) on its configured host and port."""
    settings = runtime_of_app(app).settings
    http = HttpSettings()
    if http.metrics_port is not None:  # /metrics only on the internal port (shared/http.py)
        start_http_server(http.metrics_port, addr=http.metrics_host, registry=REGISTRY)
    # Everything loaded so far lives as long as the process: frozen, full collections no
    # longer walk it (docs/architecture.md, "Memory: the garbage collector").
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def runtime_of_app(app: FastAPI) -> ServiceRuntime[Any]:
    runtime: ServiceRuntime[Any] = app.state.runtime
    return runtime


def runtime_of(request: Request) -> ServiceRuntime[Any]:
    runtime: ServiceRuntime[Any] = request.app.state.runtime
    return runtime


async def current_runtime(request: Request) -> ServiceRuntime[Any]:
    """``runtime_of`` as a dependency (an ``async def``: FastAPI runs a plain ``def``
    dependency in a worker thread, a thread hop on every request)."""
    return runtime_of(request)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session per request; routes open their own transaction (``async with s.begin()``)."""
    async with runtime_of(request).sessions() as session:
        yield session


async def current_settings(request: Request) -> Any:
    """The service's typed settings; a service's ``settings.py`` names its own ``SettingsDep``
    over this function, and tests replace it with ``app.dependency_overrides``."""
    return runtime_of(request).settings


async def current_clock(request: Request) -> Clock:
    """The runtime's clock; tests replace it with ``app.dependency_overrides``."""
    return runtime_of(request).clock


SessionDep = Annotated[AsyncSession, Depends(get_session)]
RuntimeDep = Annotated[ServiceRuntime[Any], Depends(current_runtime)]
ClockDep = Annotated[Clock, Depends(current_clock)]
