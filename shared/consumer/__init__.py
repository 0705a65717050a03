"""Consuming events exactly once in effect: inbox, batches, bounded retries, dead letters.

How a record is handled, and what a batch handler must guarantee: docs/architecture.md,
"The consumer". The modules: ``registry`` (handlers by event type), ``batch`` (a fetched
batch in one transaction), ``retries`` (one record at a time, retries, dead letters),
``tracing`` (spans in the producer's trace), ``lag`` (consumer lag), ``subscriber`` (the
:class:`EventConsumer` over FastStream).
"""

from shared.consumer.batch import BATCH_LINGER_MS, BATCH_SIZE, BATCH_WAIT_MS, distinct_runs
from shared.consumer.lag import LAG, LagWatcher
from shared.consumer.registry import (
    CONSUMED,
    IGNORED,
    BatchHandler,
    EventHandler,
    TombstoneHandler,
)
from shared.consumer.retries import DEAD_LETTERED, DLQ_HEADER_PREFIX, RetryPolicy, is_transient
from shared.consumer.subscriber import EventConsumer
from shared.consumer.tracing import acting_on

__all__ = [
    "BATCH_LINGER_MS",
    "BATCH_SIZE",
    "BATCH_WAIT_MS",
    "CONSUMED",
    "DEAD_LETTERED",
    "DLQ_HEADER_PREFIX",
    "IGNORED",
    "LAG",
    "BatchHandler",
    "EventConsumer",
    "EventHandler",
    "LagWatcher",
    "RetryPolicy",
    "TombstoneHandler",
    "acting_on",
    "distinct_runs",
    "is_transient",
]
