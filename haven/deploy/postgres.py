"""PostgreSQL (CloudNativePG): a Database per service and its login role."""

from __future__ import annotations

from haven.deploy.names import PART_OF, PG_CLUSTER, Manifest, db_name, db_secret, workload
from shared.events.catalog import SERVICES


def postgres_databases() -> list[Manifest]:
    """One CloudNativePG Database per service, owned by the service's role."""
    return [
        {
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Database",
            "metadata": {"name": workload(service), "labels": dict(PART_OF)},
            "spec": {
                "name": db_name(service),
                "owner": db_name(service),
                "cluster": {"name": PG_CLUSTER},
                "ensure": "present",
                "databaseReclaimPolicy": "retain",
            },
        }
        for service in SERVICES
    ]


def postgres_roles_patch() -> Manifest:
    """A patch adding each service's login role to the Cluster (password from its Secret)."""
    return {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": PG_CLUSTER},
        "spec": {
            "managed": {
                "roles": [
                    {
                        "name": db_name(service),
                        "ensure": "present",
                        "login": True,
                        "inherit": True,
                        "passwordSecret": {"name": db_secret(service)},
                        "comment": f"Haven {service} service",
                    }
                    for service in SERVICES
                ]
            }
        },
    }
