"""Prometheus (Debian's ``prometheus`` package, or any ``prometheus`` 2.x/3.x binary) as a
local process scraping Haven's services."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import httpx
import yaml

from haven.devstack.processes import (
    DEFAULT_STOP_TIMEOUT_S,
    LOOPBACK,
    PID_FILE_NAME,
    ManagedProcess,
    ProcessError,
    log_tail,
    port_in_use,
    start_process,
)

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_PROMETHEUS_BIN",
    "LocalPrometheus",
    "PrometheusError",
    "find_prometheus",
    "prometheus_available",
]

DEFAULT_PORT = 9090
DEFAULT_PROMETHEUS_BIN = "/usr/bin/prometheus"
PROMETHEUS_BIN_ENV = "HAVEN_PROMETHEUS_BIN"
DEFAULT_SCRAPE_INTERVAL = "1s"
DEFAULT_READY_TIMEOUT_S = 30.0
DEFAULT_METRICS_PATH = "/metrics"
_PROBE_INTERVAL_S = 0.1
_HTTP_TIMEOUT_S = 2.0


class PrometheusError(ProcessError):
    """Local Prometheus could not be found, started or reached."""


def find_prometheus() -> str | None:
    """``$HAVEN_PROMETHEUS_BIN``, else ``prometheus`` on PATH, else /usr/bin/prometheus."""
    for candidate in (
        os.environ.get(PROMETHEUS_BIN_ENV),
        shutil.which("prometheus"),
        DEFAULT_PROMETHEUS_BIN,
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def prometheus_available() -> bool:
    """True if a Prometheus binary is installed (Debian: ``apt-get install prometheus``)."""
    return find_prometheus() is not None


def _scrape_config(job: str, target: str) -> dict[str, object]:
    """A scrape job for ``host:port`` or ``http[s]://host:port[/path]``."""
    if "://" not in target:
        return {"job_name": job, "static_configs": [{"targets": [target]}]}
    parts = urlsplit(target)
    config: dict[str, object] = {
        "job_name": job,
        "scheme": parts.scheme,
        "metrics_path": parts.path or DEFAULT_METRICS_PATH,
        "static_configs": [{"targets": [parts.netloc]}],
    }
    return config


class LocalPrometheus:
    """Prometheus with one scrape job per entry of ``scrape_targets`` (job name -> target).

    Targets are ``host:port`` (scraped at /metrics) or full URLs. TSDB data lives in
    ``<state_dir>/prometheus/data``; output goes to ``<state_dir>/logs/prometheus.log``.
    """

    def __init__(
        self,
        state_dir: Path,
        port: int = DEFAULT_PORT,
        scrape_targets: Mapping[str, str] | None = None,
        rule_files: Sequence[Path] = (),
        *,
        scrape_interval: str = DEFAULT_SCRAPE_INTERVAL,
        evaluation_interval: str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.port = port
        self.scrape_targets = dict(scrape_targets or {})
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval or scrape_interval
        self.home = self.state_dir / "prometheus"
        self.data_dir = self.home / "data"
        self.config_path = self.home / "prometheus.yml"
        self.log_path = self.state_dir / "logs" / "prometheus.log"
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9090``."""
        return f"http://{LOOPBACK}:{self.port}"

    def __repr__(self) -> str:
        return f"LocalPrometheus({self.url}, state_dir={self.state_dir})"

    def config(self) -> dict[str, object]:
        """The configuration written to ``prometheus.yml``."""
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": [
                _scrape_config(job, target) for job, target in self.scrape_targets.items()
            ],
        }

    def write_config(self) -> Path:
        """(Re)write ``prometheus.yml``; call :meth:`reload` to apply it to a running server."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            "# Written by haven.devstack.prometheus; edits are overwritten.\n"
            + yaml.safe_dump(self.config(), sort_keys=False)
        )
        return self.config_path

    def start(self) -> None:
        """Write the config and launch Prometheus (non-blocking; see wait_ready)."""
        if self.is_running():
            return
        if self._process is not None:  # it exited on its own: reap and forget it
            self._process.kill()
            self._process = None
        binary = find_prometheus()
        if binary is None:
            raise PrometheusError(
                "prometheus not found: install it (apt-get install "
                f"prometheus) or set {PROMETHEUS_BIN_ENV}"
            )
        if port_in_use(self.port):
            raise PrometheusError(
                f"cannot start Prometheus: port {self.port} on {LOOPBACK} is in use"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        argv = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--web.enable-lifecycle",
        ]
        self._process = start_process(
            "prometheus",
            argv,
            log_path=self.log_path,
            cwd=self.home,
            pid_file=self.home / PID_FILE_NAME,
        )

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT_S) -> None:
        """Block until ``/-/ready`` answers 200; raise if Prometheus exits or times out."""
        process = self._process
        if process is None:
            raise PrometheusError("Prometheus was not started")
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            if not process.is_running():
                raise PrometheusError(
                    f"Prometheus exited with status {process.returncode} before it was ready; "
                    f"last log lines ({self.log_path}):\n{process.log_tail()}"
                )
            try:
                if httpx.get(
                    f"{self.url}/-/ready", timeout=_HTTP_TIMEOUT_S, trust_env=False
                ).is_success:
                    return
            except httpx.HTTPError as exc:
                last_error = exc
            if time.monotonic() >= deadline:
                raise PrometheusError(
                    f"Prometheus at {self.url} not ready after {timeout:.0f} s "
                    f"(last error: {last_error!r}); log: {self.log_path}"
                )
            time.sleep(_PROBE_INTERVAL_S)

    def reload(self) -> None:
        """Rewrite the config and ask the running server to reload it (``POST /-/reload``)."""
        self.write_config()
        response = httpx.post(f"{self.url}/-/reload", timeout=_HTTP_TIMEOUT_S, trust_env=False)
        if not response.is_success:
            raise PrometheusError(f"Prometheus rejected the reload: {response.text.strip()}")

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL."""
        if self._process is not None:
            self._process.stop(signal.SIGTERM, timeout)
            self._process = None

    def kill(self) -> None:
        """SIGKILL Prometheus."""
        if self._process is not None:
            self._process.kill()
            self._process = None

    def is_running(self) -> bool:
        """True while the Prometheus process is alive."""
        return self._process is not None and self._process.is_running()

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of ``prometheus.log``."""
        return log_tail(self.log_path, lines)

    def __enter__(self) -> LocalPrometheus:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
