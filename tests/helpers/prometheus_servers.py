"""Real Prometheus and pushgateway servers for exporter tests, run as subprocesses on 127.0.0.1.

The binaries come from Debian's ``prometheus`` and ``prometheus-pushgateway`` packages
(``.ci/run`` installs them when missing). :func:`require_binary` skips a test, with the reason,
only where a binary is not installed. Each server gets a temporary config and storage folder
and a free port, and is stopped (terminate, then kill) when the test ends.

* :class:`PrometheusServer`: scrapes the given targets every ``scrape_interval``; query it with
  :meth:`PrometheusServer.query` (instant) or :meth:`PrometheusServer.samples` (raw scraped
  samples with Prometheus' own timestamps).
* :class:`Pushgateway`: :meth:`Pushgateway.groups` reads its ``/api/v1/metrics``.
* :func:`free_port` / :func:`free_port_pair`: ports nothing listens on (``p`` and ``p + 1``).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HOST = "127.0.0.1"
READY_WAIT_S = 60.0  # a generous bound on start-up, not a timing assertion


def require_binary(name: str, package: str) -> str:
    """The path of ``name``, or skip the test saying which Debian package provides it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed and could not be installed here "
                    f"(Debian package '{package}'; .ci/run installs it with apt-get when it can)")
    return path


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def free_port_pair() -> int:
    """A port ``p`` such that ``p`` and ``p + 1`` are both free (the DDP scheme port + local_rank)."""
    for _ in range(200):
        port = free_port()
        if port < 65535 and _port_free(port + 1):
            return port
    raise RuntimeError("no two consecutive free ports found")


def http_get(url: str, timeout_s: float = 10.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return response.read()


def wait_until(condition: Callable[[], Any], what: str, timeout_s: float = READY_WAIT_S,
               poll_s: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except (OSError, ValueError, KeyError) as exc:  # server not up yet, or no data yet
            last_error = exc
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what} (last error: {last_error})")


class _Server:
    binary_name = ""
    package = ""

    def __init__(self, workdir: Path) -> None:
        self.binary = require_binary(self.binary_name, self.package)
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = workdir / f"{self.binary_name}.log"
        self.proc: subprocess.Popen | None = None

    def _start(self, args: list[str]) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([self.binary, *args], stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir)
        wait_until(self._ready, f"{self.binary_name} to be ready on {self.url} (log: {self.log_path})")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.binary_name} exited with {self.proc.returncode}: "
                                 f"{self.log_path.read_text()[-2000:]}")
        return http_get(f"{self.url}/-/ready", timeout_s=2.0) is not None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)


class PrometheusServer(_Server):
    """``prometheus`` scraping ``targets`` (``host:port`` strings) every ``scrape_interval``."""

    binary_name = "prometheus"
    package = "prometheus"

    def __init__(self, workdir: Path, targets: list[str], scrape_interval: str = "250ms",
                 honor_labels: bool = False) -> None:
        super().__init__(workdir)
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {scrape_interval}\n"
            f"  scrape_timeout: {scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: lightning_green\n"
            f"    honor_labels: {'true' if honor_labels else 'false'}\n"
            "    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n")
        self._start([f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
                     f"--web.listen-address={HOST}:{self.port}", "--log.level=warn"])

    def api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        body = json.loads(http_get(f"{self.url}/api/v1/{path}?{query}"))
        if body.get("status") != "success":
            raise ValueError(f"Prometheus API error: {body}")
        return body["data"]

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        """Instant query: ``[{"metric": {...}, "value": [t, "v"]}, ...]``."""
        return self.api("query", query=promql, time=at)["result"]

    def samples(self, selector: str, window: str = "1h") -> list[tuple[dict, list[tuple[float, float]]]]:
        """Raw scraped samples of ``selector``: ``[(labels, [(t_scrape, value), ...]), ...]``."""
        data = self.api("query", query=f"{selector}[{window}]")
        return [(r["metric"], [(float(t), float(v)) for t, v in r["values"]]) for r in data["result"]]

    def target_health(self) -> dict[str, str]:
        """``scrapeUrl -> health`` ("up", "down", "unknown") of the active targets."""
        return {t["scrapeUrl"]: t["health"] for t in self.api("targets")["activeTargets"]}


class Pushgateway(_Server):
    """``prometheus-pushgateway`` on a free port, keeping pushed groups in memory only (Debian's
    build persists them to /var/lib/prometheus by default, which would leak between tests)."""

    binary_name = "prometheus-pushgateway"
    package = "prometheus-pushgateway"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self._start([f"--web.listen-address={HOST}:{self.port}", "--persistence.file=", "--log.level=warn"])

    def groups(self) -> list[dict]:
        """The pushed groups: ``[{"labels": {...}, "<metric name>": {...}, ...}, ...]``."""
        body = json.loads(http_get(f"{self.url}/api/v1/metrics"))
        if body.get("status") != "success":
            raise ValueError(f"pushgateway API error: {body}")
        return body["data"]
