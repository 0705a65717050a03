"""The load-generator process: one spawned worker, its own interpreter and event loops."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor


def warm_up() -> int:
    """Import the load generator's modules before anything is timed; return the pid."""
    import bench.dedup_probe
    import bench.kafka_load
    import bench.loadgen
    import bench.pg_load
    import bench.preload  # noqa: F401

    return os.getpid()


def load_generator() -> ProcessPoolExecutor:
    """A single worker process started with ``spawn`` (nothing inherited from this one)."""
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
