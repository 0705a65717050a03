"""The services as deployed: probes, limits, a locked-down security context, migrations first,
PostgreSQL per service, and in prod replicas, anti-affinity, budgets and bounded autoscaling."""

from __future__ import annotations

import pytest

from shared.events.catalog import CATALOG, SERVICES
from tests.deploy.manifests import OVERLAYS, Resource, named, of_kind, pod_specs, selects


def _env(container: Resource) -> dict[str, Resource]:
    return {e["name"]: e for e in container.get("env", [])}


def _secret(env: Resource) -> tuple[str, str]:
    ref = env["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_probed_limited_and_locked_down(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    workloads = list(pod_specs(overlays[overlay]))
    assert workloads
    for workload, pod in workloads:
        name = workload["metadata"]["name"]
        pod_security = pod.get("securityContext", {})
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = f"{name}/{container['name']}"
            security = {**pod_security, **container.get("securityContext", {})}
            assert security.get("runAsNonRoot") is True, where
            assert security.get("readOnlyRootFilesystem") is True, where
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert security.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{where} {bound}"
        for container in pod["containers"]:
            where = f"{name}/{container['name']}"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", where
            ports = {p["name"] for p in container["ports"]}
            assert container["readinessProbe"]["httpGet"]["port"] in ports, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_image_the_command_selects_the_service(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind(overlays[overlay], "Deployment")}
    assert set(deployments) == {f"haven-{s}" for s in SERVICES}
    images = set()
    for service in SERVICES:
        pod = deployments[f"haven-{service}"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        (migrate,) = pod["initContainers"]
        assert container["command"] == ["python", "-m", f"services.{service}"]
        assert migrate["command"] == ["haven", "migrate", service]
        images |= {container["image"], migrate["image"]}
        env = _env(container)
        prefix = f"HAVEN_{service.upper()}_"
        assert env[f"{prefix}MIGRATE_ON_START"]["value"] == "false"
        assert env[f"{prefix}DATABASE_URL"]["value"].endswith(
            f"://haven_{service}@haven-pg-rw:5432/haven_{service}"
        )
        assert _secret(env["PGPASSWORD"]) == (f"haven-{service}-db", "password")
        assert _secret(env["HAVEN_KAFKA_SASL_PASSWORD"]) == (f"haven-{service}", "password")
        assert env["HAVEN_KAFKA_SASL_USERNAME"]["value"] == f"haven-{service}"
        assert _env(migrate) == env, "the migration runs with the service's own settings"
    (image,) = images
    tag = image.rpartition(":")[2]
    assert "/" not in tag and tag != "latest", f"pin the image tag: {image}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_database_and_a_role_per_service(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    resources = overlays[overlay]
    (cluster,) = of_kind(resources, "Cluster")
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    databases = {d["spec"]["name"]: d["spec"] for d in of_kind(resources, "Database")}
    assert set(roles) == set(databases) == {f"haven_{s}" for s in SERVICES}
    for service in SERVICES:
        role = roles[f"haven_{service}"]
        assert role["login"] is True and role["ensure"] == "present"
        assert role["passwordSecret"]["name"] == f"haven-{service}-db"
        database = databases[f"haven_{service}"]
        assert database["owner"] == f"haven_{service}"
        assert database["cluster"]["name"] == cluster["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_is_exposed_and_scraped(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    resources = overlays[overlay]
    for service in SERVICES:
        pod_labels = named(resources, "Deployment", f"haven-{service}")["spec"]["template"][
            "metadata"
        ]["labels"]
        svc = named(resources, "Service", f"haven-{service}")
        assert all(pod_labels.get(k) == v for k, v in svc["spec"]["selector"].items())
        assert svc["spec"]["ports"][0]["targetPort"] == "http"
        monitor = named(resources, "ServiceMonitor", f"haven-{service}")
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert selects(monitor["spec"]["selector"], svc["metadata"]["labels"])
        # job="<service>" as in the local stack and compose.yaml: the same rules everywhere
        assert svc["metadata"]["labels"][monitor["spec"]["jobLabel"]] == service
        assert monitor["spec"]["endpoints"] == [
            {"port": "http", "path": "/metrics", "interval": "30s"}
        ]


def _max_replicas(service: str) -> int:
    return min(t.partitions for t in CATALOG.consumed_by(service))


def test_prod_runs_two_replicas_apart_with_budgets(prod: list[Resource]) -> None:
    budgets = of_kind(prod, "PodDisruptionBudget")
    for service in SERVICES:
        deployment = named(prod, "Deployment", f"haven-{service}")
        assert deployment["spec"]["replicas"] >= 2
        template = deployment["spec"]["template"]
        anti = template["spec"]["affinity"]["podAntiAffinity"]
        terms = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        assert any(
            selects(t["podAffinityTerm"]["labelSelector"], template["metadata"]["labels"])
            and t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
            for t in terms
        )
        covering = [
            b for b in budgets if selects(b["spec"]["selector"], template["metadata"]["labels"])
        ]
        assert len(covering) == 1, service
        assert covering[0]["spec"] == {
            "maxUnavailable": 1,
            "selector": covering[0]["spec"]["selector"],
        }


def test_prod_autoscaling_is_bounded_by_partitions(prod: list[Resource]) -> None:
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s["spec"] for s in of_kind(prod, "ScaledObject")}
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]
        for h in of_kind(prod, "HorizontalPodAutoscaler")
    }
    assert not set(scaled) & set(hpas), "one autoscaler per Deployment"
    for service in SERVICES:
        name = f"haven-{service}"
        consumed = CATALOG.consumed_by(service)
        if not consumed:
            assert hpas[name]["minReplicas"] >= 2
            assert hpas[name]["metrics"][0]["resource"]["name"] == "cpu"
            continue
        spec = scaled[name]
        assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= _max_replicas(service)
        kafka = [t["metadata"] for t in spec["triggers"] if t["type"] == "kafka"]
        assert sorted(m["topic"] for m in kafka) == sorted(t.name for t in consumed)
        assert {m["consumerGroup"] for m in kafka} == {name}
        assert [t["type"] for t in spec["triggers"] if t["type"] != "kafka"] == ["cpu"]


