"""Message templates: Jinja2 in a sandbox, stored per event type and language.

Templates are checked when saved — syntax, variables (only those of the event type, see
:mod:`.messages`) and attribute names (nothing private) — and rendered with
``StrictUndefined``, so a missing variable is an error, never an empty hole in a message.
A language without a template falls back to the configured fallback language (``en``).
"""

from __future__ import annotations

import functools
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin
from uuid import UUID

import sqlalchemy as sa
from jinja2 import Template as CompiledTemplate
from jinja2 import TemplateSyntaxError, meta, nodes
from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.notifications import queries
from services.notifications.domain import audits
from services.notifications.domain.errors import (
    TemplateInvalid,
    TemplateNotFound,
    UnknownMessageType,
)
from services.notifications.domain.messages import MESSAGES, MessageKind
from services.notifications.domain.sandbox import (
    RenderError,
    RenderLimitExceeded,
    Sandbox,
    stream,
)
from services.notifications.models import Template
from shared.auth import Principal
from shared.db import run
from shared.pagination import decode_cursor, encode_cursor

MAX_RENDERED_CHARS = 4000
# Distinct template texts kept compiled: a few message types x languages, plus old versions.
COMPILED_CACHE_SIZE = 256

ENVIRONMENT = Sandbox()


def kind_of(event_type: str) -> MessageKind:
    kind = MESSAGES.get(event_type)
    if kind is None:
        raise UnknownMessageType(
            f"No message is sent for {event_type!r}.", known_event_types=sorted(MESSAGES)
        )
    return kind


def check(kind: MessageKind, *, subject: str | None, body: str) -> None:
    """Raise TemplateInvalid listing every problem of the template's parts: syntax,
    variables, private attributes, and — tried on sample values of the event's fields — the
    render limits (loops, sizes, time; see :mod:`.sandbox`)."""
    errors = [
        *(_problems("subject", subject, kind) if subject is not None else []),
        *_problems("body", body, kind),
    ]
    if not errors:
        errors = [
            *(_over_limits("subject", subject, kind) if subject is not None else []),
            *_over_limits("body", body, kind),
        ]
    if errors:
        raise TemplateInvalid(
            f"The template for {kind.event_type} has {len(errors)} problem(s).",
            errors=errors,
            allowed_variables=sorted(kind.variables()),
        )


def _problems(field: str, source: str, kind: MessageKind) -> list[dict[str, Any]]:
    try:
        tree = ENVIRONMENT.parse(source)
        undeclared = meta.find_undeclared_variables(tree)  # also: unknown filters
    except TemplateSyntaxError as exc:
        return [{"field": field, "message": f"syntax error on line {exc.lineno}: {exc.message}"}]
    allowed = kind.variables() | set(ENVIRONMENT.globals)
    problems = [
        {"field": field, "message": f"unknown variable '{name}'", "variable": name}
        for name in sorted(undeclared - allowed)
    ]
    for node in tree.find_all(nodes.Getattr):
        if node.attr.startswith("_"):
            problems.append({"field": field, "message": f"private attribute '{node.attr}'"})
    return problems


def _over_limits(field: str, source: str, kind: MessageKind) -> list[dict[str, Any]]:
    """The render limits a template passes on sample values (other errors of the samples'
    making are not the template's fault: they are found, if real, when it is sent)."""
    try:
        render(source, sample_variables(kind))
    except RenderLimitExceeded as exc:
        return [{"field": field, "message": f"over the render limits: {exc}"}]
    except RenderError:
        pass
    return []


def sample_variables(kind: MessageKind) -> dict[str, Any]:
    """A value of the right shape for every variable of ``kind`` (as JSON, like a context)."""
    fields = kind.event.model_fields
    sample = {name: _sample(fields[name].annotation) for name in kind.payload_variables()}
    return {name: "X-1" for name in kind.variables()} | sample


def _sample(annotation: Any) -> Any:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return _sample(next(a for a in args if a is not type(None)))
    if origin is Literal:
        return args[0]
    if origin in (list, tuple, set, frozenset) or (origin and "Sequence" in str(origin)):
        return [_sample(args[0] if args else str)]
    if origin is dict:
        return {}
    if not isinstance(annotation, type):
        return "x"
    if issubclass(annotation, Enum):
        return next(iter(annotation)).value
    if issubclass(annotation, BaseModel):
        return {n: _sample(f.annotation) for n, f in annotation.model_fields.items()}
    samples: dict[type, Any] = {
        bool: True,
        int: 1,
        float: 1.0,
        UUID: "00000000-0000-7000-8000-000000000000",
        datetime: "2026-01-01T00:00:00Z",
        date: "2026-01-01",
    }
    return next((v for t, v in samples.items() if issubclass(annotation, t)), "x")


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compiled(source: str) -> CompiledTemplate:
    """The template compiled once per distinct text. ``from_string`` compiles on every call
    (Jinja's cache is for loaders only), which cost milliseconds of CPU per message; keyed by
    the text itself, an edited template is simply a new entry."""
    return ENVIRONMENT.from_string(source)


