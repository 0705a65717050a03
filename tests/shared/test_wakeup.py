"""Polling loops wake on PostgreSQL NOTIFY, including one sent while they were busy."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from shared.db import Wakeup, create_engine
from tests.support import unique

LONG_POLL = 60.0  # far longer than any wait below: returning at all proves the wake-up


async def _notify(engine: Any, channel: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.select(sa.func.pg_notify(channel, "")))


async def test_a_notification_sent_during_the_round_wakes_the_next_sleep(infra: Any) -> None:
    engine = create_engine(await infra.postgres_url_async(unique("wakeup")))
    channel = unique("wake")
    wakeup = Wakeup(engine, channel)
    stop = asyncio.Event()
    try:
        await wakeup.listen()
        await _notify(engine, channel)  # the loop is "busy" in its round: not sleeping yet
        await asyncio.sleep(0.2)  # let the notification arrive before the loop sleeps
        await asyncio.wait_for(wakeup.sleep(stop, LONG_POLL), timeout=10)

        # consumed: the next sleep waits for a new notification
        sleeping = asyncio.create_task(wakeup.sleep(stop, LONG_POLL))
        await asyncio.sleep(0.5)
        assert not sleeping.done()
        await _notify(engine, channel)
        await asyncio.wait_for(sleeping, timeout=10)
    finally:
        await wakeup.close()
        await engine.dispose()
