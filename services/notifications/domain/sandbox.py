"""The Jinja2 sandbox templates render in, with limits: output size, loop iterations, the
size of any value built, and time.

Templates are written by admins, so a template must not be able to stall or exhaust the
sender: every ``for`` loop and every printed or concatenated value passes through a guard
that counts against the render's budget (``render_budget``), operators and calls that can
build large values are checked before they run, and filters and globals that pad, repeat
or generate text without bound are not available. A template over a limit raises
``RenderLimitExceeded`` (refused when saved, the notification given up when sent).
"""

from __future__ import annotations

import contextlib
import operator
import time
from collections.abc import Iterable, Iterator, Sized
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes, pass_environment, pass_eval_context
from jinja2.filters import FILTERS as DEFAULT_FILTERS
from jinja2.nodes import EvalContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_OUTPUT_CHARS = 20_000  # raw output of one template part, before it is stripped
MAX_LOOP_ITERATIONS = 1_000  # every loop of one render together
MAX_VALUE_CHARS = 100_000  # any one string or sequence built, printed or passed to a call
MAX_PRODUCED_CHARS = 200_000  # all values printed or concatenated in one render together
MAX_INT_BITS = 4_096  # integers built by * and **
MAX_RENDER_SECONDS = 0.5

LOOP_GUARD, VALUE_GUARD = "_haven_loop", "_haven_value"

# Filters that only read, reorder or shorten; ``join``, ``replace`` and ``sum`` are wrapped
# below. Left out: center, indent, format, wordwrap, batch, slice, tojson, pprint, urlize,
# xmlattr, random (padding, repetition or output without bound, or not repeatable).
SAFE_FILTERS = frozenset(
    {
        "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape",
        "filesizeformat", "first", "float", "forceescape", "groupby", "int", "items", "last",
        "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "reverse",
        "round", "safe", "select", "selectattr", "sort", "string", "striptags", "title",
        "trim", "truncate", "unique", "upper", "urlencode", "wordcount",
    }
)  # fmt: skip
# String methods that pad, repeat or format without bound.
UNSAFE_STR_METHODS = frozenset(
    {"center", "expandtabs", "format", "format_map", "join", "ljust", "replace", "rjust",
     "translate", "zfill"}
)  # fmt: skip


class RenderError(Exception):
    """A stored template could not produce a message (names only, never values)."""


class RenderLimitExceeded(RenderError):
    """The template went over one of the render limits."""


@dataclass
class _Budget:
    deadline: float
    iterations: int = 0
    produced: int = 0


_BUDGET: ContextVar[_Budget | None] = ContextVar("haven_render_budget", default=None)


@contextlib.contextmanager
def render_budget() -> Iterator[None]:
    """One render's limits (loops, values, time) for the guards called inside it."""
    token = _BUDGET.set(_Budget(deadline=time.monotonic() + MAX_RENDER_SECONDS))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:
        raise RenderError("templates render only inside a render budget")
    if time.monotonic() > budget.deadline:
        raise RenderLimitExceeded(f"rendering took longer than {MAX_RENDER_SECONDS} s")
    return budget


def _check_size(value: Any) -> None:
    if isinstance(value, str | bytes | list | tuple | dict | set | frozenset):
        if len(value) > MAX_VALUE_CHARS:
            raise RenderLimitExceeded(f"a value longer than {MAX_VALUE_CHARS}")
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise RenderLimitExceeded("an integer too large")


