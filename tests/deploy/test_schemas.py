"""Every overlay renders; built-in kinds validate against Kubernetes' schemas, custom resources
against their required fields (and the upstream models when installed); no Secret is shipped."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import (
    K8S,
    KUBERNETES_VERSION,
    OVERLAYS,
    Resource,
    of_kind,
    pod_specs,
    unavailable,
)

BUILT_IN_GROUPS = {"v1", "apps", "batch", "policy", "autoscaling", "networking.k8s.io"}
REQUIRED_FIELDS = K8S / "schemas" / "crd-required-fields.yaml"
NPM_MODELS = K8S / "schemas" / "npm"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)


def _group(resource: Resource) -> str:
    api_version: str = resource["apiVersion"]
    return api_version.split("/")[0] if "/" in api_version else "v1"


def _built_in(resource: Resource) -> bool:
    return _group(resource) in BUILT_IN_GROUPS


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_built_in_kinds_match_kubernetes_schemas(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    kubernetes_validate = _validator()
    failures = []
    for resource in filter(_built_in, overlays[overlay]):
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except Exception as exc:
            failures.append(f"{resource['kind']}/{resource['metadata']['name']}: {exc}")
    assert not failures, "\n".join(failures)


def _validator() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        unavailable("kubernetes-validate is needed to check the built-in kinds")
    return kubernetes_validate


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_have_their_required_fields(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    try:
        import jsonschema
    except ImportError:
        unavailable("jsonschema is needed to check the custom resources")
    schemas = yaml.safe_load(REQUIRED_FIELDS.read_text())
    failures = []
    for resource in overlays[overlay]:
        if _built_in(resource):
            continue
        key = f"{resource['apiVersion']} {resource['kind']}"
        assert key in schemas, f"{key} is deployed but has no entry in {REQUIRED_FIELDS.name}"
        validator = jsonschema.Draft202012Validator(schemas[key])
        failures += [
            f"{key} {resource['metadata']['name']}: {'/'.join(map(str, e.path))}: {e.message}"
            for e in validator.iter_errors(resource)
        ]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_match_upstream_models(
    overlays: dict[str, list[Resource]], overlay: str
) -> None:
    """Full check with the @kubernetes-models validators (`npm ci` in deploy/k8s/schemas/npm)."""
    node = shutil.which("node")
    if node is None or not (NPM_MODELS / "node_modules").is_dir():
        pytest.skip("optional: `npm ci --prefix deploy/k8s/schemas/npm` (and node) to enable")
    custom = [r for r in overlays[overlay] if not _built_in(r)]
    out = subprocess.run(
        [node, str(NPM_MODELS / "validate.mjs")],
        input=json.dumps(custom),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    results = json.loads(out.stdout)
    failures = [r for r in results if r["errors"]]
    assert not failures, json.dumps(failures, indent=2)
    covered = {r["kind"] for r in results if r["errors"] is not None}
    assert {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Cluster", "Database"} <= covered


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_shipped(overlays: dict[str, list[Resource]], overlay: str) -> None:
    resources = overlays[overlay]
    assert not of_kind(resources, "Secret"), "Secrets are created in the cluster, never committed"
    for config_map in of_kind(resources, "ConfigMap"):
        for key in config_map.get("data", {}):
            assert not SECRET_NAME.search(key), f"{config_map['metadata']['name']}: {key}"
    for workload, pod in pod_specs(resources):
        for container in pod.get("initContainers", []) + pod["containers"]:
            for env in container.get("env", []):
                if SECRET_NAME.search(env["name"]):
                    assert "secretKeyRef" in env.get("valueFrom", {}), (
                        f"{workload['metadata']['name']}: {env['name']} must come from a Secret"
                    )


def test_no_secret_manifest_in_the_repository() -> None:
    for path in (K8S.parent).rglob("*.y*ml"):
        if "node_modules" in path.parts:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict):
                assert doc.get("kind") != "Secret", f"{path} commits a Secret"
