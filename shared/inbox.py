"""The idempotent inbox: a consumer records each event id in the transaction of its effect."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

metadata = sa.MetaData()
inbox_table = sa.Table(
    "inbox",
    metadata,
    sa.Column("consumer", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)


async def claim(session: AsyncSession, *, consumer: str, event_id: UUID, topic: str) -> bool:
    """Record the event as processed; False when it already was (a redelivery).

    Call first in the effect's transaction: a concurrent redelivery in another replica blocks
    on the same key until this transaction ends, then sees the row and is skipped.
    """
    result = await session.exec(
        _CLAIM, params={"consumer": consumer, "event_id": event_id, "topic": topic}
    )
    return result.first() is not None


async def claim_many(
    session: AsyncSession, *, consumer: str, event_ids: list[UUID], topic: str
) -> set[UUID]:
    """Record a batch of events as processed in one statement; return the ids that were new.

    The same locking as :func:`claim`: call first in the batch's transaction.
    """
    if not event_ids:
        return set()
    result = await session.exec(
        _CLAIM_MANY, params={"consumer": consumer, "event_ids": event_ids, "topic": topic}
    )
    return set(result.scalars().all())


def _claim_many() -> sa.Insert:
    """One statement for any batch size (the ids go as one array), so SQLAlchemy compiles it
    once: a multi-row ``VALUES`` list was compiled anew for every batch, a large share of a
    consumer's CPU."""
    rows = sa.select(
        sa.bindparam("consumer", type_=sa.Text),
        sa.func.unnest(sa.bindparam("event_ids", type_=postgresql.ARRAY(sa.Uuid))),
        sa.bindparam("topic", type_=sa.Text),
    )
    return (
        insert(inbox_table)
        .from_select(["consumer", "event_id", "topic"], rows)
        .on_conflict_do_nothing()
        .returning(inbox_table.c.event_id)
    )


_CLAIM_MANY = _claim_many()
_CLAIM = (
    insert(inbox_table)
    .values(
        consumer=sa.bindparam("consumer", type_=sa.Text),
        event_id=sa.bindparam("event_id", type_=sa.Uuid),
        topic=sa.bindparam("topic", type_=sa.Text),
    )
    .on_conflict_do_nothing()
    .returning(inbox_table.c.event_id)
)
"""Built once (bound per call), like :data:`_CLAIM_MANY`."""


async def prune(session: AsyncSession, *, older_than_days: int) -> int:
    """Forget ids older than the topics' retention: those events cannot be redelivered."""
    result = await session.exec(
        sa.delete(inbox_table).where(
            inbox_table.c.processed_at
            < sa.func.now() - sa.text(f"interval '{int(older_than_days)} days'")
        )
    )
    return int(result.rowcount or 0)
