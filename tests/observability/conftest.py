"""One observed end-to-end run shared by the tests of this directory (it takes ~30 s)."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.observability.scenario import ObservedRun, observed_run


@pytest.fixture(scope="package")
async def observed(
    infra: Any, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ObservedRun]:
    async with observed_run(infra, tmp_path_factory.mktemp("observed")) as run:
        yield run
