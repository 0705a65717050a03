"""RFC 9457 problem details: Haven's errors as values with meaning.

Domain code raises a `Problem` subclass that names what went wrong::

    class InsufficientStock(Conflict):
        type_slug = "insufficient-stock"
        title = "Not enough stock"

    raise InsufficientStock("Only 3 of 5 kits left at this site", shortfalls=[...])

`install_problem_handlers` is the one place where errors become HTTP responses. Every error
body is `application/problem+json` with `type` = `urn:haven:problem:<slug>`, `title`,
`status`, `detail`, `instance` (the request path, never the query string) and the
problem's extensions as extra members.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.telemetry import correlation_id_var

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "BadRequest",
    "Conflict",
    "FieldError",
    "Forbidden",
    "InvalidJson",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "PreconditionRequired",
    "Problem",
    "ProblemDocument",
    "ProblemResponse",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableContent",
    "UnsupportedMediaType",
    "ValidationFailed",
    "ValidationProblemDocument",
    "handle_unexpected_error",
    "install_problem_handlers",
    "validation_problem",
]

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:haven:problem:"
_RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")

logger = logging.getLogger(__name__)


class ProblemResponse(JSONResponse):
    """A JSON response with the `application/problem+json` media type."""

    media_type = PROBLEM_MEDIA_TYPE


class Problem(Exception):
    """Base of every error that maps to an HTTP status.

    Subclasses set `status`, `type_slug` and `title` (the same for every occurrence);
    an instance carries a `detail` (this occurrence, readable by a field worker), optional
    `extensions` (extra JSON members, given as keyword arguments) and response `headers`.
    """

    status: int = 500
    type_slug: str = "internal-error"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        clashes = _RESERVED_MEMBERS & extensions.keys()
        if clashes:
            raise TypeError(f"problem extensions may not redefine {sorted(clashes)}")
        self.detail: str = detail or self.title
        self.extensions: dict[str, Any] = extensions
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.detail)

    @classmethod
    def for_status(
        cls, status: int, detail: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Problem:
        """The problem for a bare HTTP status (e.g. starlette's 404/405)."""
        known = _BY_STATUS.get(status)
        if known is not None:
            return known(detail, headers=headers)
        problem = Problem(detail, headers=headers)
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        problem.status = status
        problem.title = phrase
        problem.type_slug = phrase.lower().replace(" ", "-")
        problem.detail = detail or phrase
        return problem

    @property
    def type_uri(self) -> str:
        return TYPE_PREFIX + self.type_slug

    def to_body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            body["instance"] = instance
        body.update(jsonable_encoder(self.extensions))
        return body

    def to_response(self, instance: str | None = None) -> ProblemResponse:
        return ProblemResponse(
            self.to_body(instance), status_code=self.status, headers=self.headers or None
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


class BadRequest(Problem):
    status, type_slug, title = 400, "bad-request", "Bad request"


class Unauthorized(Problem):
    status, type_slug, title = 401, "unauthorized", "Authentication required"


class Forbidden(Problem):
    status, type_slug, title = 403, "forbidden", "Not allowed"


class NotFound(Problem):
    status, type_slug, title = 404, "not-found", "Not found"


class NotInYourSites(NotFound):
    """A resource of a site the caller's token does not cover.

    Answered exactly like NotFound, so its existence is not revealed, but audited as a
    refused request.
    """


class Conflict(Problem):
    status, type_slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(Problem):
    status, type_slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(Problem):
    status, type_slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(Problem):
    status, type_slug, title = 415, "unsupported-media-type", "Unsupported media type"


class UnprocessableContent(Problem):
    """A 422: always with `errors` (the documented ValidationProblem shape), empty when the
    rule is about the request as a whole rather than one field."""

    status, type_slug, title = 422, "unprocessable-content", "Unprocessable content"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        extensions.setdefault("errors", [])
        super().__init__(detail, headers=headers, **extensions)


class PreconditionRequired(Problem):
    status, type_slug, title = 428, "precondition-required", "Precondition required"


class TooManyRequests(Problem):
    status, type_slug, title = 429, "too-many-requests", "Too many requests"


class ServiceUnavailable(Problem):
    status, type_slug, title = 503, "service-unavailable", "Service unavailable"


class InvalidJson(BadRequest):
    type_slug, title = "invalid-json", "Malformed JSON"


class ValidationFailed(UnprocessableContent):
    """The request was well-formed but some fields are missing or invalid (see `errors`)."""

    type_slug, title = "validation-failed", "Invalid request"


_BY_STATUS: dict[int, type[Problem]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
        UnsupportedMediaType,
        UnprocessableContent,
        PreconditionRequired,
        TooManyRequests,
        ServiceUnavailable,
    )
}


# --- documents, for OpenAPI ------------------------------------------------------------------


class ProblemDocument(BaseModel):
    """RFC 9457 problem details; a problem's extensions appear as extra members."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(examples=["urn:haven:problem:not-found"])
    title: str
    status: int
    detail: str
    instance: str | None = None


class FieldError(BaseModel):
    field: str = Field(description="Dotted path in the body, e.g. `members[0].given_name`.")
    message: str
    type: str = Field(description="Machine-readable error kind, e.g. `missing`.")


class ValidationProblemDocument(ProblemDocument):
    model_config = ConfigDict(title="ValidationProblem")

    errors: list[FieldError]


# --- mapping -------------------------------------------------------------------------------


def _field_path(loc: Sequence[str | int]) -> str:
    """`("body", "members", 0, "given_name")` -> `members[0].given_name`."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    message = str(error.get("msg", "invalid value"))
    for prefix in _PYDANTIC_PREFIXES:
        message = message.removeprefix(prefix)
    return message


def validation_problem(exc: RequestValidationError) -> Problem:
    """400 `invalid-json` for unparsable bodies, else 422 with one entry per field."""
    errors = exc.errors()
    for error in errors:
        if error["type"] == "json_invalid":
            reason = error.get("ctx", {}).get("error", "syntax error")
            position = error["loc"][-1] if error.get("loc") else None
            return InvalidJson(
                f"The request body is not valid JSON ({reason} at character {position})."
            )
    fields = [
        {"field": _field_path(e["loc"]), "message": _message(e), "type": e["type"]} for e in errors
    ]
    count = len(fields)
    detail = "1 field needs correcting." if count == 1 else f"{count} fields need correcting."
    return ValidationFailed(detail, errors=fields)


async def _problem_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    if exc.status >= 500:
        logger.warning("%s on %s %s: %s", exc.type_slug, request.method, request.url.path, exc)
    return exc.to_response(request.url.path)


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_problem(exc).to_response(request.url.path)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at this request's path.

    Starlette's 405 names only the methods of the first route whose path matched, so
    `GET /v1/sites` and `POST /v1/sites` (two routes) would each advertise one method.
    """
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # RFC 9110: a 405 lists every method the resource supports
        headers["Allow"] = ", ".join(allowed_methods(request))
    problem = Problem.for_status(exc.status_code, detail, headers)
    return problem.to_response(request.url.path)


async def handle_unexpected_error(request: Request, exc: Exception) -> Response:
    """500 with a generic detail; the exception is logged with its traceback, never sent."""
    logger.error(
        "Unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    problem = Problem(
        "Something went wrong on our side. If it keeps happening, report it with the "
        "correlation id."
    )
    correlation_id = correlation_id_var.get()
    if correlation_id:
        problem.extensions["correlation_id"] = correlation_id
    return problem.to_response(request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error to problem+json: the one place where that happens."""
    app.add_exception_handler(Problem, _problem_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(Exception, handle_unexpected_error)
