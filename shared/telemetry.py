"""Logs and traces for every Haven process.

Logs are JSON lines on stderr carrying the service name, the current trace and span ids and
the request's correlation id. Traces follow W3C Trace Context across HTTP, the outbox and
Kafka headers (`inject_trace_headers` / `extract_trace_context`).

Personal data never goes into logs: no request bodies, no query strings (they can hold names
and phone numbers). Log a route template or a path, never a full URL.

A process calls `configure_telemetry` (or the two functions it wraps) once, before it builds
its app or broker.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "QUIETED_LOGGERS",
    "ROUTED_LOGGERS",
    "TelemetrySettings",
    "configure_logging",
    "configure_telemetry",
    "correlation_id_var",
    "extract_trace_context",
    "inject_trace_headers",
    "setup_tracing",
]

correlation_id_var: ContextVar[str | None] = ContextVar("haven_correlation_id", default=None)
"""Correlation id of the request or message being handled; set by the HTTP middleware."""

ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "aiokafka")
"""Third-party loggers whose own handlers are removed so their records reach ours."""

QUIETED_LOGGERS = ("httpx",)
"""Loggers held at WARNING: httpx logs each request's full URL, query string included."""

# Only W3C Trace Context: baggage is deliberately not propagated, it could carry personal data.
_PROPAGATOR = TraceContextTextMapPropagator()
_HANDLER_NAME = "haven"
# Attributes every LogRecord has; anything else on a record came from `extra=`.
# uvicorn adds `color_message` (the same text with ANSI colours) to its own records.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class TelemetrySettings(BaseSettings):
    """Telemetry configuration, read from `HAVEN_OTEL_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="HAVEN_OTEL_", extra="ignore")

    exporter: Literal["none", "otlp", "console"] = Field(
        "none", description="Where spans go; `none` keeps tracing in-process only."
    )
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces endpoint, e.g. http://otel-collector:4318/v1/traces. "
        "None lets the exporter read the standard OTEL_EXPORTER_OTLP_* variables.",
    )
    sampling_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of traces sampled, decided on the trace id: a caller's `traceparent` "
        "cannot force sampling, and every service decides the same for one trace.",
    )
    log_level: str = Field("INFO", description="Root log level.")
    log_format: Literal["json", "text"] = Field(
        "json", description="`json` for deployments, `text` for a developer's terminal."
    )


# --- logging -------------------------------------------------------------------------------


def _context_fields() -> dict[str, str | None]:
    span_context = trace.get_current_span().get_span_context()
    valid = span_context.is_valid
    return {
        "trace_id": format(span_context.trace_id, "032x") if valid else None,
        "span_id": format(span_context.span_id, "016x") if valid else None,
        "correlation_id": correlation_id_var.get(),
    }


class _ScrubbingFormatter(logging.Formatter):
    """Tracebacks without the data exceptions carry (see :func:`scrubbed_traceback`)."""

    def format(self, record: logging.LogRecord) -> str:
        record.exc_text = None  # another handler may have cached the unscrubbed text
        return super().format(record)

    def formatException(self, ei: Any) -> str:
        _, exc, _ = ei
        if exc is None:
            return super().formatException(ei)
        return scrubbed_traceback(exc).rstrip("\n")


class _JsonFormatter(_ScrubbingFormatter):
    """One JSON object per line: time, level, logger, message, service, ids, extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
            **_context_fields(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _TextFormatter(_ScrubbingFormatter):
    """Human-readable lines for local development, with the same context ids."""

    def __init__(self, service: str) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s [%(ids)s] %(message)s")
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        fields = _context_fields()
        record.ids = " ".join(f"{k}={v}" for k, v in fields.items() if v) or self.service
        return super().format(record)


class _StripQueryString(logging.Filter):
    """Removes the query string from uvicorn's access-log path (it can hold personal data)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn.access args: (client_addr, method, full_path, http_version, status_code)
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def configure_logging(service: str, settings: TelemetrySettings | None = None) -> None:
    """Send all logging to one stderr handler (JSON by default). Safe to call again.

    Run uvicorn with `log_config=None`, otherwise it installs its own handlers afterwards.
    """
    settings = settings or TelemetrySettings()
    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(existing)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    formatter = _JsonFormatter if settings.log_format == "json" else _TextFormatter
    handler.setFormatter(formatter(service))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())

    for name in ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.propagate = True
    for name in QUIETED_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _StripQueryString) for f in access.filters):
        access.addFilter(_StripQueryString())


# --- tracing -------------------------------------------------------------------------------


def sampler(ratio: float) -> Sampler:
    """Follow a parent span of this process; decide by trace id for a remote parent, so a
    caller's ``traceparent`` with the sampled flag cannot make us record (and export) its
    requests. The ratio on the trace id gives every service the same answer for one trace,
    so traces crossing Kafka stay whole."""
    by_trace_id = TraceIdRatioBased(ratio)
    return ParentBased(
        root=by_trace_id,
        remote_parent_sampled=by_trace_id,
        remote_parent_not_sampled=by_trace_id,
    )


def setup_tracing(
    service: str,
    settings: TelemetrySettings | None = None,
    *,
    extra_processors: Sequence[SpanProcessor] = (),
) -> TracerProvider:
    """Build a tracer provider for `service` and make it global unless one already is.

    `extra_processors` lets tests attach e.g. an in-memory exporter.
    """
    settings = settings or TelemetrySettings()
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service}),
        sampler=sampler(settings.sampling_ratio),
    )
    if settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint))
        )
    elif settings.exporter == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    return provider


def configure_telemetry(service: str, settings: TelemetrySettings | None = None) -> TracerProvider:
    """`configure_logging` then `setup_tracing`: what a service's `__main__` calls."""
    settings = settings or TelemetrySettings()
    configure_logging(service, settings)
    return setup_tracing(service, settings)


def inject_trace_headers() -> dict[str, str]:
    """W3C `traceparent` (and `tracestate`) of the current context; empty outside a span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def extract_trace_context(headers: Mapping[str, str | bytes]) -> Context:
    """Context to use as parent, from HTTP/Kafka headers or an outbox row's stored headers."""
    carrier = {
        key.lower(): value.decode("latin-1") if isinstance(value, bytes) else value
        for key, value in headers.items()
    }
    return _PROPAGATOR.extract(carrier)


# Exceptions whose text carries the data they were given: a database error's message holds
# the statement's parameters and PostgreSQL's DETAIL (a unique key's value: a phone, a
# document number); a validation error holds the input.
_DATA_CARRYING_MODULES = ("sqlalchemy", "asyncpg", "pydantic", "pydantic_core", "psycopg")


def _carries_data(exc: BaseException) -> bool:
    module = type(exc).__module__.split(".", 1)[0]
    return module in _DATA_CARRYING_MODULES or isinstance(exc, UnicodeError)


def scrubbed(exc: BaseException) -> str:
    """An exception named for logs, spans and dead-letter headers without its data: a
    database error as its class and SQLSTATE, another data-carrying one as its class."""
    original = getattr(exc, "orig", None)
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if original is not None:
        return f"{type(exc).__name__}({type(original).__name__}, sqlstate={sqlstate})"
    if _carries_data(exc):
        return type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def scrubbed_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and its causes, each exception's text as :func:`scrubbed`
    gives it: where it failed, not what it was given."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    chain: list[BaseException] = []
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    for position, item in enumerate(reversed(chain)):
        if position:
            parts.append("\nDuring or because of the above, another exception occurred:\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(item.__traceback__))
        parts.append(scrubbed(item) + "\n")
    return "".join(parts)


def record_exception(span: trace.Span, exc: BaseException) -> None:
    """``span.record_exception`` without the exception's data (OpenTelemetry's own records
    ``str(exc)`` and the full traceback text)."""
    span.add_event(
        "exception",
        {
            "exception.type": type(exc).__qualname__,
            "exception.message": scrubbed(exc),
            "exception.stacktrace": scrubbed_traceback(exc),
        },
    )
