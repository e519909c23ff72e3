"""PrometheusExporter / PrometheusPushExporter without a Prometheus server: construction checks,
the /metrics text (read back with prometheus-client's own parser), lifecycle and threads."""

from __future__ import annotations

import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lightning_green.engine.live import LiveFigures, RunLabels
from lightning_green.exporters import PrometheusExporter, PrometheusPushExporter
from lightning_green.validation import check_str
from tests.helpers.prometheus_servers import free_port, free_port_pair, http_get, wait_until

LABELS = RunLabels(run_id="run-1", host="node-a", rank=3, local_rank=0)


def figures(gpu_train_j: float = 10.0, **overrides) -> LiveFigures:
    values = dict(t_unix=1_700_000_000.5, energy_j={("gpu", "train"): gpu_train_j, ("cpu", "validate"): 2.5},
                  power_w={"gpu": 150.0, "cpu": 30.0}, emissions_g=1.25, samples=64, steps=8,
                  scope={"gpu": "device", "cpu": "host"})
    values.update(overrides)
    return LiveFigures(**values)


def scrape(url: str) -> dict[str, list]:
    """``metric family name -> [(sample name, labels, value)]`` of the lightning_green families."""
    text = http_get(url).decode()
    return {f.name: [(s.name, s.labels, s.value) for s in f.samples]
            for f in text_string_to_metric_families(text) if f.name.startswith("lightning_green")}


@pytest.fixture
def exporter(no_thread_leak):
    exp = PrometheusExporter(port=0)
    yield exp
    exp.stop()


def test_metrics_are_the_given_cumulative_figures_with_run_labels(exporter):
    exporter.start(LABELS)
    exporter.update(figures(gpu_train_j=10.0))
    run = {"run_id": "run-1", "host": "node-a", "rank": "3"}
    families = scrape(exporter.url)
    assert families["lightning_green_energy_joules"] == [
        ("lightning_green_energy_joules_total", {**run, "component": "cpu", "phase": "validate"}, 2.5),
        ("lightning_green_energy_joules_total", {**run, "component": "gpu", "phase": "train"}, 10.0),
    ]
    assert families["lightning_green_power_watts"] == [
        ("lightning_green_power_watts", {**run, "component": "cpu"}, 30.0),
        ("lightning_green_power_watts", {**run, "component": "gpu"}, 150.0),
    ]
    assert families["lightning_green_emissions_grams"] == [("lightning_green_emissions_grams_total", run, 1.25)]
    assert families["lightning_green_samples"] == [("lightning_green_samples_total", run, 64.0)]
    assert families["lightning_green_steps"] == [("lightning_green_steps_total", run, 8.0)]
    assert families["lightning_green_figures_timestamp_seconds"] == [
        ("lightning_green_figures_timestamp_seconds", run, 1_700_000_000.5)]
    # The counter is whatever the engine says now (no increments kept here), read on each scrape.
    for joules in (1234.5678, 20.0):
        exporter.update(figures(gpu_train_j=joules))
        energy = {s[1]["component"]: s[2] for s in scrape(exporter.url)["lightning_green_energy_joules"]}
        assert energy == {"gpu": joules, "cpu": 2.5}


def test_nothing_before_the_first_figures_and_non_finite_values_left_out(exporter):
    exporter.start(LABELS)
    assert scrape(exporter.url) == {}
    exporter.update(figures(power_w={"gpu": float("nan"), "cpu": 30.0}, emissions_g=float("inf"),
                            energy_j={("gpu", "train"): float("nan"), ("cpu", "train"): 4.0}))
    families = scrape(exporter.url)
    assert [s[1]["component"] for s in families["lightning_green_power_watts"]] == ["cpu"]
    assert [s[2] for s in families["lightning_green_energy_joules"]] == [4.0]
    assert "lightning_green_emissions_grams" not in families


def test_own_registry_never_the_global_one(exporter):
    exporter.start(LABELS)
    exporter.update(figures())
    assert "lightning_green" in http_get(exporter.url).decode()
    assert "lightning_green" not in prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()


