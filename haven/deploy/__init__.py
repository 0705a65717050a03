"""Kubernetes manifests generated from the topic catalog, the services and the monitoring files.

What must never drift from code is generated here and committed: Kafka topics and users (ACLs)
from ``shared/events/catalog.py`` (:mod:`.kafka`); each service's Deployment, Service and
ServiceMonitor (:mod:`.workloads`), NetworkPolicy (:mod:`.network`) and autoscaler
(:mod:`.autoscaling`); the PostgreSQL databases and roles (:mod:`.postgres`); and the
monitoring component (:mod:`.monitoring`: PrometheusRules from ``deploy/prometheus/*.rules.yml``,
a kustomize ConfigMap generator per ``deploy/grafana/dashboards/*.json``). ``haven manifests``
(or ``python -m haven.deploy``) writes them (:mod:`.render`); ``--check`` and ``tests/deploy``
fail when they are stale.
"""

from haven.deploy.autoscaling import (
    autoscalers,
    disruption_budgets,
    max_consumer_replicas,
)
from haven.deploy.cli import (
    app,
    manifests,
)
from haven.deploy.kafka import (
    kafka_topics,
    kafka_users,
    keda_acls,
    service_acls,
)
from haven.deploy.monitoring import (
    dashboard_files,
    monitoring_component,
    prometheus_rules,
    rule_files,
)
from haven.deploy.names import (
    BASE_GENERATED,
    CNPG_NAMESPACE,
    CONTAINER_PORT,
    CPU_TARGET_PERCENT,
    DASHBOARDS_DIR,
    DEPLOY_DIR,
    GENERATED_HEADER,
    HA_GENERATED,
    HA_MIN_REPLICAS,
    HTTP_MAX_REPLICAS,
    HTTPS_PORT,
    IMAGE,
    INGRESS_NAMESPACE,
    KAFKA_BOOTSTRAP,
    KAFKA_CA_SECRET,
    KAFKA_CLUSTER,
    KAFKA_LISTENER_PORT,
    KEDA_USER,
    LAG_THRESHOLD,
    MONITORING_DIR,
    MONITORING_NAMESPACE,
    PART_OF,
    PG_CA_SECRET,
    PG_CLUSTER,
    PG_PORT,
    PROMETHEUS_RELEASE_LABEL,
    ROOT,
    RULES_DIR,
    SERVICE_COMPONENT,
    SMTP_PORTS,
    TOPIC_REPLICAS,
    Manifest,
    consumer_group,
    db_name,
    db_secret,
    env_prefix,
    kafka_user,
    pod_labels,
    selector,
    workload,
)
from haven.deploy.network import (
    network_policies,
)
from haven.deploy.postgres import (
    postgres_databases,
    postgres_roles_patch,
)
from haven.deploy.render import (
    render,
    stale_files,
    to_yaml,
    write,
)
from haven.deploy.workloads import (
    deployment,
    service_resources,
)

__all__ = [
    "BASE_GENERATED",
    "CNPG_NAMESPACE",
    "CONTAINER_PORT",
    "CPU_TARGET_PERCENT",
    "DASHBOARDS_DIR",
    "DEPLOY_DIR",
    "GENERATED_HEADER",
    "HA_GENERATED",
    "HA_MIN_REPLICAS",
    "HTTPS_PORT",
    "HTTP_MAX_REPLICAS",
    "IMAGE",
    "INGRESS_NAMESPACE",
    "KAFKA_BOOTSTRAP",
    "KAFKA_CA_SECRET",
    "KAFKA_CLUSTER",
    "KAFKA_LISTENER_PORT",
    "KEDA_USER",
    "LAG_THRESHOLD",
    "MONITORING_DIR",
    "MONITORING_NAMESPACE",
    "PART_OF",
    "PG_CA_SECRET",
    "PG_CLUSTER",
    "PG_PORT",
    "PROMETHEUS_RELEASE_LABEL",
    "ROOT",
    "RULES_DIR",
    "SERVICE_COMPONENT",
    "SMTP_PORTS",
    "TOPIC_REPLICAS",
    "Manifest",
    "app",
    "autoscalers",
    "consumer_group",
    "dashboard_files",
    "db_name",
    "db_secret",
    "deployment",
    "disruption_budgets",
    "env_prefix",
    "kafka_topics",
    "kafka_user",
    "kafka_users",
    "keda_acls",
    "manifests",
    "max_consumer_replicas",
    "monitoring_component",
    "network_policies",
    "pod_labels",
    "postgres_databases",
    "postgres_roles_patch",
    "prometheus_rules",
    "render",
    "rule_files",
    "selector",
    "service_acls",
    "service_resources",
    "stale_files",
    "to_yaml",
    "workload",
    "write",
]
