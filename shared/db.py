"""Database access: async engine, sessions, creating a service's database, migrations."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Result, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.problems import ServiceUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

SessionFactory = async_sessionmaker[AsyncSession]


IDLE_PING_SECONDS = 10.0
"""A pooled connection idle longer than this is pinged before use (see :func:`create_engine`)."""


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An asyncpg engine that picks up a restarted PostgreSQL again.

    At most ``2 * pool_size`` connections, opened as needed and kept (an overflow connection
    closed after each burst would be reopened at the next: a new TCP connection and an SSL
    negotiation per request under load). A connection that sat idle for more than
    ``IDLE_PING_SECONDS`` is pinged before use and replaced if dead; one in steady use is not
    (SQLAlchemy's pool_pre_ping costs three round trips, BEGIN, a ping and ROLLBACK, on every
    checkout). A connection that dies while in use fails that one transaction and the pool
    drops every connection of that generation.
    """
    engine = create_async_engine(
        url,
        pool_size=2 * pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        pool_recycle=1800,
        hide_parameters=True,  # statement parameters are personal data: never in error texts
    )
    event.listen(engine.sync_engine, "checkin", _stamp_checkin)
    event.listen(engine.sync_engine, "checkout", _ping_if_idle)
    return engine


def _stamp_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["checked_in"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
    checked_in = record.info.get("checked_in")
    if checked_in is None or time.monotonic() - checked_in <= IDLE_PING_SECONDS:
        return  # just opened, or used moments ago
    try:
        dbapi_connection.ping()
    except Exception as exc:  # any failure: let the pool open a fresh connection instead
        raise sa_exc.DisconnectionError() from exc


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session inside one transaction: committed on success, rolled back on any error."""
    async with factory() as session, session.begin():
        yield session


RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
MAX_TRANSACTION_ATTEMPTS = 3


class Busy(ServiceUnavailable):
    type_slug, title = "busy", "Busy, try again"


def is_retryable(exc: BaseException) -> bool:
    """PostgreSQL aborted the transaction for a serialization failure or a deadlock: it had
    no effect and the same work may simply run again."""
    return isinstance(exc, sa_exc.DBAPIError) and (
        getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
    )


async def in_transaction(
    session: AsyncSession,
    work: Callable[[], Awaitable[T]],
    *,
    attempts: int = MAX_TRANSACTION_ATTEMPTS,
) -> T:
    """Run ``work`` in one transaction of ``session``; run it again (up to ``attempts`` times)
    when PostgreSQL aborts it for a serialization failure or a deadlock, then answer
    :class:`Busy` (503 with Retry-After)."""
    for attempt in range(1, attempts + 1):
        try:
            async with session.begin():
                return await work()
        except sa_exc.DBAPIError as exc:
            if not is_retryable(exc):
                raise
            log.warning("transaction aborted by PostgreSQL", extra={"attempt": attempt})
    raise Busy("Too many concurrent changes; try again.", headers={"Retry-After": "1"})


class Query:
    """One hand-tuned SQL statement with named parameters (``:name``), kept in a service's
    ``queries.py`` so that every hand-written statement is found in one file."""

    __slots__ = ("name", "statement")

    def __init__(self, name: str, sql: str) -> None:
        self.name = name
        self.statement = sa.text(sql)

    def __repr__(self) -> str:
        return f"Query({self.name!r})"


async def run(
    session: AsyncSession, query: Query, params: Mapping[str, Any] | None = None
) -> Result[Any]:
    """Run one of a service's :class:`Query` statements inside the session's transaction."""
    return await (await _connection(session)).execute(query.statement, dict(params or {}))


async def run_many(session: AsyncSession, query: Query, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run a :class:`Query` once per parameter set, as one executemany (a batch of rows)."""
    await (await _connection(session)).execute(query.statement, list(rows))


async def _connection(session: AsyncSession) -> AsyncConnection:
    """The session's connection, its pending ORM changes flushed first (as ``session.execute``
    would) but without the ORM execute path per statement, as the hand-tuned paths had it."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    return await session.connection()


def asyncpg_dsn(url: str) -> str:
    """The plain ``postgresql://`` DSN asyncpg takes, from a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(url: str) -> None:
    """Create the URL's database when it does not exist (needs CREATEDB on the server)."""
    parsed = make_url(url)
    name = parsed.database
    if not name:
        raise ValueError("database URL names no database")
    admin = asyncpg_dsn(parsed.set(database="postgres").render_as_string(hide_password=False))
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
                log.info("created database", extra={"database": name})
            except asyncpg.DuplicateDatabaseError:
                pass  # created concurrently by another replica
    finally:
        await conn.close()


def alembic_config(url: str, script_location: Path) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, script_location: Path, revision: str = "head") -> None:
    """Apply a service's Alembic migrations (blocking; call from a thread in async code)."""
    command.upgrade(alembic_config(url, script_location), revision)


async def migrate(url: str, script_location: Path) -> None:
    """Create the database if needed and bring it to the latest migration."""
    await ensure_database(url)
    await asyncio.to_thread(upgrade, url, script_location)


class Wakeup:
    """Sleep until a PostgreSQL NOTIFY on ``channel``, a stop signal, or a timeout.

    Polling loops use it to react at once to new work and still poll as a fallback: when the
    listening connection cannot be opened or breaks, the loop just sleeps its interval.
    """

    def __init__(self, engine: AsyncEngine, channel: str) -> None:
        self.engine = engine
        self.channel = channel
        self._event = asyncio.Event()
        self._connection: asyncpg.Connection | None = None

    async def listen(self) -> None:
        """(Re)open the listening connection if needed; failures leave polling in charge."""
        if self._connection is not None and not self._connection.is_closed():
            return
        try:
            dsn = asyncpg_dsn(self.engine.url.render_as_string(hide_password=False))
            self._connection = await asyncpg.connect(dsn)
            await self._connection.add_listener(self.channel, self._notified)
        except (OSError, asyncpg.PostgresError) as exc:
            self._connection = None
            log.warning(
                "LISTEN unavailable; polling", extra={"channel": self.channel, "error": repr(exc)}
            )

    def _notified(self, *_: object) -> None:
        self._event.set()

    async def sleep(self, stop: asyncio.Event, seconds: float) -> None:
        """Return after ``seconds``, or sooner on a notification or when ``stop`` is set.

        A notification that arrived since the last sleep (during the caller's round) returns
        at once: it may announce work the round did not see yet.
        """
        waiters = [asyncio.ensure_future(self._event.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            self._event.clear()  # consumed: the caller's next round looks for the work

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None
