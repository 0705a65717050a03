"""compose.yaml: the same Kafka and PostgreSQL as the local stack, the four services from one
image, and Prometheus and Grafana fed from deploy/prometheus and deploy/grafana."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from haven.deploy import CONTAINER_PORT
from haven.devstack.infra import DOCKER_KAFKA_IMAGE, DOCKER_POSTGRES_IMAGE
from haven.devstack.kafka import KAFKA_VERSION
from shared.events.catalog import SERVICES
from tests.deploy.manifests import ROOT, Resource

COMPOSE = ROOT / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> Resource:
    loaded: Resource = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _volumes(service: Resource) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        mounts[target] = source
    return mounts


def test_kafka_is_the_local_version(compose: Resource) -> None:
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert compose["services"]["kafka"]["image"] == DOCKER_KAFKA_IMAGE
    assert compose["services"]["postgres"]["image"] == DOCKER_POSTGRES_IMAGE


def test_the_four_services_run_from_one_image(compose: Resource) -> None:
    services = compose["services"]
    images = {services[name]["image"] for name in SERVICES} | {services["topics"]["image"]}
    assert images == {"haven:local"}
    for name in SERVICES:
        service = services[name]
        assert service["build"] == "."
        assert service["command"] == ["python", "-m", f"services.{name}"]
        assert service["environment"]["HAVEN_KAFKA_BOOTSTRAP"] == "kafka:19092"
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        (published,) = service["ports"]
        assert published.endswith(f":{CONTAINER_PORT}")
        depends = service["depends_on"]
        assert depends["topics"]["condition"] == "service_completed_successfully"
    assert services["topics"]["command"] == ["haven", "topics", "create"]


def test_prometheus_uses_the_rules_files_and_scrapes_every_service(compose: Resource) -> None:
    prometheus = compose["services"]["prometheus"]
    mounts = _volumes(prometheus)
    assert Path(mounts["/etc/prometheus/rules"]) == Path("./deploy/prometheus")
    config = yaml.safe_load((ROOT / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.rules.yml"]
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert jobs == {name: [f"{name}:{CONTAINER_PORT}"] for name in SERVICES}


def test_grafana_provisions_the_dashboards_and_the_data_source(compose: Resource) -> None:
    mounts = _volumes(compose["services"]["grafana"])
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "haven.yml").read_text())[
        "providers"
    ]
    assert Path(mounts[provider["options"]["path"]]) == Path("./deploy/grafana/dashboards")
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090" and source["uid"] == "prometheus"


def test_notifications_mail_goes_to_the_smtp_catcher(compose: Resource) -> None:
    env = compose["services"]["notifications"]["environment"]
    assert env["HAVEN_NOTIFICATIONS_EMAIL_TRANSPORT"] == "smtp"
    assert env["HAVEN_NOTIFICATIONS_SMTP_HOST"] in compose["services"]
