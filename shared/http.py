"""The HTTP app factory every Haven service uses.

`create_app` gives a FastAPI app with:

- problem+json errors (`shared.problems`) and bearer authentication (`shared.auth`);
- a request body limit (413), a correlation id per request (`X-Correlation-ID`), RED metrics
  labelled by route template and a server span per request (pure ASGI middleware);
- `/healthz` (liveness), `/readyz` (readiness checks), `/metrics` (Prometheus),
  `/docs`, `/openapi.json` and, when given, `/asyncapi.json`; none of them needs a token.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

from shared.auth import Authenticator
from shared.problems import (
    PROBLEM_MEDIA_TYPE,
    PayloadTooLarge,
    ProblemDocument,
    ServiceUnavailable,
    ValidationFailed,
    ValidationProblemDocument,
    handle_unexpected_error,
    install_problem_handlers,
)
from shared.telemetry import correlation_id_var, extract_trace_context, record_exception
from shared.validation import CleanText, StrictModel

__all__ = [
    "CONTROL_CHARACTER_FREE",
    "CORRELATION_HEADER",
    "PROBLEM_RESPONSES",
    "CleanText",
    "HttpSettings",
    "ReadinessCheck",
    "StrictModel",
    "create_app",
    "problem_responses",
]

logger = logging.getLogger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"
ReadinessCheck = Callable[[], Awaitable[None]]
"""Returns when a dependency is usable, raises otherwise (e.g. `SELECT 1`)."""

_OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # not traced: probe noise
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A client's correlation id is echoed and logged, so it must be short and inert.
_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Control characters (C0, DEL, C1): refused in every path and query string parameter.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_MESSAGE = "must not contain control characters"
CONTROL_CHARACTER_FREE = r"^[^\x00-\x1f\x7f-\x9f]*$"
"""The pattern every string parameter in a path or query string matches."""

_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests handled, by route template and status class (2xx, 4xx, ...).",
    ["service", "method", "route", "status_class"],
)
_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to handle an HTTP request, by route template.",
    ["service", "method", "route"],
)
_tracer = trace.get_tracer("haven.http")


class HttpSettings(BaseSettings):
    """HTTP limits, read from `HAVEN_HTTP_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="HAVEN_HTTP_", extra="ignore")

    max_body_bytes: int = Field(1_048_576, ge=0, description="Largest request body accepted.")
    readiness_timeout_seconds: float = Field(
        2.0, gt=0, description="Time each readiness check gets before it counts as failed."
    )
    public_docs: bool = Field(
        True,
        description="Serve /docs, /openapi.json and /asyncapi.json on the API port; turn off "
        "in production (the documents are in the repository and the developer stack).",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve /metrics on this internal port only (for Prometheus), not on the "
        "API port; unset: /metrics on the API port.",
    )
    metrics_host: str = Field("0.0.0.0", description="Address of the internal metrics port.")  # noqa: S104


# --- OpenAPI -------------------------------------------------------------------------------


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries declaring problem+json bodies for `statuses`."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {
                        "$ref": "#/components/schemas/"
                        + ("ValidationProblem" if status == 422 else "Problem")
                    }
                }
            },
        }
        for status in statuses
    }


PROBLEM_RESPONSES = problem_responses(400, 401, 403, 413, 422, 500)
"""Errors any Haven route can answer; added to every router passed to `create_app`."""


def _forbid_control_characters(schema: dict[str, Any]) -> None:
    """Say in a parameter's schema what `_ControlCharacterMiddleware` enforces."""
    for branch in schema.get("anyOf", ()):
        _forbid_control_characters(branch)
    if isinstance(schema.get("items"), dict):
        _forbid_control_characters(schema["items"])
    if schema.get("type") != "string" or "enum" in schema or "const" in schema:
        return
    if "format" in schema and schema["format"] in ("uuid", "date", "date-time"):
        return
    pattern = schema.get("pattern")
    if pattern is None:
        schema["pattern"] = CONTROL_CHARACTER_FREE
    elif pattern != CONTROL_CHARACTER_FREE:
        schema.setdefault("allOf", []).append({"pattern": CONTROL_CHARACTER_FREE})


def _document_problems(app: FastAPI) -> None:
    """Add the problem schemas that `problem_responses` refers to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for model in (ProblemDocument, ValidationProblemDocument):
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[str(schema["title"])] = schema
            # Every documented route needs a bearer token (the probes and documents are not
            # in the document); saying so lets clients and the fuzzer tell 401/403 apart.
            document["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
            document["security"] = [{"bearer": []}]
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    for parameter in operation.get("parameters", ()):
                        if parameter.get("in") in ("path", "query") and "schema" in parameter:
                            _forbid_control_characters(parameter["schema"])
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


# --- middleware ----------------------------------------------------------------------------


def _route_template(scope: Scope) -> str:
    """`/v1/households/{household_id}` for the matched route, "unmatched" otherwise."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else "unmatched"


class _ObservabilityMiddleware:
    """Correlation id, RED metrics and a server span per request; the last-resort 500."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        incoming = headers.get(CORRELATION_HEADER, "")
        correlation_id = incoming if _CORRELATION_ID.fullmatch(incoming) else str(uuid.uuid4())
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
        span = (
            trace.INVALID_SPAN
            if scope["path"] in _OPERATIONS_PATHS
            else _tracer.start_span(
                method, context=extract_trace_context(headers), kind=trace.SpanKind.SERVER
            )
        )
        status = 500
        response_started = False

        async def send_with_context(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started, status = True, message["status"]
                MutableHeaders(scope=message)[CORRELATION_HEADER] = correlation_id
            await send(message)

        token = correlation_id_var.set(correlation_id)
        started = time.perf_counter()
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                try:
                    await self.app(scope, receive, send_with_context)
                except Exception as exc:
                    record_exception(span, exc)
                    if response_started:
                        raise
                    response = await handle_unexpected_error(Request(scope, receive), exc)
                    await response(scope, receive, send_with_context)
        finally:
            route = _route_template(scope)
            elapsed = time.perf_counter() - started
            _REQUESTS.labels(self.service, method, route, f"{status // 100}xx").inc()
            _DURATION.labels(self.service, method, route).observe(elapsed)
            span.update_name(f"{method} {route}")
            span.set_attributes(
                {
                    "http.request.method": method,
                    "http.route": route,
                    "http.response.status_code": status,
                }
            )
            if status >= 500:
                span.set_status(trace.StatusCode.ERROR)
            span.end()
            correlation_id_var.reset(token)


class _ControlCharacterMiddleware:
    """422 for a path or query string holding a control character (NUL, newline, ...).

    No Haven parameter is free text with line breaks, and a NUL reaches PostgreSQL as an
    error (a 500) or a log line as a forged record; the OpenAPI documents say the same with
    `CONTROL_CHARACTER_FREE` on every string parameter in the path and the query.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qsl(
            scope.get("query_string", b"").decode(errors="replace"), keep_blank_values=True
        )
        fields = ["path"] if _CONTROL_CHARACTER.search(scope["path"]) else []
        fields += [
            f"query.{_CONTROL_CHARACTER.sub('?', name)}"
            for name, value in query
            if _CONTROL_CHARACTER.search(name + value)
        ]
        if not fields:
            await self.app(scope, receive, send)
            return
        count = len(fields)
        detail = "1 field needs correcting." if count == 1 else f"{count} fields need correcting."
        errors = [
            {"field": field, "message": _CONTROL_MESSAGE, "type": "control_character"}
            for field in fields
        ]
        problem = ValidationFailed(detail, errors=errors)
        instance = _CONTROL_CHARACTER.sub("?", scope["path"])
        await problem.to_response(instance)(scope, receive, send)


class _BodyTooLarge(StarletteHTTPException):
    """Raised from `receive`; an HTTPException so FastAPI's body parsing lets it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than the {limit} bytes accepted.")


class _BodyLimitMiddleware:
    """413 when Content-Length announces too much, or when a streamed body grows too big."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:  # read outside FastAPI's exception handling
            if response_started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = PayloadTooLarge(str(_BodyTooLarge(self.limit).detail))
        await problem.to_response(scope["path"])(scope, receive, send)


# --- operational endpoints -----------------------------------------------------------------


async def _run_check(name: str, check: ReadinessCheck, seconds: float) -> str:
    try:
        with anyio.fail_after(seconds):
            await check()
    except TimeoutError:
        logger.warning("Readiness check %r timed out after %ss", name, seconds)
        return "timeout"
    except Exception:
        logger.warning("Readiness check %r failed", name, exc_info=True)
        return "failed"
    return "ok"


def _operations_router(
    checks: Mapping[str, ReadinessCheck],
    settings: HttpSettings,
    asyncapi_document: Callable[[], dict[str, Any]] | None,
) -> APIRouter:
    timeout = settings.readiness_timeout_seconds
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> Response:
        results: dict[str, str] = {}

        async def run(name: str, check: ReadinessCheck) -> None:
            results[name] = await _run_check(name, check, timeout)

        async with anyio.create_task_group() as group:
            for name, check in checks.items():
                group.start_soon(run, name, check)
        failing = sorted(name for name, result in results.items() if result != "ok")
        if failing:
            problem = ServiceUnavailable(
                f"Not ready: {', '.join(failing)}.", checks=results, failing=failing
            )
            return problem.to_response(request.url.path)
        return JSONResponse({"status": "ready", "checks": results})

    if settings.metrics_port is None:

        @router.get("/metrics")
        async def metrics() -> Response:
            return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    if asyncapi_document is not None and settings.public_docs:
        document = asyncapi_document

        @router.get("/asyncapi.json")
        async def asyncapi() -> dict[str, Any]:
            return document()

    return router


# --- factory -------------------------------------------------------------------------------


def create_app(
    *,
    service: str,
    title: str,
    version: str,
    routers: Sequence[APIRouter],
    lifespan: Lifespan[FastAPI] | None = None,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    asyncapi_document: Callable[[], dict[str, Any]] | None = None,
    settings: HttpSettings | None = None,
    authenticator: Authenticator | None = None,
) -> FastAPI:
    """A service's FastAPI app, with Haven's errors, auth, limits and observability."""
    settings = settings or HttpSettings()
    docs = settings.public_docs
    app = FastAPI(
        title=title,
        version=version,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        # FastAPI's built-in OpenTelemetry would add a second server span and records the raw
        # query string (`url.query`), which can hold personal data; ours records neither.
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
        middleware=[
            Middleware(_ObservabilityMiddleware, service=service),
            Middleware(_ControlCharacterMiddleware),
            Middleware(_BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes),
        ],
    )
    app.state.service = service
    app.state.authenticator = authenticator or Authenticator()
    install_problem_handlers(app)
    app.include_router(_operations_router(readiness_checks or {}, settings, asyncapi_document))
    for router in routers:
        app.include_router(router, responses=PROBLEM_RESPONSES)
    _document_problems(app)
    return app
