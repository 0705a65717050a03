"""The committed generated manifests are exactly what the generator makes from the sources."""

from __future__ import annotations

from haven import deploy
from tests.deploy.manifests import ROOT


def test_generated_files_are_current() -> None:
    stale = [str(path.relative_to(ROOT)) for path in deploy.stale_files()]
    assert not stale, f"stale generated manifests {stale}: run `python -m haven.deploy`"


def test_every_generated_file_is_used_by_a_kustomization() -> None:
    for path in deploy.render():
        if path.name == "kustomization.yaml":
            continue
        home = next(d for d in path.parents if (d / "kustomization.yaml").exists())
        kustomization = (home / "kustomization.yaml").read_text()
        assert str(path.relative_to(home)) in kustomization, f"{path.relative_to(ROOT)} is unused"
