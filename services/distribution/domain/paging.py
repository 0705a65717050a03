"""Pages of the service's lists: the caller's sites and keyset paging over a sort key."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import sqlalchemy as sa

from shared.auth import ALL_SITES, Principal, Role
from shared.pagination import InvalidCursor, decode_cursor, encode_cursor

R = TypeVar("R")


def site_scope(principal: Principal) -> list[str] | None:
    """The sites a principal may read, or None for every site."""
    if Role.ADMIN in principal.roles or ALL_SITES in principal.sites:
        return None
    return sorted(principal.sites)


def after(
    columns: Sequence[Any], cursor: str | None, *, types: tuple[type, ...]
) -> sa.ColumnElement[bool] | None:
    """The condition "sorts after the cursor's row" (ascending ``columns``), or None without a
    cursor. Values typed ``datetime`` or ``UUID`` travel as strings in the cursor."""
    if not cursor:
        return None
    raw = decode_cursor(cursor, types=tuple(str if t in _AS_TEXT else t for t in types))
    try:
        key = [_parse(value, kind) for value, kind in zip(raw, types, strict=True)]
    except ValueError as exc:
        raise InvalidCursor("The cursor is not one this service returned.") from exc
    return sa.tuple_(*columns) > sa.tuple_(*[sa.literal(v) for v in key])


def page_of(
    rows: Sequence[R], limit: int, key: Callable[[R], Sequence[Any]]
) -> tuple[list[R], str | None]:
    """The first ``limit`` of ``rows`` (fetched with ``limit + 1``) and the next page's cursor
    (None on the last page)."""
    page = list(rows[:limit])
    if len(rows) <= limit:
        return page, None
    return page, encode_cursor([_text(value) for value in key(page[-1])])


_AS_TEXT = (datetime, UUID)


def _parse(value: Any, kind: type) -> Any:
    if isinstance(value, str) and "\x00" in value:  # PostgreSQL text cannot hold it
        raise ValueError("NUL in a cursor")
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is UUID:
        return UUID(value)
    return value


def _text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if isinstance(value, UUID) else value