def render(source: str, variables: Mapping[str, Any]) -> str:
    """Render one stored template part; RenderError when it cannot be."""
    try:
        text = stream(_compiled(source), variables)
    except RenderError:
        raise
    except Exception as exc:  # undefined variable, sandbox refusal, type error, recursion...
        raise RenderError(f"{type(exc).__name__}: {exc}"[:300]) from exc
    text = text.strip()
    if len(text) > MAX_RENDERED_CHARS:
        raise RenderError(f"rendered message longer than {MAX_RENDERED_CHARS} characters")
    return text


@dataclass(frozen=True)
class Rendered:
    language: str
    subject: str | None
    body: str


@dataclass(frozen=True)
class Stored:
    """A stored template's parts, as the sender reads them."""

    language: str
    subject: str | None
    body: str


TemplateKey = tuple[str, str]  # (event_type, language)


async def stored_templates(
    *, session: AsyncSession, keys: Iterable[TemplateKey]
) -> dict[TemplateKey, Stored]:
    """The templates of ``keys`` that exist (read now, so an edit takes effect at once)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await run(
        session,
        queries.TEMPLATES,
        {
            "event_types": [event_type for event_type, _ in wanted],
            "languages": [language for _, language in wanted],
        },
    )
    return {(r.event_type, r.language): Stored(r.language, r.subject, r.body) for r in rows}


def render_stored(
    templates: Mapping[TemplateKey, Stored],
    *,
    event_type: str,
    language: str,
    fallback_language: str,
    variables: Mapping[str, Any],
) -> Rendered:
    """Render the message in ``language``, or in the fallback language when there is none."""
    template = templates.get((event_type, language)) or templates.get(
        (event_type, fallback_language)
    )
    if template is None:
        raise RenderError(f"no template for {event_type} in {language} or {fallback_language}")
    subject = render(template.subject, variables) if template.subject else None
    return Rendered(template.language, subject, render(template.body, variables))


async def render_message(
    *,
    session: AsyncSession,
    event_type: str,
    language: str,
    fallback_language: str,
    variables: Mapping[str, Any],
) -> Rendered:
    """Render one message in ``language``, or in the fallback language when there is none."""
    keys = [(event_type, language), (event_type, fallback_language)]
    return render_stored(
        await stored_templates(session=session, keys=keys),
        event_type=event_type,
        language=language,
        fallback_language=fallback_language,
        variables=variables,
    )


async def get(*, session: AsyncSession, event_type: str, language: str) -> Template:
    kind_of(event_type)
    template = await session.get(Template, (event_type, language))
    if template is None:
        raise TemplateNotFound(f"No {language!r} template for {event_type}.")
    return template


async def page(
    *, session: AsyncSession, cursor: str | None, limit: int
) -> tuple[list[Template], str | None]:
    """The stored templates of messages Haven sends, by event type and language."""
    query = select(Template).where(col(Template.event_type).in_(sorted(MESSAGES)))
    if cursor:
        event_type, language = decode_cursor(cursor, types=(str, str))
        query = query.where(
            sa.tuple_(col(Template.event_type), col(Template.language))
            > sa.tuple_(sa.literal(event_type), sa.literal(language))
        )
    query = query.order_by(col(Template.event_type), col(Template.language)).limit(limit + 1)
    found = list(await session.exec(query))
    rows = found[:limit]
    more = len(found) > limit and rows
    return rows, encode_cursor([rows[-1].event_type, rows[-1].language]) if more else None


async def put(
    *,
    session: AsyncSession,
    event_type: str,
    language: str,
    subject: str | None,
    body: str,
    principal: Principal,
    now: datetime,
) -> tuple[Template, bool]:
    """Create or replace a template after checking it (audited); return it and whether it
    is new."""
    kind = kind_of(event_type)
    check(kind, subject=subject, body=body)
    result = await run(
        session,
        queries.PUT_TEMPLATE,
        {
            "event_type": event_type,
            "language": language,
            "subject": subject,
            "body": body,
            "now": now,
            "actor": principal.sub,
        },
    )
    created = bool(result.scalar_one())
    template = await session.get(Template, (event_type, language), populate_existing=True)
    assert template is not None
    await audits.record(
        session,
        principal=principal,
        action="template.create" if created else "template.update",
        resource_type="template",
        resource_id=f"{event_type}/{language}",
    )
    return template, created
