"""Background work of the notifications service: the sender (claim what is due, send it,
record the outcome).

Runs in every replica. Each round claims per channel in one short transaction (see
:mod:`.domain.delivery`), sends outside any transaction with bounded concurrency, then records
the round's deliveries in one transaction (each failure in its own). It wakes on ``NOTIFY
haven_notifications`` (sent when something becomes due now) or every ``sender_poll_seconds``:
not a periodic job, so a plain :data:`shared.jobs.BackgroundJob`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.channels.base import (
    ChannelError,
    ChannelTransport,
    TransientChannelError,
)
from services.notifications.channels.registry import build_transports
from services.notifications.domain import delivery
from services.notifications.domain.households import WAKE_CHANNEL
from services.notifications.settings import Channel, NotificationsSettings
from shared.clock import Clock
from shared.db import SessionFactory, Wakeup
from shared.service import ServiceRuntime
from shared.telemetry import scrubbed

log = logging.getLogger(__name__)

MAX_ERROR_BACKOFF_SECONDS = 30.0


class Sender:
    """The sender of one replica: its channels' transports, clock and jitter. Tests build one
    with their own transports, clock and seeded ``rng`` and drive it with :meth:`run_once`."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        sessions: SessionFactory,
        settings: NotificationsSettings,
        transports: dict[Channel, ChannelTransport],
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.settings = settings
        self.transports = transports
        self.clock = clock
        self.rng = rng or random.Random()
        # Per channel, so a slow channel cannot stretch another's sends past their lease.
        self._limits = {c: asyncio.Semaphore(settings.sender_concurrency) for c in transports}
        self._wakeup = Wakeup(engine, WAKE_CHANNEL)

    async def run_once(self) -> int:
        """One round over every channel; returns how many notifications it sent."""
        async with self.sessions() as session, session.begin():
            due = await delivery.channels_due(
                session=session, channels=list(self.transports), now=self.clock()
            )
        counts = await asyncio.gather(*(self._round(channel) for channel in due))
        return sum(counts)

    async def _round(self, channel: Channel) -> int:
        async with self.sessions() as session, session.begin():
            claims = await delivery.claim_due(
                session=session,
                channel=channel,
                settings=self.settings,
                now=self.clock(),
                limit=self.settings.sender_batch_size,
            )
        errors = await asyncio.gather(*(self._send(claim) for claim in claims))
        await self._record(list(zip(claims, errors, strict=True)))
        return len(claims)

    async def _send(self, claim: delivery.Claim) -> ChannelError | None:
        channel = Channel(claim.message.channel)
        async with self._limits[channel]:
            try:
                await self.transports[channel].send(claim.message)
            except ChannelError as exc:
                return exc
            except Exception as exc:  # a transport bug must not lose the notification
                # Only the type: messages of transport errors may carry addresses.
                log.warning(
                    "channel transport failed unexpectedly", extra={"error": type(exc).__name__}
                )
                return TransientChannelError(f"unexpected_error: {type(exc).__name__}")
        return None

    async def _record(self, outcomes: list[tuple[delivery.Claim, ChannelError | None]]) -> None:
        """Record a round's outcomes: its deliveries together in one transaction, each
        failure in its own. If a write fails (database gone), those leases run out and the
        messages are sent again with the same idempotency key: at-least-once across that
        window."""
        delivered = [claim for claim, error in outcomes if error is None]
        recorded: set[UUID] | None = set()
        if delivered:
            try:
                async with self.sessions() as session, session.begin():
                    recorded = await delivery.record_all_delivered(
                        session=session, claims=delivered, now=self.clock()
                    )
            except Exception as exc:
                self._unrecorded(delivered, exc)
                recorded = None
        for claim, error in outcomes:
            if error is None:
                if recorded is not None:
                    self._attempted(claim, None, claim.notification_id in recorded)
                continue
            try:
                async with self.sessions() as session, session.begin():
                    outcome = await delivery.record_failure(
                        session=session,
                        claim=claim,
                        error=error,
                        settings=self.settings,
                        now=self.clock(),
                        rng=self.rng,
                    )
            except Exception as exc:
                self._unrecorded([claim], exc)
                continue
            self._attempted(claim, error, outcome is not None)

    def _unrecorded(self, claims: list[delivery.Claim], exc: Exception) -> None:
        for claim in claims:
            log.warning(
                "could not record a notification attempt; its lease will expire",
                extra={"notification_id": str(claim.notification_id), "error": scrubbed(exc)},
            )

    def _attempted(self, claim: delivery.Claim, error: ChannelError | None, held: bool) -> None:
        log.info(
            "notification attempt",
            extra={
                "notification_id": str(claim.notification_id),
                "channel": claim.message.channel,
                "attempt": claim.attempt,
                "outcome": "delivered" if error is None else error.code,
                "lease_lost": not held,
            },
        )

    async def _gather(self, stop: asyncio.Event) -> None:
        """Let the messages of events arriving close together (one wake-up each) gather, so
        one round claims them all: a round costs three transactions however many it sends."""
        if self.settings.sender_gather_seconds:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.settings.sender_gather_seconds)

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set."""
        backoff = self.settings.sender_poll_seconds
        woken = False  # by a NOTIFY or the poll, not straight after a round that sent
        try:
            while not stop.is_set():
                try:
                    await self._wakeup.listen()
                    if woken:
                        await self._gather(stop)
                    woken = False
                    sent = await self.run_once()
                    backoff = self.settings.sender_poll_seconds
                    if sent:
                        continue  # more may be due
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("sender round failed; retrying", extra={"error": scrubbed(exc)})
                    backoff = min(backoff * 2, MAX_ERROR_BACKOFF_SECONDS)
                    await self._wakeup.sleep(stop, backoff)
                    continue
                await self._wakeup.sleep(stop, self.settings.sender_poll_seconds)
                woken = True
        finally:
            await self._wakeup.close()
            for transport in {id(t): t for t in self.transports.values()}.values():
                with contextlib.suppress(Exception):
                    await transport.aclose()


async def send_notifications(
    runtime: ServiceRuntime[NotificationsSettings], stop: asyncio.Event
) -> None:
    """The sender of this replica, with the transports the settings choose
    (``*_transport``), until the service stops."""
    settings = runtime.settings
    for warning in settings.production_warnings():
        log.error("notifications misconfigured for production", extra={"problem": warning})
    if not settings.sender_enabled:
        return
    sender = Sender(
        engine=runtime.engine,
        sessions=runtime.sessions,
        settings=settings,
        transports=build_transports(settings, clock=runtime.clock),
        clock=runtime.clock,
    )
    await sender.run(stop)
