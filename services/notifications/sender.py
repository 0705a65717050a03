"""The sender loop: claim due notifications, hand them to their channel, record the outcome.

Runs in every replica (``ServiceDefinition.background``). Each round claims per channel in
one short transaction (see :mod:`.domain.delivery`), sends outside any transaction with
bounded concurrency, and records each outcome in its own transaction. It wakes on
``NOTIFY haven_notifications`` (sent when something becomes due now) or every
``sender_poll_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.channels.base import (
    ChannelError,
    ChannelTransport,
    TransientChannelError,
)
from services.notifications.domain import delivery
from services.notifications.domain.households import WAKE_CHANNEL
from services.notifications.domain.schedule import Clock
from services.notifications.settings import Channel, NotificationsSettings
from shared.db import SessionFactory, Wakeup

log = logging.getLogger(__name__)

MAX_ERROR_BACKOFF_SECONDS = 30.0


class Sender:
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
        await asyncio.gather(*(self._deliver(claim) for claim in claims))
        return len(claims)

    async def _deliver(self, claim: delivery.Claim) -> None:
        channel = Channel(claim.message.channel)
        transport = self.transports[channel]
        error: ChannelError | None = None
        async with self._limits[channel]:
            try:
                await transport.send(claim.message)
            except ChannelError as exc:
                error = exc
            except Exception as exc:  # a transport bug must not lose the notification
                # Only the type: messages of transport errors may carry addresses.
                log.warning(
                    "channel transport failed unexpectedly", extra={"error": type(exc).__name__}
                )
                error = TransientChannelError(f"unexpected_error: {type(exc).__name__}")
        # If this write fails (database gone), the lease runs out and the message is sent
        # again with the same idempotency key: at-least-once across that window.
        try:
            recorded = await self._record(claim, error)
        except Exception as exc:
            log.warning(
                "could not record a notification attempt; its lease will expire",
                extra={"notification_id": str(claim.notification_id), "error": repr(exc)},
            )
            return
        log.info(
            "notification attempt",
            extra={
                "notification_id": str(claim.notification_id),
                "channel": claim.message.channel,
                "attempt": claim.attempt,
                "outcome": "delivered" if error is None else error.code,
                "lease_lost": not recorded,
            },
        )

    async def _record(self, claim: delivery.Claim, error: ChannelError | None) -> bool:
        async with self.sessions() as session, session.begin():
            if error is None:
                return await delivery.record_delivered(
                    session=session, claim=claim, now=self.clock()
                )
            outcome = await delivery.record_failure(
                session=session,
                claim=claim,
                error=error,
                settings=self.settings,
                now=self.clock(),
                rng=self.rng,
            )
            return outcome is not None

    async def run(self, stop: asyncio.Event) -> None:
        """Send until ``stop`` is set."""
        backoff = self.settings.sender_poll_seconds
        try:
            while not stop.is_set():
                try:
                    await self._wakeup.listen()
                    sent = await self.run_once()
                    backoff = self.settings.sender_poll_seconds
                    if sent:
                        continue  # more may be due
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("sender round failed; retrying", extra={"error": repr(exc)})
                    backoff = min(backoff * 2, MAX_ERROR_BACKOFF_SECONDS)
                    await self._wakeup.sleep(stop, backoff)
                    continue
                await self._wakeup.sleep(stop, self.settings.sender_poll_seconds)
        finally:
            await self._wakeup.close()
            for transport in {id(t): t for t in self.transports.values()}.values():
                with contextlib.suppress(Exception):
                    await transport.aclose()
