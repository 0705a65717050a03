"""Sampling profiles of a service while a scenario loads it (``--profile``), with py-spy.

py-spy attaches from outside (no change to the service, ~100 samples/s), writes collapsed
stacks, and :func:`summarize_collapsed` turns them into where the time goes: the functions
most often on the stack (inclusive), the ones most often on top (self), and a breakdown by
library.
"""

from __future__ import annotations

import collections
import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SAMPLE_RATE = 100
STOP_TIMEOUT_SECONDS = 30
TOP = 25
_FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")
# Which part of the system a frame belongs to, first match wins (most specific first).
CATEGORIES = (
    ("asyncpg", "/asyncpg/"),
    ("sqlalchemy", "/sqlalchemy/"),
    ("sqlmodel", "/sqlmodel/"),
    ("aiokafka", "/aiokafka/"),
    ("faststream", "/faststream/"),
    ("pydantic", "/pydantic"),
    ("fastapi/starlette", "/starlette/"),
    ("fastapi/starlette", "/fastapi/"),
    ("uvicorn/httptools", "/uvicorn/"),
    ("opentelemetry", "/opentelemetry/"),
    ("prometheus", "/prometheus_client/"),
    ("jwt/crypto", "/jwt/"),
    ("name keys (translit, jellyfish, anyascii)", "/translitua/"),
    ("name keys (translit, jellyfish, anyascii)", "/jellyfish/"),
    ("name keys (translit, jellyfish, anyascii)", "/anyascii/"),
    ("rapidfuzz", "/rapidfuzz/"),
    ("json", "/json/"),
    ("logging", "/logging/"),
    ("asyncio event loop", "/asyncio/"),
    ("haven services", "services/"),
    ("haven shared", "shared/"),
)


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter, or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def profiled(pid: int, output: Path, *, enabled: bool) -> Iterator[None]:
    """Record ``pid`` with py-spy for as long as the block runs (no-op unless enabled)."""
    executable = py_spy() if enabled else None
    if executable is None:
        yield
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    recorder = subprocess.Popen(  # noqa: S603 - fixed argv, our own pid
        [
            executable, "record", "--pid", str(pid), "--rate", str(SAMPLE_RATE),
            "--format", "raw", "--output", str(output), "--nonblocking", "--duration", "3600",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
        try:
            recorder.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()
    if output.exists():
        summary = summarize_collapsed(output.read_text())
        output.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")


def category(frame_file: str) -> str:
    for name, marker in CATEGORIES:
        if marker in frame_file:
            return name
    return "other"


def summarize_collapsed(text: str, top: int = TOP) -> dict[str, Any]:
    """Inclusive and self sample shares per function, and self shares per category, from
    py-spy's raw (collapsed) output: one ``frame;frame;...;frame count`` line per stack."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    by_category: collections.Counter[str] = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [frame for frame in stack.split(";") if frame]
        for frame in set(frames):
            inclusive[_short(frame)] += count
        if frames:
            own[_short(frames[-1])] += count
            by_category[_category_of(frames)] += count

    def shares(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return (
            [(name, round(n / total, 4)) for name, n in counter.most_common(top)] if total else []
        )

    return {
        "samples": total,
        "inclusive": shares(inclusive),
        "self": shares(own),
        "self_by_category": shares(by_category),
    }


def _short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")
    for anchor in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if anchor in path:
            path = path.split(anchor, 1)[1]
            break
    return f"{match.group('function')} ({path})"


def _category_of(frames: list[str]) -> str:
    """The category of the innermost frame that is not the standard library's plumbing."""
    for frame in reversed(frames):
        match = _FRAME.match(frame.strip())
        name = category(match.group("file") if match else frame)
        if name != "other":
            return name
    return "other"