def _loop(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _budget()
    for item in iterable:
        budget.iterations += 1
        if budget.iterations > MAX_LOOP_ITERATIONS:
            raise RenderLimitExceeded(f"more than {MAX_LOOP_ITERATIONS} loop iterations")
        _budget()  # the clock
        yield item


def _value(value: Any) -> Any:
    budget = _budget()
    _check_size(value)
    if isinstance(value, str):
        budget.produced += len(value)
        if budget.produced > MAX_PRODUCED_CHARS:
            raise RenderLimitExceeded(f"more than {MAX_PRODUCED_CHARS} characters built")
    return value


def _size(value: Any) -> int:
    return len(value) if isinstance(value, Sized) else 0


@pass_eval_context
def _join(eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    items = list(_loop_free(value))
    estimate = len(str(d)) * len(items) + sum(len(str(item)) for item in items)
    if estimate > MAX_VALUE_CHARS:
        raise RenderLimitExceeded(f"a joined text longer than {MAX_VALUE_CHARS}")
    joined: str = DEFAULT_FILTERS["join"](eval_ctx, items, d, attribute)
    return joined


def _loop_free(value: Iterable[Any]) -> Iterator[Any]:
    for count, item in enumerate(value):
        if count >= MAX_VALUE_CHARS:
            raise RenderLimitExceeded(f"a sequence longer than {MAX_VALUE_CHARS}")
        yield item


@pass_eval_context
def _replace(eval_ctx: EvalContext, s: Any, old: str, new: str, count: int | None = None) -> str:
    text = str(s)
    found = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    if len(text) + found * (len(new) - len(old)) > MAX_VALUE_CHARS:
        raise RenderLimitExceeded(f"a replaced text longer than {MAX_VALUE_CHARS}")
    replaced: str = DEFAULT_FILTERS["replace"](eval_ctx, s, old, new, count)
    return replaced


@pass_environment
def _sum(environment: Any, iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
    if not isinstance(start, int | float) or isinstance(start, bool):
        raise RenderLimitExceeded("sum adds numbers only")
    return DEFAULT_FILTERS["sum"](environment, iterable, attribute, start)


def _guard(node: nodes.Node, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


class _Guards(NodeTransformer):
    """Puts every loop's iterable and every printed or concatenated value through a guard."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        if node.recursive:
            raise TemplateSyntaxError("recursive loops are not allowed", node.lineno)
        node.iter = _guard(node.iter, LOOP_GUARD)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _guard(node, VALUE_GUARD)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [
            n if isinstance(n, nodes.TemplateData) else _guard(n, VALUE_GUARD) for n in node.nodes
        ]
        return node


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox (no private attributes, no changing lists or dicts), plus
    the limits above."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self) -> None:
        super().__init__(
            undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
        )
        self.globals = {"range": self.globals["range"], "dict": dict}
        self.filters = {name: DEFAULT_FILTERS[name] for name in SAFE_FILTERS} | {
            "join": _join,
            "replace": _replace,
            "sum": _sum,
            LOOP_GUARD: _loop,
            VALUE_GUARD: _value,
        }

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        guarded: nodes.Template = _Guards().visit(tree)
        return guarded

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        _budget()
        if operator_name == "%" and isinstance(left, str):
            raise RenderLimitExceeded("string formatting with % is not allowed")
        if operator_name == "**":
            if isinstance(right, int) and abs(right) > 32:
                raise RenderLimitExceeded("exponent too large")
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() * max(right, 0) > MAX_INT_BITS
            ):
                raise RenderLimitExceeded("an integer too large")
            return operator.pow(left, right)
        if operator_name == "*":
            _check_product(left, right)
            return operator.mul(left, right)
        if operator_name == "+":
            if _size(left) + _size(right) > MAX_VALUE_CHARS:
                raise RenderLimitExceeded(f"a value longer than {MAX_VALUE_CHARS}")
            return operator.add(left, right)
        return operator.mod(left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _budget()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str) and getattr(__obj, "__name__", "") in UNSAFE_STR_METHODS:
            raise RenderLimitExceeded(f"the string method {__obj.__name__} is not allowed")
        for argument in (*args, *kwargs.values()):
            _check_size(argument)
            if isinstance(argument, int) and abs(argument) > MAX_VALUE_CHARS:
                raise RenderLimitExceeded(f"a number above {MAX_VALUE_CHARS} passed to a call")
        return super().call(__context, __obj, *args, **kwargs)


def _check_product(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise RenderLimitExceeded("an integer too large")
        return
    times, sequence = (right, left) if isinstance(right, int) else (left, right)
    if isinstance(times, int) and _size(sequence) * max(times, 0) > MAX_VALUE_CHARS:
        raise RenderLimitExceeded(f"a value longer than {MAX_VALUE_CHARS}")


def stream(template: Any, variables: Any) -> str:
    """Render ``template`` inside a budget, stopping once the output passes its limit."""
    parts: list[str] = []
    produced = 0
    with render_budget():
        for chunk in template.generate(variables):
            produced += len(chunk)
            if produced > MAX_OUTPUT_CHARS:
                raise RenderLimitExceeded(f"output longer than {MAX_OUTPUT_CHARS} characters")
            parts.append(chunk)
    return "".join(parts)
