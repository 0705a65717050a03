"""A service's workload: ServiceAccount, Deployment, Service and ServiceMonitor."""

from __future__ import annotations

from haven.deploy.names import (
    CONTAINER_PORT,
    IMAGE,
    KAFKA_CA_SECRET,
    PG_CA_SECRET,
    PG_CLUSTER,
    PG_PORT,
    PROMETHEUS_RELEASE_LABEL,
    Manifest,
    db_name,
    db_secret,
    env_prefix,
    kafka_user,
    pod_labels,
    selector,
    workload,
)


def _security_context() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


AUDIT_CHAIN_SECRET = "haven-audit-chain-keys"  # noqa: S105 - a Secret's name
"""One key per service, named by the service: each pod reads its own, the verifier all."""


def _secret_env(name: str, secret: str, key: str, *, optional: bool = False) -> Manifest:
    ref: Manifest = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def _service_env(service: str) -> list[Manifest]:
    """Settings that follow from the names above; knobs live in the ConfigMaps."""
    prefix = env_prefix(service)
    env: list[Manifest] = [
        {"name": f"{prefix}HTTP_HOST", "value": "0.0.0.0"},  # noqa: S104 - inside the pod
        {"name": f"{prefix}HTTP_PORT", "value": str(CONTAINER_PORT)},
        {"name": f"{prefix}MIGRATE_ON_START", "value": "false"},  # the migrate init container
        {
            "name": f"{prefix}DATABASE_URL",
            "value": f"postgresql+asyncpg://{db_name(service)}@{PG_CLUSTER}-rw:{PG_PORT}"
            f"/{db_name(service)}",
        },
        # asyncpg reads the password and TLS settings from libpq's variables.
        _secret_env("PGPASSWORD", db_secret(service), "password"),
        {"name": "PGSSLMODE", "value": "verify-full"},
        {"name": "PGSSLROOTCERT", "value": "/etc/haven/postgres-ca/ca.crt"},
        {"name": "HAVEN_KAFKA_SASL_USERNAME", "value": kafka_user(service)},
        _secret_env("HAVEN_KAFKA_SASL_PASSWORD", kafka_user(service), "password"),
        # Not optional: a pod without it would run on the development secret, which a
        # production service refuses anyway; better that the pod does not start at all.
        _secret_env("HAVEN_AUTH_SECRET", "haven-auth", "hs256-secret"),
        # The service's own audit chain key (HMAC); production refuses to start without one.
        _secret_env(f"{prefix}AUDIT_CHAIN_KEY", AUDIT_CHAIN_SECRET, service),
    ]
    if service == "notifications":
        env += [
            _secret_env(f"{prefix}WEBHOOK_SECRET", "haven-notifications", "webhook-secret"),
            _secret_env(
                f"{prefix}SMTP_PASSWORD", "haven-notifications", "smtp-password", optional=True
            ),
            _secret_env(
                f"{prefix}SMS_GATEWAY_TOKEN",
                "haven-notifications",
                "sms-gateway-token",
                optional=True,
            ),
        ]
    return env


def _probe(path: str, *, period: int, failures: int) -> Manifest:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _container_settings(service: str) -> Manifest:
    """What both containers of a pod get: the same objects, so the YAML shows them once
    (an anchor) and refers to them from the second container."""
    return {
        "envFrom": [
            {"configMapRef": {"name": "haven-common"}},
            {"configMapRef": {"name": workload(service)}},
        ],
        "env": _service_env(service),
    }


def _mounts() -> list[Manifest]:
    return [
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir
        {"name": "kafka-ca", "mountPath": "/etc/haven/kafka-ca", "readOnly": True},
        {"name": "postgres-ca", "mountPath": "/etc/haven/postgres-ca", "readOnly": True},
    ]


def _migrate_container(service: str, shared: Manifest, mounts: list[Manifest]) -> Manifest:
    """The init container: ``haven migrate <service>`` before the service starts."""
    return {
        "name": "migrate",
        "image": IMAGE,
        "command": ["haven", "migrate", service],
        "envFrom": shared["envFrom"],
        "env": shared["env"],
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": _security_context(),
        "volumeMounts": mounts,
    }


def _service_container(service: str, shared: Manifest, mounts: list[Manifest]) -> Manifest:
    """The service itself: ``python -m services.<name>`` on the container port."""
    return {
        "name": service,
        "image": IMAGE,
        "command": ["python", "-m", f"services.{service}"],
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "envFrom": shared["envFrom"],
        "env": shared["env"],
        "startupProbe": _probe("/healthz", period=2, failures=30),
        "livenessProbe": _probe("/healthz", period=10, failures=3),
        "readinessProbe": _probe("/readyz", period=5, failures=3),
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "securityContext": _security_context(),
        "volumeMounts": mounts,
    }


def _ca_volume(name: str, secret: str) -> Manifest:
    return {
        "name": name,
        "secret": {"secretName": secret, "items": [{"key": "ca.crt", "path": "ca.crt"}]},
    }


def _pod_spec(service: str) -> Manifest:
    shared, mounts = _container_settings(service), _mounts()
    return {
        "serviceAccountName": workload(service),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": selector(service)},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        },
        "initContainers": [_migrate_container(service, shared, mounts)],
        "containers": [_service_container(service, shared, mounts)],
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
            _ca_volume("kafka-ca", KAFKA_CA_SECRET),
            _ca_volume("postgres-ca", PG_CA_SECRET),
        ],
    }


def deployment(service: str) -> Manifest:
    """One service: the migrate init container, then ``python -m services.<name>``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": workload(service), "labels": pod_labels(service)},
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector(service)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {"metadata": {"labels": pod_labels(service)}, "spec": _pod_spec(service)},
        },
    }


def service_resources(service: str) -> list[Manifest]:
    """ServiceAccount, Deployment, Service and ServiceMonitor of one service."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": workload(service), "labels": pod_labels(service)},
            "automountServiceAccountToken": False,
        },
        deployment(service),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": workload(service), "labels": pod_labels(service)},
            "spec": {
                "selector": selector(service),
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        },
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": {
                "name": workload(service),
                "labels": {**pod_labels(service), **PROMETHEUS_RELEASE_LABEL},
            },
            "spec": {
                # job="<service>", as the local stack and compose.yaml name the scrape jobs
                "jobLabel": "app.kubernetes.io/name",
                "selector": {"matchLabels": selector(service)},
                "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s"}],
            },
        },
    ]
