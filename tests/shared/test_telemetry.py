"""JSON logs with trace and correlation ids, tracing set-up, W3C propagation."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.http import create_app
from shared.telemetry import (
    TelemetrySettings,
    configure_logging,
    correlation_id_var,
    extract_trace_context,
    inject_trace_headers,
    setup_tracing,
)

ReadLogs = Callable[[], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def provider() -> TracerProvider:
    """The global SDK provider (installed here unless another module did first)."""
    exporter = InMemorySpanExporter()
    setup_tracing("test", extra_processors=[SimpleSpanProcessor(exporter)])
    installed = trace.get_tracer_provider()
    assert isinstance(installed, TracerProvider)
    return installed


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    routed = {
        name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
        for name in ("uvicorn", "uvicorn.access", "aiokafka")
    }
    httpx_level = logging.getLogger("httpx").level
    yield
    logging.getLogger("httpx").setLevel(httpx_level)
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, (saved, propagate) in routed.items():
        logging.getLogger(name).handlers[:] = saved
        logging.getLogger(name).propagate = propagate


def our_handler() -> logging.StreamHandler[Any]:
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "haven"]
    assert isinstance(handler, logging.StreamHandler)
    return handler


@pytest.fixture
def json_logs(restore_logging: None) -> ReadLogs:
    configure_logging("registration", TelemetrySettings(log_format="json", log_level="INFO"))
    buffer = io.StringIO()
    our_handler().setStream(buffer)  # instead of stderr, which pytest swaps around

    def read() -> list[dict[str, Any]]:
        entries = [json.loads(line) for line in buffer.getvalue().splitlines()]
        buffer.seek(0)
        buffer.truncate()
        return entries

    return read


def test_logs_go_to_stderr(restore_logging: None) -> None:
    configure_logging("registration")
    assert our_handler().stream is sys.stderr


def test_log_lines_are_json_with_context(json_logs: ReadLogs, provider: TracerProvider) -> None:
    log = logging.getLogger("haven.test")
    token = correlation_id_var.set("corr-1")
    try:
        with provider.get_tracer("test").start_as_current_span("work") as span:
            log.info("household %s registered", "h-1", extra={"event_type": "registered"})
    finally:
        correlation_id_var.reset(token)
    log.warning("outside")
    inside, outside = [e for e in json_logs() if e["logger"] == "haven.test"]
    context = span.get_span_context()
    assert inside["message"] == "household h-1 registered"
    assert inside["level"] == "INFO" and inside["logger"] == "haven.test"
    assert inside["service"] == "registration"
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert inside["correlation_id"] == "corr-1"
    assert inside["event_type"] == "registered"
    assert inside["time"].endswith("+00:00")
    assert (outside["trace_id"], outside["correlation_id"]) == (None, None)


def test_exceptions_are_logged_with_their_traceback(json_logs: ReadLogs) -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("haven.test").exception("failed")
    [entry] = [e for e in json_logs() if e["logger"] == "haven.test"]
    assert "Traceback" in entry["exc_info"] and "ValueError: bad" in entry["exc_info"]


def test_configure_logging_is_idempotent(restore_logging: None) -> None:
    configure_logging("registration")
    configure_logging("registration")
    buffer = io.StringIO()
    our_handler().setStream(buffer)  # fails unless exactly one handler is ours
    logging.getLogger("haven.test").info("once")
    assert [json.loads(line)["message"] for line in buffer.getvalue().splitlines()] == ["once"]


def test_uvicorn_and_aiokafka_go_through_our_handler(restore_logging: None) -> None:
    access = logging.getLogger("uvicorn.access")
    access.addHandler(logging.StreamHandler())
    access.propagate = False
    configure_logging("registration")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "aiokafka"):
        assert logging.getLogger(name).handlers == []
        assert logging.getLogger(name).propagate


def test_uvicorn_access_log_loses_the_query_string(json_logs: ReadLogs) -> None:
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d',
        "10.0.0.1:5000",
        "GET",
        "/v1/households?name=Amina&phone=%2B254700000001",
        "1.1",
        200,
    )
    [entry] = [e for e in json_logs() if e["logger"] == "uvicorn.access"]
    assert entry["message"] == '10.0.0.1:5000 - "GET /v1/households HTTP/1.1" 200'


def test_text_format_for_developers(restore_logging: None) -> None:
    configure_logging("registration", TelemetrySettings(log_format="text"))
    buffer = io.StringIO()
    our_handler().setStream(buffer)
    token = correlation_id_var.set("corr-2")
    try:
        logging.getLogger("haven.test").info("hello")
    finally:
        correlation_id_var.reset(token)
    line = buffer.getvalue().strip()
    assert "INFO" in line and "haven.test" in line and "hello" in line
    assert "correlation_id=corr-2" in line


async def test_request_logs_carry_ids_and_never_the_query_string(
    json_logs: ReadLogs, provider: TracerProvider
) -> None:
    router = APIRouter()

    @router.get("/v1/households")
    async def search(name: str) -> list[str]:
        logging.getLogger("haven.test").info("searching households")
        raise RuntimeError("lookup failed")

    app = create_app(service="registration", title="T", version="1", routers=[router])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(
            "/v1/households",
            params={"name": "Amina Yusuf"},
            headers={
                "X-Correlation-ID": "corr-3",
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            },
        )
    assert response.status_code == 500
    entries = json_logs()
    searching = next(e for e in entries if e["message"] == "searching households")
    assert searching["correlation_id"] == "corr-3"
    assert searching["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    failure = next(e for e in entries if e["level"] == "ERROR")
    assert "/v1/households" in failure["message"] and "exc_info" in failure
    assert failure["correlation_id"] == "corr-3"
    everything = json.dumps(entries)
    assert "Amina" not in everything and "name=" not in everything


# --- tracing -------------------------------------------------------------------------------


def test_setup_tracing_samples_by_ratio_and_keeps_an_existing_global(
    provider: TracerProvider,
) -> None:
    exporter = InMemorySpanExporter()
    fresh = setup_tracing(
        "distribution",
        TelemetrySettings(sampling_ratio=0.25),
        extra_processors=[SimpleSpanProcessor(exporter)],
    )
    assert trace.get_tracer_provider() is provider is not fresh
    assert "ParentBased" in fresh.sampler.get_description()
    assert "0.25" in fresh.sampler.get_description()
    assert fresh.resource.attributes["service.name"] == "distribution"
    # A remote parent's sampled flag does not decide; the ratio on the trace id does.
    with fresh.get_tracer("t").start_as_current_span("forced-child", context=_sampled_parent()):
        pass
    low_trace_id = extract_trace_context(
        {"traceparent": "00-0af7651916cd43dd0000000000000001-b7ad6b7169203331-01"}
    )
    with fresh.get_tracer("t").start_as_current_span("sampled-child", context=low_trace_id):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["sampled-child"]


def _sampled_parent() -> Any:
    return extract_trace_context(
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    )


def test_trace_headers_round_trip_through_kafka_style_bytes(provider: TracerProvider) -> None:
    assert inject_trace_headers() == {}  # nothing to propagate outside a span
    with provider.get_tracer("t").start_as_current_span("publish") as span:
        headers = inject_trace_headers()
    assert set(headers) == {"traceparent"}  # W3C only: no baggage
    kafka_headers = {"TraceParent": headers["traceparent"].encode()}
    with provider.get_tracer("t").start_as_current_span(
        "consume", context=extract_trace_context(kafka_headers)
    ) as child:
        pass
    assert child.get_span_context().trace_id == span.get_span_context().trace_id
    assert child.parent is not None  # type: ignore[attr-defined]
    assert child.parent.span_id == span.get_span_context().span_id  # type: ignore[attr-defined]