def test_start_stop_idempotent_threads_named_and_gone_port_released_restartable(exporter):
    exporter.start(LABELS)
    port = exporter.bound_port
    exporter.start(RunLabels("other", "node-b", 0, 0))  # already serving: no second server
    assert exporter.bound_port == port
    assert exporter.url == f"http://127.0.0.1:{port}/metrics"
    exporter.update(figures())
    http_get(exporter.url)  # a request thread ran too
    names = [t.name for t in threading.enumerate()]
    assert names.count(f"lightning-green-prometheus-{port}") == 1
    exporter.stop(figures())
    exporter.stop(figures())
    assert exporter.url is None
    assert not [t for t in threading.enumerate() if t.name.startswith("lightning-green")]
    with socket.socket() as s:  # nothing listens there any more (TIME_WAIT of the request aside)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
    exporter.start(RunLabels("run-2", "node-a", 0, 0))  # e.g. fit() then test() with one callback
    assert scrape(exporter.url) == {}  # the previous run's figures are not served under the new labels
    exporter.update(figures())
    assert {s[1]["run_id"] for s in scrape(exporter.url)["lightning_green_steps"]} == {"run-2"}


def test_each_process_serves_port_plus_local_rank(no_thread_leak):
    base = free_port_pair()
    rank0, rank1 = PrometheusExporter(port=base), PrometheusExporter(port=base)
    try:
        rank0.start(RunLabels("r", "h", 0, 0))
        rank1.start(RunLabels("r", "h", 5, 1))
        assert (rank0.bound_port, rank1.bound_port) == (base, base + 1)
        rank1.update(figures())
        assert {s[1]["rank"] for s in scrape(rank1.url)["lightning_green_steps"]} == {"5"}
    finally:
        rank0.stop()
        rank1.stop()


def listening_socket(port: int) -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen()
    return s


def test_port_in_use_fails_at_construction_naming_the_port():
    port = free_port()
    with listening_socket(port):
        with pytest.raises(ValueError, match=rf"port {port} is not available.*Address already in use"):
            PrometheusExporter(port=port)


def test_construction_checks_the_port_of_the_local_rank_a_launcher_announced(monkeypatch):
    base = free_port_pair()
    monkeypatch.setenv("LOCAL_RANK", "1")
    with listening_socket(base + 1):
        with pytest.raises(ValueError, match=rf"port {base + 1} \(port={base} \+ local_rank 1\)"):
            PrometheusExporter(port=base)


def test_port_taken_after_construction_fails_at_start_naming_the_port(no_thread_leak):
    port = free_port()
    exporter = PrometheusExporter(port=port)
    with listening_socket(port):
        with pytest.raises(ValueError, match=rf"port {port} is not available"):
            exporter.start(LABELS)
    exporter.stop()


def test_port_plus_local_rank_must_stay_a_port():
    exporter = PrometheusExporter(port=65535)
    with pytest.raises(ValueError, match=r"port \+ local_rank <= 65535.*port=65535 with local_rank 2"):
        exporter.start(RunLabels("r", "h", 2, 2))


@pytest.mark.parametrize("cls, kwargs", [(PrometheusExporter, {}),
                                         (PrometheusPushExporter, {"gateway_url": "127.0.0.1:9091"})])
def test_without_prometheus_client_construction_names_the_extra(monkeypatch, cls, kwargs):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import prometheus_client raises
    with pytest.raises(ImportError, match=rf"{cls.__name__} needs the prometheus-client package.*"
                                          r"pip install lightning-green\[prometheus\]"):
        cls(**kwargs)


def test_importing_the_exporters_imports_no_prometheus_client():
    code = ("import sys, lightning_green.exporters; "
            "assert 'prometheus_client' not in sys.modules, 'imported at import time'")
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=dict(os.environ, PYTHONPATH=str(root)))


