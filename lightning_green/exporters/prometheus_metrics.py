"""The metrics both Prometheus exporters publish: a collector over the latest LiveFigures.

Metrics (Prometheus conventions: base units, ``_total`` on counters), labels
``run_id``, ``host``, ``rank`` on every one:

* ``lightning_green_energy_joules_total{component, phase}``: cumulative joules (counter)
* ``lightning_green_power_watts{component}``: latest watts (gauge)
* ``lightning_green_emissions_grams_total``: cumulative g CO2e (counter)
* ``lightning_green_samples_total``, ``lightning_green_steps_total`` (counters)
* ``lightning_green_figures_timestamp_seconds``: when the figures were taken (gauge)

Each process exports only what its own sensors measure (a host-scoped sensor is read by one
process per host), so ``sum`` over ``rank`` and ``host`` counts every joule once. The counters
are the engine's cumulative figures as given, not increments kept here.

prometheus-client is an optional extra, imported only inside functions.
"""

from __future__ import annotations

import math
from typing import Any

from lightning_green.engine.live import LiveFigures, RunLabels

__all__ = ["FiguresCollector", "INSTALL_HINT", "RUN_LABELS", "client"]

INSTALL_HINT = "pip install lightning-green[prometheus]"
RUN_LABELS = ("run_id", "host", "rank")


def client(who: str) -> Any:
    """prometheus_client, or an ImportError naming the extra that installs it."""
    try:
        import prometheus_client
    except ImportError as exc:
        raise ImportError(f"{who} needs the prometheus-client package, which is not installed: "
                          f"{INSTALL_HINT}") from exc
    return prometheus_client


class FiguresCollector:
    """A prometheus-client collector yielding the latest figures of one process.

    ``labels`` and ``figures`` are plain attributes: the meter thread replaces ``figures``
    (one reference assignment) and a scrape reads whatever is there; frozen dataclasses need
    no lock. Nothing is yielded before both are set.
    """

    def __init__(self, labels: RunLabels | None = None) -> None:
        self.labels = labels
        self.figures: LiveFigures | None = None

    def describe(self) -> list:
        return []  # names are only known from the figures; keeps register() from collecting

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        labels, figures = self.labels, self.figures
        if labels is None or figures is None:
            return
        run = [str(labels.run_id), str(labels.host), str(labels.rank)]
        energy = CounterMetricFamily(
            "lightning_green_energy_joules",
            "Cumulative energy measured by this process's sensors, by component and phase",
            labels=[*RUN_LABELS, "component", "phase"], unit="joules")
        for (component, phase), joules in sorted(figures.energy_j.items(), key=_by_key):
            if math.isfinite(joules):
                energy.add_metric([*run, str(component), str(phase)], joules)
        power = GaugeMetricFamily(
            "lightning_green_power_watts", "Latest power of this process's sensors, by component",
            labels=[*RUN_LABELS, "component"], unit="watts")
        for component, watts in sorted(figures.power_w.items(), key=_by_key):
            if math.isfinite(watts):
                power.add_metric([*run, str(component)], watts)
        yield energy
        yield power
        if math.isfinite(figures.emissions_g):
            yield _counter("lightning_green_emissions_grams",
                           "Cumulative emissions of this process's sensors, g CO2e",
                           run, figures.emissions_g, unit="grams")
        yield _counter("lightning_green_samples", "Training samples this process counted", run, figures.samples)
        yield _counter("lightning_green_steps", "Training steps (batches) this process recorded", run, figures.steps)
        stamp = GaugeMetricFamily("lightning_green_figures_timestamp_seconds",
                                  "When these figures were taken (Unix time)", labels=list(RUN_LABELS))
        stamp.add_metric(run, figures.t_unix)
        yield stamp


def _by_key(item: tuple) -> str:
    return repr(item[0])


def _counter(name: str, doc: str, run: list[str], value: float, unit: str = ""):
    from prometheus_client.core import CounterMetricFamily

    family = CounterMetricFamily(name, doc, labels=list(RUN_LABELS), unit=unit)
    family.add_metric(run, value)
    return family
