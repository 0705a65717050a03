"""The test kit stays one: helpers live in tests/support/ (or an area's support module), never
in a conftest.py, and the fake clock and the token makers are not written again elsewhere."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
KIT = TESTS / "support"
JWT_MAKERS = {"issue_dev_token", "encode"}  # shared.auth's issuer, PyJWT's jwt.encode


def modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(TESTS.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def outside_kit() -> Iterator[tuple[Path, ast.Module]]:
    return ((path, tree) for path, tree in modules() if KIT not in path.parents)


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(TESTS.parent)}:{getattr(node, 'lineno', 0)}"


def test_no_module_imports_from_a_conftest() -> None:
    found = []
    for path, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(name.split(".")[-1] == "conftest" for name in names):
                found.append(where(path, node))
    assert not found, f"conftest.py holds fixtures only; import helpers from support: {found}"


def test_the_fake_clock_is_defined_once() -> None:
    found = [
        where(path, node)
        for path, tree in outside_kit()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name == "FakeClock"
    ]
    assert not found, f"use tests.support.clock.FakeClock instead of: {found}"


def _called_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        base = func.value.id if isinstance(func.value, ast.Name) else ""
        return func.attr if func.attr != "encode" or base == "jwt" else ""
    return func.id if isinstance(func, ast.Name) else ""


def _makes_tokens(node: ast.AST) -> bool:
    """Signs a JWT, or writes a Bearer header by hand."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.Call) and _called_name(inner) in JWT_MAKERS:
            return True
        if isinstance(inner, ast.JoinedStr) and any(
            isinstance(part, ast.Constant) and str(part.value).startswith("Bearer ")
            for part in inner.values
        ):
            return True
    return False


def _token_makers(tree: ast.Module) -> Iterator[ast.AST]:
    """Helpers and module constants that make tokens; a test itself may forge one (the auth
    tests do, to see it refused)."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if not node.name.startswith("test_") and _makes_tokens(node):
                yield node
        elif isinstance(node, ast.ClassDef):
            yield from (
                method
                for method in node.body
                if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef)
                and not method.name.startswith("test_")
                and _makes_tokens(method)
            )
        elif _makes_tokens(node):
            yield node


def test_tokens_are_made_only_by_the_kit() -> None:
    found = [where(path, node) for path, tree in outside_kit() for node in _token_makers(tree)]
    assert not found, f"use tests.support.tokens (token, auth_headers, bearer) instead of: {found}"


def test_the_scan_sees_what_it_forbids() -> None:
    maker = ast.parse(
        "def token(role):\n    return issue_dev_token(SETTINGS, sub='x', roles=[role])\n"
        "def header(t):\n    return {'Authorization': f'Bearer {t}'}\n"
        "ADMIN = jwt.encode({}, 'k')\n"
    )
    assert len(list(_token_makers(maker))) == 3
    forged_in_a_test = ast.parse("def test_x():\n    jwt.encode({}, 'k')\n")
    assert not list(_token_makers(forged_in_a_test))


def test_service_apps_run_only_through_the_kit() -> None:
    """One way to run a service app in a test: ``tests.support.apps.serving``."""
    found = [
        where(path, node)
        for path, tree in outside_kit()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "lifespan_context"
    ]
    assert not found, f"run the app with tests.support.apps.serving instead: {found}"
