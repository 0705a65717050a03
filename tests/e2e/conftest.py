"""One stack of all four services per e2e module run."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.stack import Stack, running_stack


@pytest.fixture(scope="module")
async def stack(infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    state: Path = tmp_path_factory.mktemp("e2e-state")
    async with running_stack(infra, state) as running:
        yield running
