"""What every scenario works with: the stack, the sizes, the load generator, tokens, helpers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from rich.console import Console

from bench.config import Sizes
from bench.generator import SITES
from bench.kafka_load import GroupProgress
from bench.loadgen import OK_STATUSES, HttpPhaseResult
from bench.monitor import ProcessSampler
from bench.profiling import profiled
from bench.results_model import Ceiling
from bench.stack import BenchStack
from bench.stats import LatencySummary, rate, summarize
from shared.auth import AuthSettings, Role, issue_dev_token
from shared.events.catalog import HOUSEHOLDS

T = TypeVar("T")

WAREHOUSE_ID = "5b0f6c1e-2f57-4a4e-9c53-6a1d2f0cbe01"
PROVIDER_ID = "0b3f9a52-8d1e-4c7a-9f10-6a1d2f0cbe02"
FOOD_SKU = "FOOD-PARCEL-15KG"
HTTP_TIMEOUT_SECONDS = 30.0
CONFLICT = 409


@dataclass(frozen=True)
class Tokens:
    admin: str
    field_staff: str
    operator: str

    @classmethod
    def issue(cls) -> Tokens:
        settings = AuthSettings()
        sites = [site.id for site in SITES]
        return cls(
            admin=issue_dev_token(settings, sub="bench-admin", roles=[Role.ADMIN], sites=["*"]),
            field_staff=issue_dev_token(
                settings, sub="bench-field", roles=[Role.FIELD_STAFF], sites=sites
            ),
            operator=issue_dev_token(
                settings, sub="bench-operator", roles=[Role.WAREHOUSE_OPERATOR], sites=sites
            ),
        )


@dataclass
class PhaseSummary:
    """One load phase measured over its window (warm-up excluded)."""

    requests: int
    ok: int
    errors: int
    rate: float
    latency: LatencySummary
    problems: dict[str, int]
    window_seconds: float
    ran_out_of_bodies: bool


def summarize_phase(result: HttpPhaseResult, *, warmup: float, duration: float) -> PhaseSummary:
    """Requests started after the warm-up; the rate counts successful answers that completed
    inside the window (shortened when the phase ran out of bodies)."""
    end = warmup + duration
    if result.ran_out_of_bodies and result.samples:
        end = min(end, max(start + latency for start, _, latency, _ in result.samples))
    window = max(end - warmup, 1e-9)
    started = [s for s in result.samples if warmup <= s[0] < end]
    ok = [s for s in started if s[3] in OK_STATUSES]
    completed = [s for s in result.samples if s[3] in OK_STATUSES and warmup <= s[0] + s[2] <= end]
    return PhaseSummary(
        requests=len(started),
        ok=len(ok),
        errors=len(started) - len(ok),
        rate=rate(len(completed), window),
        latency=summarize([s[2] for s in ok]),
        problems=result.problems,
        window_seconds=round(window, 2),
        ran_out_of_bodies=result.ran_out_of_bodies,
    )


async def fetch_async(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


def fetch(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run one query on a bench database from the orchestrator (blocking)."""
    return asyncio.run(fetch_async(dsn, query, *args))


def fetchval(dsn: str, query: str, *args: Any) -> Any:
    rows = fetch(dsn, query, *args)
    return rows[0][0] if rows else None