@pytest.mark.parametrize("kwargs, message", [
    ({"port": -1}, "port must be an integer >= 0 and <= 65535, got -1"),
    ({"port": 65536}, "port must be an integer >= 0 and <= 65535, got 65536"),
    ({"port": "9464"}, "port must be an integer >= 0 and <= 65535, got '9464'"),
    ({"port": 9464.5}, "port must be an integer >= 0 and <= 65535, got 9464.5"),
    ({"port": True}, "port must be an integer >= 0 and <= 65535, got True"),
    ({"addr": ""}, "addr must be a non-empty string, got ''"),
    ({"addr": None}, "addr must be a non-empty string, got None"),
])
def test_bad_exporter_arguments_fail_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("+", r"\+").replace("(", r"\(")):
        PrometheusExporter(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"gateway_url": ""}, "gateway_url must be a non-empty string, got ''"),
    ({"gateway_url": None}, "gateway_url must be a non-empty string, got None"),
    ({"gateway_url": "ftp://gw:9091"}, "gateway_url must be an http(s) URL or host:port"),
    ({"gateway_url": "http://"}, "gateway_url must be an http(s) URL or host:port"),
    ({"gateway_url": "gw:notaport"}, "gateway_url must be an http(s) URL or host:port"),
    ({"gateway_url": "gw:9091", "job": ""}, "job must be a non-empty string, got ''"),
    ({"gateway_url": "gw:9091", "timeout_s": 0}, "timeout_s must be a number > 0 and <= 300, got 0"),
    ({"gateway_url": "gw:9091", "timeout_s": "5"}, "timeout_s must be a number > 0 and <= 300, got '5'"),
])
def test_bad_push_arguments_fail_naming_them(kwargs, message):
    with pytest.raises(ValueError) as info:
        PrometheusPushExporter(**kwargs)
    assert message in str(info.value)


def test_check_str():
    assert check_str("job", "x") == "x"
    with pytest.raises(ValueError, match="job must be a non-empty string, got '  '"):
        check_str("job", "  ")
    with pytest.raises(ValueError, match="job must be a non-empty string, got 3"):
        check_str("job", 3)


def test_push_to_a_gateway_that_is_down_warns_once_and_the_run_goes_on(no_thread_leak, caplog):
    port = free_port()  # nothing listens there
    exporter = PrometheusPushExporter(f"http://127.0.0.1:{port}", timeout_s=2)
    exporter.start(LABELS)
    names = [t.name for t in threading.enumerate()]
    assert "lightning-green-prometheus-push" in names
    exporter.update(figures())
    assert exporter.pushes == exporter.failures == 0  # update() only keeps the figures
    with caplog.at_level(logging.DEBUG, logger="lightning_green.exporters.prometheus"):
        exporter.snapshot(figures())  # pushed on the exporter's thread
        wait_until(lambda: exporter.failures == 1, "the snapshot's push to fail")
        exporter.stop(figures())  # the final push, from the caller
        exporter.stop(figures())
    assert (exporter.pushes, exporter.failures) == (0, 2)
    assert "Connection refused" in exporter.last_error
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"127.0.0.1:{port}" in warnings[0].getMessage()


def test_exporters_pickle_for_ddp_spawn_with_settings_only(no_thread_leak):
    exporter = PrometheusExporter(port=0, addr="127.0.0.1")
    exporter.start(LABELS)  # even a running one travels as its settings only
    exporter.update(figures())
    copy = pickle.loads(pickle.dumps(exporter))
    exporter.stop()
    assert (copy.port, copy.addr, copy.url) == (0, "127.0.0.1", None)
    copy.start(RunLabels("spawned", "node-a", 1, 1))
    try:
        assert scrape(copy.url) == {}  # no figures carried over
        copy.update(figures())
        assert {s[1]["run_id"] for s in scrape(copy.url)["lightning_green_steps"]} == {"spawned"}
    finally:
        copy.stop()
    push = pickle.loads(pickle.dumps(PrometheusPushExporter("http://gw:9091/", job="j", timeout_s=2)))
    assert (push.gateway_url, push.job, push.timeout_s, push.pushes) == ("http://gw:9091", "j", 2, 0)
    push.start(LABELS)
    assert "lightning-green-prometheus-push" in [t.name for t in threading.enumerate()]
    push.stop()  # no figures yet: nothing to push
    assert (push.pushes, push.failures) == (0, 0)
