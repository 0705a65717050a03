"""Opaque cursors: round trips, and refusal of anything this API did not hand out."""

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.pagination import (
    InvalidCursor,
    decode_cursor,
    decode_id_cursor,
    encode_cursor,
    encode_id_cursor,
)


def test_id_cursors_round_trip() -> None:
    last = uuid.uuid4()
    assert decode_id_cursor(encode_id_cursor(last)) == last


def test_compound_keys_round_trip_with_their_types() -> None:
    cursor = encode_cursor(["2026-11-23T10:00:00+00:00", 42])
    assert decode_cursor(cursor, types=(str, int)) == ["2026-11-23T10:00:00+00:00", 42]
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, types=(str, str))


@given(st.text(max_size=40))
def test_anything_else_is_an_invalid_cursor_never_a_crash(garbage: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_id_cursor(garbage)
