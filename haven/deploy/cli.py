"""``haven manifests`` (``python -m haven.deploy``): write or check the generated files."""

from __future__ import annotations

from typing import Annotated

import typer

from haven.deploy.names import ROOT
from haven.deploy.render import stale_files, write

app = typer.Typer(
    help="Write the Kubernetes manifests generated from the catalog (--check: only verify).",
    no_args_is_help=False,
)


@app.callback(invoke_without_command=True)
def manifests(
    check: Annotated[
        bool, typer.Option("--check", help="Only report stale files; exit 1 if any.")
    ] = False,
) -> None:
    """Write deploy/k8s/**/generated, deploy/kustomization.yaml (or check they are current)."""
    if check:
        stale = stale_files()
        for path in stale:
            typer.echo(f"stale: {path.relative_to(ROOT)}")
        raise typer.Exit(1 if stale else 0)
    for path in write():
        typer.echo(f"wrote {path.relative_to(ROOT)}")
