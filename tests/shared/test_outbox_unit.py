"""Pure parts of the outbox relay and the consumer's retry policy."""

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import exc as sa_exc

from shared.consumer import RetryPolicy, is_transient
from shared.outbox import _Row, by_partition


def row(i: int, key: str | None, topic: str = "t") -> _Row:
    return _Row(id=i, topic=topic, key=key, headers=[], value=b"")


def partition_by_key(r: _Row) -> int:
    return {"a": 0, "b": 1, "c": 0}.get(r.key or "", 2)


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.sampled_from("tu"))))
def test_rows_are_grouped_by_partition_each_in_id_order(
    rows_spec: list[tuple[str | None, str]],
) -> None:
    rows = [row(i, key, topic) for i, (key, topic) in enumerate(rows_spec)]
    groups = by_partition(rows, partition_by_key)
    assert sorted(r.id for group in groups.values() for r in group) == list(range(len(rows)))
    for (topic, partition), group in groups.items():
        assert all(r.topic == topic and partition_by_key(r) == partition for r in group)
        assert [r.id for r in group] == sorted(r.id for r in group)


def test_keys_of_one_partition_share_its_group() -> None:
    groups = by_partition([row(1, "a"), row(2, "b"), row(3, "a"), row(4, "c")], partition_by_key)
    assert {tp: [r.id for r in g] for tp, g in groups.items()} == {
        ("t", 0): [1, 3, 4],
        ("t", 1): [2],
    }


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
