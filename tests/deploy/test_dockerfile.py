"""The Dockerfile, read statically (no Docker engine runs the tests): multi-stage, a pinned
slim Python, dependencies from uv.lock, nothing to build with and no root at run time."""

from __future__ import annotations

import re
import tomllib

import pytest

from haven.deploy import CONTAINER_PORT
from shared.events.catalog import SERVICES
from tests.deploy.manifests import ROOT

Instruction = tuple[str, str]  # (KEYWORD, arguments)


def _instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append(current.strip())
        current = ""
    return [(i.split(None, 1)[0].upper(), i.split(None, 1)[1]) for i in logical]


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return _instructions((ROOT / "Dockerfile").read_text())


def _stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _args(instructions: list[Instruction]) -> dict[str, str]:
    return dict(
        arg.split("=", 1) for keyword, arg in instructions if keyword == "ARG" and "=" in arg
    )


def test_the_final_stage_is_a_pinned_slim_python_of_the_project(
    instructions: list[Instruction],
) -> None:
    stages = _stages(instructions)
    assert len(stages) >= 2, "multi-stage"
    base = stages[-1][0][1].split()[0]
    image = _args(instructions).get(base.strip("${}"), base)
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-[a-z]+", image)
    assert match, f"the Python base must be pinned by version: {image}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    minimum = re.search(r"(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert minimum and match.group(1, 2) == minimum.group(1, 2)


def test_dependencies_come_from_the_lock_with_the_makefiles_uv(
    instructions: list[Instruction],
) -> None:
    syncs = [arg for keyword, arg in instructions if keyword == "RUN" and "uv sync" in arg]
    assert syncs
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync, sync
        # no dependency group (bench, the local stack's `local`) in the image, and no need to
        # leave single packages out by hand
        assert "--no-default-groups" in sync, sync
        assert "--no-install-package" not in sync, sync
    assert any("uv.lock" in arg for keyword, arg in instructions if keyword == "COPY")
    uv_images = [
        arg.split()[0]
        for keyword, arg in instructions
        if keyword == "FROM" and "astral-sh/uv" in arg
    ]
    make_uv = re.search(r"^UV_VERSION := (\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert make_uv and uv_images == [f"ghcr.io/astral-sh/uv:{make_uv.group(1)}"]


def test_the_runtime_stage_has_no_build_tools_and_no_root(
    instructions: list[Instruction],
) -> None:
    runtime = _stages(instructions)[-1]
    text = "\n".join(f"{k} {a}" for k, a in runtime)
    for tool in ("apt-get install", "gcc", "build-essential", "uv sync", "pip install", "/uv "):
        assert tool not in text, f"runtime stage contains {tool!r}"
    users = [arg for keyword, arg in runtime if keyword == "USER"]
    assert users, "the runtime stage sets a USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root user (runAsNonRoot can check it)"
    copies = [arg for keyword, arg in runtime if keyword == "COPY"]
    assert copies == ["--from=build /app/.venv /app/.venv"], "only the virtualenv is copied"


def test_healthcheck_and_one_image_for_every_service(instructions: list[Instruction]) -> None:
    runtime = _stages(instructions)[-1]
    (healthcheck,) = [arg for keyword, arg in runtime if keyword == "HEALTHCHECK"]
    assert f"127.0.0.1:{CONTAINER_PORT}/healthz" in healthcheck
    env = " ".join(arg for keyword, arg in runtime if keyword == "ENV")
    for service in SERVICES:
        assert f"HAVEN_{service.upper()}_HTTP_PORT={CONTAINER_PORT}" in env
        assert f"HAVEN_{service.upper()}_HTTP_HOST=0.0.0.0" in env
    commands = " ".join(arg for keyword, arg in runtime if keyword in {"CMD", "ENTRYPOINT"})
    assert not any(f"services.{s}" in commands for s in SERVICES), "the command selects it"


def test_dockerignore_lets_in_only_the_sources() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "README.md", "shared", "services", "haven"}
