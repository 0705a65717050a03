"""Running Core statements (insert ... on conflict, update ... returning, select of tables)
in a session's transaction. SQLModel's ``session.exec`` is typed for ORM selects only and
its ``session.execute`` is deprecated, so Core goes through the session's connection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Result
from sqlalchemy.sql.base import Executable
from sqlmodel.ext.asyncio.session import AsyncSession


async def execute(
    session: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> Result[Any]:
    """Run ``statement`` (prebuilt ones get their values as ``params``)."""
    connection = await session.connection()
    return await connection.execute(statement, params)
