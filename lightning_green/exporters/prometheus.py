"""Prometheus exporters: live energy, power and emissions of a run, scraped or pushed.

* :class:`PrometheusExporter` serves ``/metrics`` over HTTP (prometheus-client's WSGI app on a
  registry of its own, never the global one). Under DDP each process serves
  ``port + local_rank``, so one scrape config with consecutive ports covers a node.
* :class:`PrometheusPushExporter` pushes to a Prometheus pushgateway at every footprint
  snapshot and at the end, for jobs shorter than a scrape interval. Each process pushes to its
  own group (``job``, ``run_id``, ``host``, ``rank``), so ranks never overwrite each other.

Metric names and labels: :mod:`lightning_green.exporters.prometheus_metrics`. Each process
exports only what its own sensors measure, so sums over ``rank`` and ``host`` count each joule once.

prometheus-client is an optional extra (``pip install lightning-green[prometheus]``); it is
imported only when an exporter is built.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlsplit

from lightning_green.engine.live import LiveFigures, RunLabels
from lightning_green.exporters.base import Exporter
from lightning_green.exporters.prometheus_http import bind_error, env_local_rank, make_server, probe_port, resolve
from lightning_green.exporters.prometheus_metrics import FiguresCollector, client
from lightning_green.validation import check_number, check_str

__all__ = ["PrometheusExporter", "PrometheusPushExporter"]

log = logging.getLogger(__name__)

_JOIN_S = 5.0


class PrometheusExporter(Exporter):
    """Serves the live figures on ``http://addr:port/metrics`` for Prometheus to scrape.

    Args:
        port: TCP port of local rank 0 (default 9464); the process of local rank ``r`` serves
            ``port + r``. ``0`` lets the OS choose a free port for each process (see ``url``).
        addr: Address to listen on (default ``127.0.0.1``; ``0.0.0.0`` for every interface).

    Construction fails (``ImportError``) without prometheus-client, and (``ValueError``) when
    the port is already taken, naming it; the check uses ``LOCAL_RANK`` when a launcher set it.

    Example::

        cb = EnergyCallback(exporters=[PrometheusExporter(port=9464)])
    """

    def __init__(self, port: int = 9464, addr: str = "127.0.0.1") -> None:
        self.port = check_number("port", port, minimum=0, maximum=65535, integer=True)
        self.addr = check_str("addr", addr)
        self._idle()
        self.check()

    def _idle(self) -> None:
        self.bound_port: int | None = None
        self._collector = FiguresCollector()
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for ddp_spawn: the settings travel; a server, thread or figures never do.
        return {"port": self.port, "addr": self.addr}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._idle()

    @property
    def url(self) -> str | None:
        """``http://addr:port/metrics`` while serving, else None."""
        if self.bound_port is None:
            return None
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.bound_port}/metrics"

    def _port_for(self, local_rank: int) -> int:
        if self.port == 0:
            return 0
        port = self.port + local_rank
        if port > 65535:
            raise ValueError(f"port must leave room for every local rank (port + local_rank <= 65535), "
                             f"got port={self.port} with local_rank {local_rank}")
        return port

    def check(self) -> None:
        client(type(self).__name__)
        local_rank = env_local_rank()
        port = self._port_for(local_rank)
        if port == 0 or self._server is not None:
            return
        probe_port(self.addr, port, self.port, local_rank)

    def start(self, labels: RunLabels) -> None:
        with self._lock:
            if self._server is not None:
                return
            prom = client(type(self).__name__)
            from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app

            port = self._port_for(labels.local_rank)
            family, _ = resolve(self.addr, port)
            self._collector.figures = None
            self._collector.labels = labels
            registry = prom.CollectorRegistry(auto_describe=False)
            registry.register(self._collector)
            try:
                server = make_server(ThreadingWSGIServer, family, self.addr, port, make_wsgi_app(registry))
            except OSError as exc:
                raise bind_error(self.addr, port, self.port, labels.local_rank, exc) from exc
            self.bound_port = server.server_port
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                            name=f"lightning-green-prometheus-{self.bound_port}", daemon=True)
            self._server = server
            self._thread.start()

    def update(self, figures: LiveFigures) -> None:
        self._collector.figures = figures

    def snapshot(self, figures: LiveFigures) -> None:
        self._collector.figures = figures

    def stop(self, figures: LiveFigures | None = None) -> None:
        with self._lock:
            if figures is not None:
                self._collector.figures = figures
            server, thread = self._server, self._thread
            self._server = self._thread = None
            self.bound_port = None
            if server is None:
                return
            server.shutdown()  # serve_forever returns within poll_interval
            server.server_close()
            thread.join(_JOIN_S)
            server.join_requests(_JOIN_S)


