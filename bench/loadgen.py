"""HTTP load, generated in the load-generator process (its own event loop and core time).

Two shapes: a **closed loop** (``concurrency`` workers, each sending its next request when the
previous one answered — throughput under a fixed number of desks) and an **open loop** (a new
request every ``1/rate`` s whatever the answers — latency at a fixed arrival rate, without the
coordinated omission of a closed loop). Request bodies are built and JSON-encoded before the
clock starts; one ``httpx.AsyncClient`` with a pool sized to the concurrency sends them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from bench.generator import SITES, HouseholdGenerator, request_body

OPEN_LOOP_MAX_CONNECTIONS = 100
OK_STATUSES = range(200, 300)
TRANSPORT_ERROR = 0


@dataclass(frozen=True)
class HouseholdBodies:
    """New households to register (``POST /v1/households``)."""

    seed: int
    count: int
    today: date
    reachable: bool = False
    referable: bool = False
    site_ids: tuple[str, ...] | None = None  # all sites when None


@dataclass(frozen=True)
class DistributionBodies:
    """One food parcel each for the given households (``POST /v1/distributions``)."""

    household_ids: tuple[str, ...]
    warehouse_id: str
    sku: str
    quantity: int = 1


@dataclass(frozen=True)
class HttpPhase:
    """One load phase against one endpoint; bounded by ``duration`` and by the bodies."""

    base_url: str
    path: str
    token: str
    bodies: HouseholdBodies | DistributionBodies
    concurrency: int
    duration_seconds: float
    warmup_seconds: float = 0.0
    timeout_seconds: float = 30.0
    rate_per_second: float | None = None  # open loop when set
    idempotency_keys: bool = False
    keep_fields: tuple[str, ...] = ()  # fields of 2xx JSON answers to return (+ sent_at)


@dataclass
class HttpPhaseResult:
    """Raw samples; the orchestrator turns them into percentiles and rates."""

    # (start offset s, wall-clock start, latency s, status; 0 = transport error)
    samples: list[tuple[float, float, float, int]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    problems: dict[str, int] = field(default_factory=dict)  # "409 insufficient-stock": n
    bodies_available: int = 0
    ran_out_of_bodies: bool = False
    elapsed_seconds: float = 0.0


def build_bodies(plan: HouseholdBodies | DistributionBodies) -> list[bytes]:
    """JSON-encoded request bodies, ready to send."""
    if isinstance(plan, DistributionBodies):
        return [
            json.dumps(
                {
                    "household_id": household_id,
                    "warehouse_id": plan.warehouse_id,
                    "lines": [{"sku": plan.sku, "quantity": plan.quantity}],
                    "client_ref": f"bench-{uuid.uuid4().hex}",
                }
            ).encode()
            for household_id in plan.household_ids
        ]
    sites = SITES if plan.site_ids is None else tuple(s for s in SITES if s.id in plan.site_ids)
    generator = HouseholdGenerator(plan.seed, today=plan.today, sites=sites)
    return [
        json.dumps(
            request_body(generator.household(reachable=plan.reachable, referable=plan.referable)),
            ensure_ascii=False,
        ).encode()
        for _ in range(plan.count)
    ]


def _problem(response: httpx.Response) -> str:
    slug = ""
    with contextlib.suppress(ValueError, AttributeError):
        # "urn:haven:problem:insufficient-stock" or ".../insufficient-stock": the last part
        slug = str(response.json().get("type", "")).replace(":", "/").rsplit("/", 1)[-1]
    return f"{response.status_code} {slug}".strip()


# Below uvicorn's keep-alive timeout (5 s): with equal timeouts the server can close an
# idle connection just as the client sends on it, which shows up as a transport error.
KEEPALIVE_EXPIRY_SECONDS = 2.0


class _Runner:
    def __init__(self, phase: HttpPhase, bodies: list[bytes]) -> None:
        self.phase = phase
        self.bodies = bodies
        self.next_body = 0
        self.result = HttpPhaseResult(bodies_available=len(bodies))
        self.problems: collections.Counter[str] = collections.Counter()
        self.headers = {
            "Authorization": f"Bearer {phase.token}",
            "Content-Type": "application/json",
        }
        self.start = 0.0

    def take(self) -> bytes | None:
        if self.next_body >= len(self.bodies):
            self.result.ran_out_of_bodies = True
            return None
        body = self.bodies[self.next_body]
        self.next_body += 1
        return body

    async def send(self, client: httpx.AsyncClient, body: bytes) -> None:
        headers = self.headers
        if self.phase.idempotency_keys:
            headers = {**headers, "Idempotency-Key": str(uuid.uuid4())}
        began = time.perf_counter()
        wall = time.time()
        try:
            response = await client.post(self.phase.path, content=body, headers=headers)
            status = response.status_code
            if status in OK_STATUSES:
                if self.phase.keep_fields:
                    answer = response.json()
                    kept = {k: answer.get(k) for k in self.phase.keep_fields}
                    self.result.kept.append(kept | {"sent_at": wall})
            else:
                self.problems[_problem(response)] += 1
        except httpx.HTTPError as exc:
            status = TRANSPORT_ERROR
            self.problems[type(exc).__name__] += 1
        latency = time.perf_counter() - began
        self.result.samples.append((began - self.start, wall, latency, status))


async def _closed_loop(runner: _Runner, client: httpx.AsyncClient) -> None:
    phase = runner.phase
    deadline = runner.start + phase.warmup_seconds + phase.duration_seconds

    async def desk() -> None:
        while time.perf_counter() < deadline:
            body = runner.take()
            if body is None:
                return
            await runner.send(client, body)

    await asyncio.gather(*(desk() for _ in range(phase.concurrency)))


async def _open_loop(runner: _Runner, client: httpx.AsyncClient) -> None:
    phase = runner.phase
    assert phase.rate_per_second
    interval = 1.0 / phase.rate_per_second
    total = int(phase.rate_per_second * (phase.warmup_seconds + phase.duration_seconds))
    in_flight: set[asyncio.Task[None]] = set()
    for index in range(total):
        due = runner.start + index * interval
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = runner.take()
        if body is None:
            break
        task = asyncio.create_task(runner.send(client, body))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        await asyncio.wait(in_flight, timeout=phase.timeout_seconds + 5)


async def run_http_phase_async(phase: HttpPhase) -> HttpPhaseResult:
    bodies = build_bodies(phase.bodies)
    runner = _Runner(phase, bodies)
    connections = phase.concurrency if phase.rate_per_second is None else OPEN_LOOP_MAX_CONNECTIONS
    limits = httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=connections,
        keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
    )
    timeout = httpx.Timeout(phase.timeout_seconds, pool=phase.timeout_seconds)
    async with httpx.AsyncClient(base_url=phase.base_url, limits=limits, timeout=timeout) as client:
        runner.start = time.perf_counter()
        if phase.rate_per_second is None:
            await _closed_loop(runner, client)
        else:
            await _open_loop(runner, client)
        runner.result.elapsed_seconds = time.perf_counter() - runner.start
    runner.result.problems = dict(runner.problems)
    return runner.result


def run_http_phase(phase: HttpPhase) -> HttpPhaseResult:
    """Entry point in the load-generator process."""
    return asyncio.run(run_http_phase_async(phase))
