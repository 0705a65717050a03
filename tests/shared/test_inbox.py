"""The inbox drops redeliveries and forgets only ids older than its retention."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from shared import inbox
from shared.db import create_engine, session_factory
from tests.support import migrated_database


async def test_claim_once_then_prune_only_what_is_older_than_retention(infra) -> None:
    engine = create_engine(await migrated_database(infra, "distribution"))
    sessions = session_factory(engine)
    old, recent = uuid.uuid4(), uuid.uuid4()
    async with sessions() as session, session.begin():
        assert await inbox.claim(session, consumer="c", event_id=old, topic="t")
        assert await inbox.claim(session, consumer="c", event_id=recent, topic="t")
        assert not await inbox.claim(session, consumer="c", event_id=old, topic="t")
        assert await inbox.claim(session, consumer="other", event_id=old, topic="t")
        await session.exec(
            sa.update(inbox.inbox_table)
            .where(inbox.inbox_table.c.event_id == old)
            .values(processed_at=sa.func.now() - sa.text("interval '401 days'"))
        )
    async with sessions() as session, session.begin():
        assert await inbox.prune(session, older_than_days=400) == 2
    async with engine.connect() as conn:
        left = (await conn.execute(sa.select(inbox.inbox_table.c.event_id))).scalars().all()
    assert left == [recent]
    await engine.dispose()
