"""Local Prometheus scraping a metrics endpoint served by the test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from haven.devstack.processes import LOOPBACK, free_port
from haven.devstack.prometheus import LocalPrometheus, prometheus_available

SCRAPE_TIMEOUT_S = 30.0  # Prometheus applies new targets after up to 5 s, then scrapes every 1 s

needs_prometheus = pytest.mark.skipif(
    not prometheus_available(),
    reason="prometheus binary not found (apt-get install prometheus, or set "
    "HAVEN_PROMETHEUS_BIN); CI installs it",
)


@pytest.fixture
def metrics_target() -> Iterator[tuple[str, Counter]]:
    registry = CollectorRegistry()
    counter = Counter(
        "haven_devstack_probe", "Probe counter for the devstack test", registry=registry
    )
    port = free_port()
    server, thread = start_http_server(port, addr=LOOPBACK, registry=registry)
    try:
        yield f"{LOOPBACK}:{port}", counter
    finally:
        server.shutdown()
        thread.join()


def query(prometheus: LocalPrometheus, promql: str) -> list[dict[str, object]]:
    response = httpx.get(
        f"{prometheus.url}/api/v1/query", params={"query": promql}, trust_env=False
    )
    response.raise_for_status()
    result: list[dict[str, object]] = response.json()["data"]["result"]
    return result


@needs_prometheus
def test_scrapes_a_service(tmp_path: Path, metrics_target: tuple[str, Counter]) -> None:
    target, counter = metrics_target
    counter.inc(7)
    prometheus = LocalPrometheus(tmp_path, port=free_port(), scrape_targets={"probe": target})
    with prometheus:
        deadline = time.monotonic() + SCRAPE_TIMEOUT_S
        while not (samples := query(prometheus, "haven_devstack_probe_total")):
            assert time.monotonic() < deadline, (
                f"no scrape in {SCRAPE_TIMEOUT_S}s:\n{prometheus.log_tail()}"
            )
            time.sleep(0.2)
        assert samples[0]["metric"] == {
            "__name__": "haven_devstack_probe_total",
            "instance": target,
            "job": "probe",
        }
        assert samples[0]["value"][1] == "7"  # type: ignore[index]
        assert query(prometheus, 'up{job="probe"}')[0]["value"][1] == "1"  # type: ignore[index]
    assert not prometheus.is_running()


def test_config_accepts_urls_and_rule_files(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: []\n")
    prometheus = LocalPrometheus(
        tmp_path,
        scrape_targets={"a": "127.0.0.1:9000", "b": "https://svc.local:8443/internal/metrics"},
        rule_files=[rules],
        scrape_interval="5s",
    )
    config = prometheus.config()
    assert config["rule_files"] == [str(rules)]
    assert config["scrape_configs"] == [
        {"job_name": "a", "static_configs": [{"targets": ["127.0.0.1:9000"]}]},
        {
            "job_name": "b",
            "scheme": "https",
            "metrics_path": "/internal/metrics",
            "static_configs": [{"targets": ["svc.local:8443"]}],
        },
    ]
    written = prometheus.write_config().read_text()
    assert "svc.local:8443" in written and str(rules) in written
