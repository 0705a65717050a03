"""Opaque cursors: base64 of the last row's sort key."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from services.distribution.domain.errors import InvalidCursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode()


def decode_cursor(cursor: str, *, types: tuple[type, ...]) -> list[Any]:
    """The sort key inside ``cursor`` (one value of each of ``types``); InvalidCursor when it
    was not made by this service."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("The cursor is not one this service returned.") from exc
    if (
        not isinstance(key, list)
        or len(key) != len(types)
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, types, strict=True)
        )
    ):
        raise InvalidCursor("The cursor is not one this service returned.")
    return key
