"""The app factory: limits, probes, metrics, correlation ids, spans, OpenAPI, strict models."""

from __future__ import annotations

import asyncio
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import ValidationError

from shared.auth import PrincipalDep
from shared.http import CleanText, HttpSettings, StrictModel, create_app
from shared.problems import PROBLEM_MEDIA_TYPE
from shared.telemetry import setup_tracing

ReadinessChecks = Mapping[str, Callable[[], Awaitable[None]]]


class MemberCreate(StrictModel):
    given_name: CleanText


def households_router(calls: list[str]) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/households/{household_id}")
    async def get_household(household_id: str) -> dict[str, str]:
        return {"id": household_id}

    @router.post("/members")
    async def add_member(member: MemberCreate) -> dict[str, str]:
        calls.append("add_member")
        return {"given_name": member.given_name}

    @router.post("/uploads")
    async def upload(request: Request) -> dict[str, int]:
        calls.append("upload")
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("Amina Yusuf, +254700000001")

    @router.get("/me")
    async def me(principal: PrincipalDep) -> dict[str, str]:
        return {"sub": principal.sub}

    return router


def make_client(
    *,
    service: str = "test",
    checks: ReadinessChecks | None = None,
    settings: HttpSettings | None = None,
    asyncapi: Callable[[], dict[str, Any]] | None = None,
    calls: list[str] | None = None,
) -> httpx.AsyncClient:
    app = create_app(
        service=service,
        title="Test",
        version="1.0",
        routers=[households_router(calls if calls is not None else [])],
        readiness_checks=checks or {},
        asyncapi_document=asyncapi,
        settings=settings,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as c:
        yield c


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider = setup_tracing("test", extra_processors=[processor])
    global_provider = trace.get_tracer_provider()
    if global_provider is not provider:  # another test module installed the global one
        global_provider.add_span_processor(processor)  # type: ignore[attr-defined]
    yield exporter
    exporter.clear()  # the processor stays on the global provider: it cannot be removed


# --- probes --------------------------------------------------------------------------------


async def test_healthz_needs_no_dependency_and_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_runs_every_check() -> None:
    ran: list[str] = []

    async def database() -> None:
        ran.append("database")

    async def kafka() -> None:
        ran.append("kafka")

    async with make_client(checks={"database": database, "kafka": kafka}) as c:
        response = await c.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "kafka": "ok"}}
    assert sorted(ran) == ["database", "kafka"]


async def test_readyz_is_503_problem_naming_the_failing_check() -> None:
    async def database() -> None:
        return None

    async def kafka() -> None:
        raise ConnectionError("broker kafka-0.internal:9092 refused")

    async with make_client(checks={"database": database, "kafka": kafka}) as c:
        response = await c.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["failing"] == ["kafka"]
    assert body["checks"] == {"database": "ok", "kafka": "failed"}
    assert "kafka-0.internal" not in response.text  # no internals on an open endpoint


async def test_readyz_times_out_a_hanging_check_and_runs_checks_concurrently() -> None:
    async def hangs() -> None:
        await asyncio.sleep(60)

    async def slow() -> None:
        await asyncio.sleep(0.2)

    settings = HttpSettings(readiness_timeout_seconds=0.3)
    checks = {"hangs": hangs, "slow_a": slow, "slow_b": slow, "slow_c": slow}
    async with make_client(checks=checks, settings=settings) as c:
        started = time.monotonic()
        response = await c.get("/readyz")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "hangs": "timeout",
        "slow_a": "ok",
        "slow_b": "ok",
        "slow_c": "ok",
    }
    assert elapsed < 0.6  # concurrently: not 0.3 + 3 * 0.2


async def test_asyncapi_document_is_served_only_when_given(client: httpx.AsyncClient) -> None:
    async with make_client(asyncapi=lambda: {"asyncapi": "3.0.0"}) as c:
        assert (await c.get("/asyncapi.json")).json() == {"asyncapi": "3.0.0"}
    assert (await client.get("/asyncapi.json")).status_code == 404


async def test_routes_still_require_a_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/me")).status_code == 401


# --- body limit ----------------------------------------------------------------------------


async def test_declared_body_over_the_limit_is_refused_before_the_endpoint_runs() -> None:
    calls: list[str] = []
    async with make_client(settings=HttpSettings(max_body_bytes=100), calls=calls) as c:
        response = await c.post("/v1/uploads", content=b"x" * 101)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["type"] == "urn:haven:problem:payload-too-large"
    assert calls == []