@dataclass
class RunContext:
    stack: BenchStack
    sizes: Sizes
    console: Console
    executor: Executor
    sampler: ProcessSampler
    today: date
    tokens: Tokens
    ceilings: dict[str, Ceiling] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)
    profile_dir: Path | None = None  # --profile: py-spy recordings go here
    _seeds: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    def next_seed(self) -> int:
        """A fresh seed for each body set, so no two phases send the same households."""
        return next(self._seeds) * 7919

    def loadgen(self, function: Callable[..., T], *args: Any, timeout: float, **kwargs: Any) -> T:
        """Run ``function`` in the load-generator process and wait for its result."""
        return self.executor.submit(function, *args, **kwargs).result(timeout=timeout)

    def profiling(self, service: str, label: str) -> contextlib.AbstractContextManager[None]:
        """Record ``service`` with py-spy while the block runs, when ``--profile`` is on."""
        output = (self.profile_dir or Path()) / f"{label}-{service}.txt"
        return profiled(self.stack.pids[service], output, enabled=self.profile_dir is not None)

    def url(self, service: str) -> str:
        return self.stack.urls[service]

    def db(self, service: str) -> str:
        return self.stack.service_database(service)

    def post(self, service: str, path: str, body: Any, *, token: str) -> httpx.Response:
        """One request from the orchestrator (reference data, stock), not load."""
        with httpx.Client(base_url=self.url(service), timeout=HTTP_TIMEOUT_SECONDS) as client:
            return client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})

    def ensure(self, service: str, path: str, body: Any) -> None:
        """Create reference data as admin; 409 means it is already there."""
        response = self.post(service, path, body, token=self.tokens.admin)
        if response.status_code >= 400 and response.status_code != CONFLICT:
            raise RuntimeError(f"{service} {path}: {response.status_code} {response.text[:300]}")

    @contextlib.contextmanager
    def cpu_per_operation(self, service: str, note: list[str]) -> Iterator[list[int]]:
        """Append "<service> CPU <ms>/op" to ``note`` for the block; the block appends the
        number of operations it completed to the yielded list."""
        began = time.monotonic()
        done: list[int] = []
        yield done
        time.sleep(self.sampler.interval)  # one more sample inside the window
        stats = self.sampler.window(began, time.monotonic()).get(service)
        machine = self.sampler.machine(began, time.monotonic())
        if stats and sum(done):
            note.append(f"{service} CPU {stats.cpu_seconds * 1000 / sum(done):.1f} ms/op")
        if machine:
            note.append(f"machine {machine.busy:.0%} busy")

    def ceiling_ratio(self, key: str, value: float | None) -> float | None:
        ceiling = self.ceilings.get(key)
        if ceiling is None or value is None or not ceiling.rate:
            return None
        return round(value / ceiling.rate, 3)


def setup_reference_data(context: RunContext) -> None:
    """Sites, the food parcel, one warehouse and one provider that serves every site."""
    for site in SITES:
        context.ensure(
            "registration",
            "/v1/sites",
            {
                "id": site.id,
                "name": site.name,
                "country": "MDA",
                "admin1": site.admin1,
                "admin2": site.admin2,
                "timezone": "Europe/Chisinau",
            },
        )
    context.ensure(
        "distribution",
        "/v1/items",
        {
            "sku": FOOD_SKU,
            "name": "Family food parcel (15 kg)",
            "category": "food",
            "unit": "parcel",
        },
    )
    chisinau = SITES[0]
    context.ensure(
        "distribution",
        "/v1/warehouses",
        {
            "id": WAREHOUSE_ID,
            "name": "Bench central warehouse",
            "site_id": chisinau.id,
            "location": {"admin1": chisinau.admin1, "admin2": chisinau.admin2},
        },
    )
    context.ensure(
        "referral",
        "/v1/providers",
        {
            "id": PROVIDER_ID,
            "name": "Bench regional health and protection network",
            "services": ["medical", "legal", "psychosocial", "protection", "counter_trafficking",
                         "employment", "voluntary_return", "shelter"],
            "regions": sorted({site.admin1 for site in SITES}),
            "languages": ["uk", "ru", "ro", "en"],
            "capacity": 100_000,
            "contact": {"phone": "+37322000999"},
            "opening_hours": "Daily 08:00-20:00",
        },
    )  # fmt: skip


def uuids(values: Sequence[Any]) -> list[str]:
    return [str(value) for value in values]


CONSUMING_SERVICES = ("distribution", "referral", "notifications")
SETTLE_POLL_SECONDS = 1.0


async def _backlogs(context: RunContext) -> dict[str, int]:
    backlogs = {
        "registration outbox": int(
            await _fetchval_async(context.db("registration"), "SELECT count(*) FROM outbox")
        )
    }
    async with GroupProgress(context.stack.kafka_bootstrap, HOUSEHOLDS.name) as progress:
        for service in CONSUMING_SERVICES:
            backlogs[f"{service} consumer lag"] = await progress.lag(f"haven-{service}")
    return backlogs


async def _fetchval_async(dsn: str, query: str) -> Any:
    rows = await fetch_async(dsn, query)
    return rows[0][0] if rows else None


def settle(context: RunContext, bound_seconds: float) -> dict[str, int]:
    """Wait (at most ``bound_seconds``) until the outbox is empty and every consumer has
    caught up, so that one measurement does not pay for the previous one's events; return
    what was still queued when the wait ended (empty when all caught up)."""
    deadline = time.monotonic() + bound_seconds
    while True:
        left = {name: n for name, n in asyncio.run(_backlogs(context)).items() if n}
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(SETTLE_POLL_SECONDS)
