"""Pure parts of the outbox relay and the consumer's retry policy."""


import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import exc as sa_exc

from shared.consumer import RetryPolicy, is_transient
from shared.outbox import _Row, waves


def row(i: int, key: str | None) -> _Row:
    return _Row(id=i, topic="t", key=key, headers=[], value=b"")


@given(st.lists(st.sampled_from(["a", "b", "c", None]), max_size=60))
def test_waves_keep_each_key_in_id_order_and_once_per_wave(keys: list[str | None]) -> None:
    rows = [row(i, k) for i, k in enumerate(keys)]
    result = waves(rows)
    assert sorted(r.id for w in result for r in w) == list(range(len(rows)))
    for wave in result:
        keyed = [r.key for r in wave if r.key is not None]
        assert len(keyed) == len(set(keyed))
    for key in {"a", "b", "c"}:
        order = [r.id for w in result for r in w if r.key == key]
        assert order == sorted(order)


def test_waves_put_unrelated_keys_together() -> None:
    result = waves([row(1, "a"), row(2, "b"), row(3, "a"), row(4, "c")])
    assert [[r.id for r in w] for w in result] == [[1, 2, 4], [3]]


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff_seconds=1, max_backoff_seconds=8)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 8)]:
        samples = [policy.backoff(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert max(samples) - min(samples) > 0  # jittered


@pytest.mark.parametrize(
    "exc, transient",
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError(), True),
        (sa_exc.OperationalError("x", {}, ConnectionRefusedError()), True),
        (ValueError("bad"), False),
        (KeyError("missing"), False),
        (sa_exc.IntegrityError("x", {}, ValueError()), False),
    ],
)
def test_transient_errors_are_told_from_handler_bugs(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient
