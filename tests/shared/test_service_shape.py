"""Every service has the shape of docs/architecture.md, "The shape of a service": the same
files for the same roles, its problems in domain/errors.py, no god modules or functions; and
shared/, haven/ and bench/ have no god modules or functions either."""

from __future__ import annotations

import ast
import importlib
import itertools
import pkgutil
import re
from pathlib import Path

import pytest

import shared
from shared.problems import Problem

ROOT = Path(__file__).resolve().parents[2]
SERVICES_DIR = ROOT / "services"
README_SECTIONS = ["What it owns", "API", "Events in/out", "Rules", "Settings", "Operations"]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
PLATFORM_TREES = ("shared", "haven", "bench")
"""The code outside services/ that the size limits cover too."""
GENERATED_MARKERS = ("@generated", "do not edit")
"""A module whose first lines say one of these (any case) is generated, not written."""
GENERATED_HEAD_LINES = 5

SERVICES = sorted(
    path.name
    for path in SERVICES_DIR.iterdir()
    if path.is_dir() and ((path / "__main__.py").exists() or (path / "service.py").exists())
)


def _one_of(service: Path, *names: str) -> bool:
    return any((service / name).exists() for name in names)


REQUIRED: dict[str, tuple[str, ...]] = {
    "README.md": ("README.md",),
    "__init__.py": ("__init__.py",),
    "__main__.py": ("__main__.py",),
    "service.py": ("service.py",),
    "settings.py": ("settings.py",),
    "api.py or api/__init__.py": ("api.py", "api/__init__.py"),
    "handlers.py": ("handlers.py",),
    "models.py or models/__init__.py": ("models.py", "models/__init__.py"),
    "queries.py": ("queries.py",),
    "domain/errors.py": ("domain/errors.py",),
    "migrations/": ("migrations",),
}


def _modules(service: str) -> list[Path]:
    """The service's Python modules, its Alembic migrations excepted."""
    base = SERVICES_DIR / service
    return sorted(p for p in base.rglob("*.py") if "migrations" not in p.relative_to(base).parts)


def _is_generated(path: Path) -> bool:
    """In a ``generated`` directory, or marked as generated in its first lines."""
    if "generated" in path.relative_to(ROOT).parts[:-1]:
        return True
    with path.open(encoding="utf-8") as handle:
        head = "".join(itertools.islice(handle, GENERATED_HEAD_LINES))
    return any(marker in head.lower() for marker in GENERATED_MARKERS)


def _platform_modules(tree: str) -> list[Path]:
    """The Python modules under ``tree``, migrations and generated files excepted."""
    base = ROOT / tree
    return sorted(
        p
        for p in base.rglob("*.py")
        if "migrations" not in p.relative_to(base).parts[:-1] and not _is_generated(p)
    )


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _modules_over_the_limit(paths: list[Path]) -> dict[str, int]:
    """Each module longer than MAX_MODULE_LINES, with its number of lines."""
    return {
        _relative(path): lines
        for path in paths
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }


def _functions_over_the_limit(paths: list[Path]) -> dict[str, int]:
    """Each function longer than MAX_FUNCTION_LINES, as ``path:line name``, with its length."""
    return {
        f"{_relative(path)}:{node.lineno} {node.name}": length
        for path in paths
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (length := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    }


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def test_there_are_services() -> None:
    assert len(SERVICES) >= 4, SERVICES


def test_the_file_set(service: str) -> None:
    base = SERVICES_DIR / service
    missing = [role for role, names in REQUIRED.items() if not _one_of(base, *names)]
    assert missing == [], f"services/{service} lacks {missing}"


def test_the_readme_has_the_six_sections_in_order(service: str) -> None:
    readme = SERVICES_DIR / service / "README.md"
    assert readme.exists(), f"services/{service}/README.md is missing"
    sections = re.findall(r"^## +(.+?)\s*$", readme.read_text(encoding="utf-8"), re.M)
    assert sections == README_SECTIONS, f"services/{service}/README.md has sections {sections}"


def test_main_only_runs_the_definition(service: str) -> None:
    main = SERVICES_DIR / service / "__main__.py"
    assert main.exists(), f"services/{service}/__main__.py is missing"
    body = ast.parse(main.read_text(encoding="utf-8")).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # a docstring is welcome
    expected = ast.parse(
        f"from services.{service}.service import DEFINITION\n"
        "from shared.service import run\n"
        'if __name__ == "__main__":\n'
        "    run(DEFINITION)\n"
    ).body
    assert [ast.dump(n) for n in body] == [ast.dump(n) for n in expected], (
        f"services/{service}/__main__.py must import DEFINITION and run(DEFINITION) only"
    )


def test_jobs_module_if_and_only_if_the_definition_has_jobs(service: str) -> None:
    definition = getattr(importlib.import_module(f"services.{service}.service"), "DEFINITION", None)
    assert definition is not None, f"services/{service}/service.py defines no DEFINITION"
    has_jobs = bool(definition.jobs)
    has_module = (SERVICES_DIR / service / "jobs.py").exists()
    assert has_module == has_jobs, (
        f"services/{service}: DEFINITION has {len(definition.jobs)} job(s) "
        f"but jobs.py {'exists' if has_module else 'is missing'}"
    )


def _shared_problem_names() -> set[str]:
    """The names of Problem and of every Problem subclass shared/ defines."""
    for module in pkgutil.walk_packages(shared.__path__, "shared."):
        importlib.import_module(module.name)
    names, pending = set(), [Problem]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("shared."):
            names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return names


def _base_names(node: ast.ClassDef) -> set[str]:
    names = set()
    for base in node.bases:
        if isinstance(base, ast.Name):
            names.add(base.id)
        elif isinstance(base, ast.Attribute):
            names.add(base.attr)
    return names


def test_problems_are_defined_in_domain_errors_only(service: str) -> None:
    base = SERVICES_DIR / service
    errors = base / "domain" / "errors.py"
    classes = [
        (path, node)
        for path in _modules(service)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    ]
    problems = _shared_problem_names()
    # the service's own problems, and theirs (subclasses of subclasses), until none is added
    while True:
        more = {node.name for _, node in classes if _base_names(node) & problems} - problems
        if not more:
            break
        problems |= more
    outside = sorted(
        f"{_relative(path)}:{node.lineno} {node.name}"
        for path, node in classes
        if path != errors and _base_names(node) & problems
    )
    assert outside == [], f"Problems outside services/{service}/domain/errors.py: {outside}"


def test_no_module_over_500_lines(service: str) -> None:
    too_long = _modules_over_the_limit(_modules(service))
    assert too_long == {}, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def test_no_function_over_80_lines(service: str) -> None:
    too_long = _functions_over_the_limit(_modules(service))
    assert too_long == {}, f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"


@pytest.mark.parametrize("tree", PLATFORM_TREES)
def test_the_platform_trees_have_modules(tree: str) -> None:
    assert _platform_modules(tree), f"{tree}/ has no Python modules to check"


@pytest.mark.parametrize("tree", PLATFORM_TREES)
def test_no_platform_module_over_500_lines(tree: str) -> None:
    too_long = _modules_over_the_limit(_platform_modules(tree))
    assert too_long == {}, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


@pytest.mark.parametrize("tree", PLATFORM_TREES)
def test_no_platform_function_over_80_lines(tree: str) -> None:
    too_long = _functions_over_the_limit(_platform_modules(tree))
    assert too_long == {}, f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"