async def chunks(count: int, size: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b"x" * size


@pytest.mark.parametrize("path", ["/v1/uploads", "/v1/members"])
async def test_streamed_body_over_the_limit_is_refused(path: str) -> None:
    async with make_client(settings=HttpSettings(max_body_bytes=100)) as c:
        request = c.build_request("POST", path, content=chunks(5, 30))
        assert "content-length" not in request.headers  # chunked: only counting can catch it
        response = await c.send(request)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["type"] == "urn:haven:problem:payload-too-large"


async def test_body_within_the_limit_passes() -> None:
    async with make_client(settings=HttpSettings(max_body_bytes=100)) as c:
        response = await c.post("/v1/uploads", content=chunks(2, 50))
    assert (response.status_code, response.json()) == (200, {"size": 100})


# --- errors --------------------------------------------------------------------------------


async def test_unexpected_error_is_a_500_problem_without_the_exception_text(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/boom", headers={"X-Correlation-ID": "req-42"})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert "Amina" not in response.text and "254700000001" not in response.text
    assert response.headers["x-correlation-id"] == "req-42"
    assert response.json()["correlation_id"] == "req-42"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nowhere", 404), ("DELETE", "/v1/members", 405), ("POST", "/v1/members", 422)],
)
async def test_framework_errors_are_problems(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE


# --- correlation id, metrics, spans --------------------------------------------------------


async def test_correlation_id_is_echoed_or_created(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Correlation-ID": "field-app-7f3a"})
    assert echoed.headers["x-correlation-id"] == "field-app-7f3a"
    created = (await client.get("/healthz")).headers["x-correlation-id"]
    assert uuid.UUID(created)
    unsafe = await client.get("/healthz", headers={"X-Correlation-ID": "x\tinjected=1"})
    assert uuid.UUID(unsafe.headers["x-correlation-id"])  # replaced, not echoed


async def test_metrics_are_labelled_by_route_template_not_raw_path() -> None:
    service = f"svc_{uuid.uuid4().hex[:8]}"
    household_id = str(uuid.uuid4())
    async with make_client(service=service) as c:
        assert (await c.get(f"/v1/households/{household_id}")).status_code == 200
        await c.get("/no/such/page")
        metrics = (await c.get("/metrics")).text
    ours = [line for line in metrics.splitlines() if f'service="{service}"' in line]
    assert (
        'http_requests_total{method="GET",route="/v1/households/{household_id}",'
        f'service="{service}",status_class="2xx"}} 1.0'
    ) in ours
    assert (
        f'http_requests_total{{method="GET",route="unmatched",service="{service}",'
        'status_class="4xx"} 1.0'
    ) in ours
    assert any(
        line.startswith("http_request_duration_seconds_count")
        and 'route="/v1/households/{household_id}"' in line
        for line in ours
    )
    assert household_id not in metrics and "/no/such/page" not in metrics


async def test_server_span_continues_traceparent_and_is_named_by_route(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = f"00-{trace_id}-00f067aa0ba902b7-01"
    await client.get("/v1/households/h-123", headers={"traceparent": parent})
    await client.get("/healthz")
    [span] = spans.get_finished_spans()  # probes are not traced
    assert span.name == "GET /v1/households/{household_id}"
    assert span.kind == trace.SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/v1/households/{household_id}"
    assert span.attributes["http.response.status_code"] == 200


async def test_failed_request_marks_its_span_as_error(
    client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    spans.clear()
    await client.get("/v1/boom")
    [span] = spans.get_finished_spans()
    assert span.status.status_code == trace.StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


# --- OpenAPI -------------------------------------------------------------------------------


async def test_openapi_declares_problem_json_errors(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    responses = document["paths"]["/v1/members"]["post"]["responses"]
    assert responses["422"]["content"] == {
        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ValidationProblem"}}
    }
    assert PROBLEM_MEDIA_TYPE in responses["401"]["content"]
    schemas = document["components"]["schemas"]
    assert {"Problem", "ValidationProblem", "FieldError"} <= set(schemas)
    assert "HTTPValidationError" not in schemas
    assert "/healthz" not in document["paths"]


# --- strict models -------------------------------------------------------------------------


def test_clean_text_normalises_to_nfc_and_strips() -> None:
    decomposed = "  Jose\u0301  "
    member = MemberCreate(given_name=decomposed)
    assert member.given_name == "José"
    assert unicodedata.is_normalized("NFC", member.given_name)


@pytest.mark.parametrize("bad", ["Amina\x00", "Ami\nna", "Amina\x1b[31m", "Ami\x85na", "Ami\x7fna"])
def test_clean_text_refuses_control_characters(bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MemberCreate(given_name=bad)
    [error] = caught.value.errors()
    assert error["type"] == "control_characters"
    assert error["msg"] == "must not contain control characters such as tabs or line breaks"


async def test_strict_model_refuses_unknown_fields(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/members", json={"given_name": "Amina", "age": 30})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "age", "message": "unknown field", "type": "extra_forbidden"}
    ]
