"""The duplicate check timed directly: registration's own candidate search against its DB.

Each probe is one household as the intake sees it: every member's name-block look-up, the
document and phone look-ups and the scoring (``dedup.find_duplicates`` with the service's
default threshold and candidate limit), in a read transaction on a pooled connection. Half
of the probes are re-registrations of preloaded households (names retyped, same birth dates),
half are new people, so the figure covers both a hit and a miss.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass, field
from datetime import date

from bench.generator import HouseholdGenerator, SyntheticHousehold
from bench.preload import chunk_households
from bench.registration_rows import people_for
from services.registration.domain.dedup import find_duplicates
from services.registration.settings import RegistrationSettings
from shared.db import create_engine, session_factory

KINDS = ("planted", "new")
DEDUP_LOGGER = "services.registration.domain.dedup"


class _Counter(logging.Handler):
    """Counts the duplicate check's warnings (a look-up that hit its candidate limit)
    instead of printing hundreds of them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@dataclass(frozen=True)
class ProbePlan:
    database_url: str
    preload_seed: int
    probe_seed: int
    probes: int
    preload_chunk: int
    today: date


@dataclass
class ProbeResult:
    planted_latencies: list[float] = field(default_factory=list)
    new_latencies: list[float] = field(default_factory=list)
    planted_found: int = 0
    new_flagged: int = 0
    lookups_at_limit: int = 0


def probe_households(plan: ProbePlan) -> tuple[list[SyntheticHousehold], list[SyntheticHousehold]]:
    """(re-registrations of preloaded households, new households)."""
    half = plan.probes // 2
    originals = chunk_households(plan.preload_seed, 0, plan.preload_chunk, plan.today)[:half]
    retyper = HouseholdGenerator(plan.probe_seed, today=plan.today)
    planted = [retyper.re_registration(household) for household in originals]
    fresh = HouseholdGenerator(plan.probe_seed + 1, today=plan.today)
    return planted, [fresh.household() for _ in range(plan.probes - len(planted))]


async def probe_async(plan: ProbePlan) -> ProbeResult:
    settings = RegistrationSettings()
    engine = create_engine(plan.database_url, pool_size=2)
    sessions = session_factory(engine)
    planted, fresh = probe_households(plan)
    result = ProbeResult()
    counter = _Counter()
    logger = logging.getLogger(DEDUP_LOGGER)
    logger.addHandler(counter)
    logger.propagate = False
    # Alternate planted and new probes, so that neither kind gets the warmer cache.
    pairs = itertools.zip_longest(planted, fresh)
    probes = [(kind, h) for pair in pairs for kind, h in zip(KINDS, pair, strict=True) if h]
    try:
        for kind, household in probes:
            people = people_for(household, plan.today)
            began = time.perf_counter()
            async with sessions() as session, session.begin():
                matches = await find_duplicates(
                    session=session,
                    people=people,
                    phone=household.phone,
                    threshold=settings.duplicate_threshold,
                    limit=settings.dedup_candidates_per_member,
                )
            latency = time.perf_counter() - began
            if kind == "planted":
                result.planted_latencies.append(latency)
                result.planted_found += bool(matches)
            else:
                result.new_latencies.append(latency)
                result.new_flagged += bool(matches)
    finally:
        logger.removeHandler(counter)
        logger.propagate = True
        await engine.dispose()
    result.lookups_at_limit = counter.count
    return result


def probe(plan: ProbePlan) -> ProbeResult:
    """Load-generator process entry point."""
    return asyncio.run(probe_async(plan))