def _check_gateway_url(url: Any) -> str:
    check_str("gateway_url", url)
    parts = urlsplit(url if "://" in url else f"http://{url}")
    try:
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"gateway_url must be an http(s) URL or host:port of a Prometheus pushgateway, "
                         f"such as 'http://127.0.0.1:9091', got {url!r}")
    return url.rstrip("/")


class PrometheusPushExporter(Exporter):
    """Pushes the live figures to a Prometheus pushgateway at each snapshot and at the end.

    Args:
        gateway_url: The pushgateway, e.g. ``http://pushgateway:9091`` (``host:port`` means http).
        job: The ``job`` label of the pushed group (default ``lightning_green``).
        timeout_s: Timeout of one push in seconds (default 5).

    Each process pushes (HTTP PUT, replacing its group) under the grouping key
    ``job/run_id/host/rank``. Pushes at snapshots run on a thread of their own
    (``lightning-green-prometheus-push``), so a slow gateway delays neither training nor the
    meter; the final push runs in ``stop``. A failed push is logged (a warning the first
    time) and counted in ``failures``; the run goes on.
    """

    def __init__(self, gateway_url: str, job: str = "lightning_green", timeout_s: float = 5.0) -> None:
        self.gateway_url = _check_gateway_url(gateway_url)
        self.job = check_str("job", job)
        self.timeout_s = check_number("timeout_s", timeout_s, exclusive_minimum=0, maximum=300)
        self._idle()
        self.check()

    def _idle(self) -> None:
        self.pushes = 0
        self.failures = 0
        self.last_error: str | None = None
        self._collector = FiguresCollector()
        self._registry: Any = None
        self._grouping_key: dict[str, str] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for ddp_spawn: the settings travel; a thread or figures never do.
        return {"gateway_url": self.gateway_url, "job": self.job, "timeout_s": self.timeout_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._idle()

    def check(self) -> None:
        client(type(self).__name__)

    def start(self, labels: RunLabels) -> None:
        with self._lock:
            if self._thread is not None:
                return
            prom = client(type(self).__name__)
            self._collector.figures = None
            self._collector.labels = labels
            self._registry = prom.CollectorRegistry(auto_describe=False)
            self._registry.register(self._collector)
            self._grouping_key = {"run_id": labels.run_id, "host": labels.host, "rank": str(labels.rank)}
            self._stopping = False
            self._wake.clear()
            self._thread = threading.Thread(target=self._run, name="lightning-green-prometheus-push", daemon=True)
            self._thread.start()

    def update(self, figures: LiveFigures) -> None:
        self._collector.figures = figures

    def snapshot(self, figures: LiveFigures) -> None:
        self._collector.figures = figures
        self._wake.set()

    def stop(self, figures: LiveFigures | None = None) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            if figures is not None:
                self._collector.figures = figures
            self._stopping = True
            self._wake.set()
            thread.join(self.timeout_s + _JOIN_S)
            self._push()  # the final figures, after any push still running on the thread

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            self._push()

    def _push(self) -> None:
        if self._collector.figures is None:
            return
        from prometheus_client import push_to_gateway

        try:
            push_to_gateway(self.gateway_url, job=self.job, registry=self._registry,
                            grouping_key=self._grouping_key, timeout=self.timeout_s)
            self.pushes += 1
        except Exception as exc:  # a gateway that is down must not end the run
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            level = logging.WARNING if self.failures == 1 else logging.DEBUG
            log.log(level, "lightning-green: push to the Prometheus pushgateway %s failed (%s); the run "
                    "goes on (later failures are logged at debug level)", self.gateway_url, self.last_error)
