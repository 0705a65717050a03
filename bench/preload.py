"""Bulk load of registered people into registration's database with COPY.

The load generator process builds chunks of rows (names keyed by the service's functions)
while this process COPYs the previous chunk, so the two cores share the work. The session
that loads uses ``synchronous_commit=off`` (its own commits only) and every chunk is one
transaction; afterwards the tables are vacuumed and analysed, as an operator would after an
import, so the planner knows the new sizes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import date

import asyncpg

from bench.generator import HouseholdGenerator, SyntheticHousehold
from bench.registration_rows import (
    DOCUMENT_COLUMNS,
    HOUSEHOLD_COLUMNS,
    MEMBER_COLUMNS,
    RegistrationRows,
    registered_at_for,
    rows_for,
)

PRELOAD_CASE_BASE = 5_000_000
"""Preloaded case numbers start here (MDA-CHI-5000001 ...), far from the service's sequence."""
CASES_PER_CHUNK = 100_000


def chunk_households(
    seed: int, chunk: int, individuals: int, today: date
) -> list[SyntheticHousehold]:
    """The households of one chunk: deterministic for (seed, chunk), about ``individuals``
    people (the last household may overshoot)."""
    generator = HouseholdGenerator(seed + chunk, today=today)
    households: list[SyntheticHousehold] = []
    people = 0
    while people < individuals:
        household = generator.household()
        households.append(household)
        people += len(household.members)
    return households


def build_chunk(seed: int, chunk: int, individuals: int, today: date) -> RegistrationRows:
    """Rows of one chunk (load-generator process entry point)."""
    rows = RegistrationRows([], [], [])
    for index, household in enumerate(chunk_households(seed, chunk, individuals, today)):
        number = PRELOAD_CASE_BASE + chunk * CASES_PER_CHUNK + index
        built = rows_for(
            household,
            case_number=f"{household.site.id}-{number}",
            registered_at=registered_at_for(number, today),
            today=today,
        )
        rows.households += built.households
        rows.members += built.members
        rows.documents += built.documents
    return rows


@dataclass(frozen=True)
class PreloadResult:
    individuals: int
    households: int
    documents: int
    copy_seconds: float
    total_seconds: float
    vacuum_seconds: float

    @property
    def rate(self) -> float:
        return round(self.individuals / self.total_seconds, 1) if self.total_seconds else 0.0


async def _copy(connection: asyncpg.Connection, rows: RegistrationRows) -> None:
    async with connection.transaction():
        await connection.copy_records_to_table(
            "household", records=rows.households, columns=HOUSEHOLD_COLUMNS
        )
        await connection.copy_records_to_table(
            "household_member", records=rows.members, columns=MEMBER_COLUMNS
        )
        if rows.documents:
            await connection.copy_records_to_table(
                "member_document", records=rows.documents, columns=DOCUMENT_COLUMNS
            )


async def preload_async(
    dsn: str,
    executor: Executor,
    *,
    individuals: int,
    chunk_size: int,
    seed: int,
    today: date,
    advance: Callable[[int], None],
) -> PreloadResult:
    """Load about ``individuals`` people; ``advance(n)`` is called after each chunk."""
    chunks = max(1, -(-individuals // chunk_size))
    loop = asyncio.get_running_loop()
    began = time.perf_counter()
    copy_seconds = 0.0
    totals = [0, 0, 0]
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SET synchronous_commit = off")
        pending = loop.run_in_executor(executor, build_chunk, seed, 0, chunk_size, today)
        for chunk in range(chunks):
            rows = await pending
            if chunk + 1 < chunks:
                pending = loop.run_in_executor(
                    executor, build_chunk, seed, chunk + 1, chunk_size, today
                )
            copy_began = time.perf_counter()
            await _copy(connection, rows)
            copy_seconds += time.perf_counter() - copy_began
            totals[0] += len(rows.members)
            totals[1] += len(rows.households)
            totals[2] += len(rows.documents)
            advance(len(rows.members))
        vacuum_began = time.perf_counter()
        for table in ("household", "household_member", "member_document"):
            await connection.execute(f"VACUUM (ANALYZE) {table}")
        vacuum_seconds = time.perf_counter() - vacuum_began
    finally:
        await connection.close()
    return PreloadResult(
        individuals=totals[0],
        households=totals[1],
        documents=totals[2],
        copy_seconds=round(copy_seconds, 1),
        total_seconds=round(time.perf_counter() - began, 1),
        vacuum_seconds=round(vacuum_seconds, 1),
    )