def test_dev_runs_one_replica_without_autoscaling(dev: list[Resource]) -> None:
    assert {d["spec"]["replicas"] for d in of_kind(dev, "Deployment")} == {1}
    for kind in ("ScaledObject", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert not of_kind(dev, kind), kind


def test_prod_postgres_is_replicated_and_backed_up(prod: list[Resource]) -> None:
    (cluster,) = of_kind(prod, "Cluster")
    spec = cluster["spec"]
    assert spec["instances"] == 3
    assert spec["affinity"]["enablePodAntiAffinity"] is True
    assert spec["postgresql"]["synchronous"]["number"] >= 1
    (archiver,) = [p for p in spec["plugins"] if p.get("isWALArchiver")]
    store = named(prod, "ObjectStore", archiver["parameters"]["barmanObjectName"])
    assert store["spec"]["configuration"]["destinationPath"]
    (backup,) = of_kind(prod, "ScheduledBackup")
    assert backup["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    assert backup["spec"]["pluginConfiguration"]["name"] == archiver["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_gets_its_secrets_and_none_is_optional_that_production_needs(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    """A production service refuses to start without its own audit chain key and with the
    development HS256 secret: both come from Secrets, never optional."""
    deployments = {d["metadata"]["name"]: d for d in of_kind(overlays[overlay], "Deployment")}
    for service in SERVICES:
        (container,) = deployments[f"haven-{service}"]["spec"]["template"]["spec"]["containers"]
        env = _env(container)
        auth = env["HAVEN_AUTH_SECRET"]
        assert _secret(auth) == ("haven-auth", "hs256-secret")
        assert not auth["valueFrom"]["secretKeyRef"].get("optional"), service
        key = env[f"HAVEN_{service.upper()}_AUDIT_CHAIN_KEY"]
        assert _secret(key) == ("haven-audit-chain-keys", service)
        assert not key["valueFrom"]["secretKeyRef"].get("optional"), service
