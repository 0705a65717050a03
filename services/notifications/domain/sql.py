"""Running Core statements (insert ... on conflict, update ... returning, select of tables)
in a session's transaction. SQLModel's ``session.exec`` is typed for ORM selects only and
its ``session.execute`` is deprecated, so Core goes through the session's connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Result
from sqlalchemy.sql.base import Executable
from sqlmodel.ext.asyncio.session import AsyncSession


async def execute(session: AsyncSession, statement: Executable) -> Result[Any]:
    connection = await session.connection()
    return await connection.execute(statement)
