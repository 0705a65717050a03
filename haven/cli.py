"""``haven`` — the operator's command line: tokens, migrations, topics, the local stack."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from haven.deploy import app as manifests_app
from shared.auth import AuthSettings, Role, issue_dev_token
from shared.db import migrate as migrate_database
from shared.events.catalog import CATALOG, SERVICES
from shared.kafka import ensure_topics
from shared.settings import CommonSettings, ServiceSettings, load_settings

ROOT = Path(__file__).resolve().parents[1]
app = typer.Typer(help="Haven: humanitarian assistance platform tools.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics from the catalog.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(manifests_app, name="manifests")
console = Console(stderr=True)


@app.command()
def token(
    role: Annotated[list[Role], typer.Option("--role", "-r", help="A role; repeatable.")],
    site: Annotated[list[str], typer.Option("--site", "-s", help="A site id; repeatable.")] = [],  # noqa: B006
    org: Annotated[
        str | None, typer.Option(help="Provider organisation id (role provider).")
    ] = None,
    sub: Annotated[str, typer.Option(help="Subject (user id).")] = "dev-user",
    hours: Annotated[int, typer.Option(help="Validity in hours.")] = 12,
) -> None:
    """Print a development JWT the local stack accepts (HS256, HAVEN_AUTH_SECRET)."""
    settings = AuthSettings()
    typer.echo(
        issue_dev_token(
            settings, sub=sub, roles=role, sites=site, org=org, ttl=timedelta(hours=hours)
        )
    )


@app.command()
def migrate(
    service: Annotated[list[str], typer.Argument(help="Services to migrate; all by default.")] = [],  # noqa: B006
) -> None:
    """Create each service's database if needed and apply its migrations."""
    for name in service or SERVICES:
        if name not in SERVICES:
            raise typer.BadParameter(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
        url = load_settings(name, ServiceSettings).resolved_database_url()
        asyncio.run(migrate_database(url, ROOT / "services" / name / "migrations"))
        console.print(f"[green]migrated[/] {name}")


@topics_app.command("create")
def topics_create() -> None:
    """Create every catalog topic and dead-letter topic that does not exist yet."""
    common = CommonSettings()
    created = asyncio.run(
        ensure_topics(
            common.kafka_bootstrap,
            CATALOG,
            replication_factor=common.topic_replication_factor,
            settings=common,
        )
    )
    console.print(f"created {len(created)} topic(s): {', '.join(created) or 'none needed'}")


@topics_app.command("list")
def topics_list() -> None:
    """Show the catalog: topics, partitions, keys, producers and consumers."""
    from rich.table import Table

    table = Table("topic", "partitions", "key", "producers", "consumers", "events")
    for topic in CATALOG.topics:
        table.add_row(
            topic.name + (" (compacted)" if topic.compacted else ""),
            str(topic.partitions),
            topic.key,
            ", ".join(topic.producers),
            ", ".join(topic.consumers) or "-",
            ", ".join(e.event_type for e in topic.events),
        )
    Console().print(table)


@audit_app.command("verify")
def audit_verify(
    topic: Annotated[str, typer.Option(help="The audit topic.")] = "haven.audit.v1",
    keys_file: Annotated[
        Path | None,
        typer.Option(
            help='JSON {"<service>": "<chain key>"}, or a directory of files named by service '
            "(the haven-audit-chain-keys Secret mounted): each service's "
            "HAVEN_<SERVICE>_AUDIT_CHAIN_KEY. Without it, the development keys (local stack)."
        ),
    ] = None,
) -> None:
    """Check every service's keyed audit chain on the topic; report the first break.

    Kafka security comes from HAVEN_KAFKA_* like the services' (TLS, SASL); a read-only user
    with Describe and Read on the topic is enough."""
    from haven.audit import KeysFile, verify_topic

    settings = CommonSettings()
    keys = KeysFile.read(keys_file) if keys_file else None
    count, breaks = asyncio.run(
        verify_topic(settings.kafka_bootstrap, topic, keys=keys, settings=settings)
    )
    if breaks:
        for item in breaks:
            console.print(
                f"[red]chain broken[/] service={item.service} chain={item.chain_id} "
                f"sequence={item.sequence}: "
                f"{item.problem}"
            )
        raise typer.Exit(1)
    console.print(f"[green]audit trail intact[/]: {count} record(s) verified")


@app.command()
def run(
    state_dir: Annotated[Path, typer.Option(help="Where all local state lives.")] = ROOT / ".haven",
    kafka_port: Annotated[int | None, typer.Option(help="Kafka port (default 9092).")] = None,
    pg_port: Annotated[int | None, typer.Option(help="PostgreSQL port (default 54320).")] = None,
    prometheus_port: Annotated[int, typer.Option(help="Prometheus port.")] = 9090,
    demo: Annotated[bool, typer.Option(help="Load demo reference data.")] = True,
) -> None:
    """Start Kafka, PostgreSQL, the four services and Prometheus; Ctrl-C stops them all."""
    from haven.stack import StackOptions, run_until_interrupted

    run_until_interrupted(
        StackOptions(
            state_dir=state_dir,
            kafka_port=kafka_port,
            pg_port=pg_port,
            prometheus_port=prometheus_port,
            load_demo=demo,
        )
    )


if __name__ == "__main__":
    app()
