"""Energy-aware hyper-parameter search for the recipe: the objectives a Hydra task returns.

``python train.py -m hparams_search=energy_accuracy`` runs hydra-optuna-sweeper's
multi-objective search (``pip install 'lightning-green[sweeps]'``): each trial is one recipe
run, and its task returns ``(validation metric, energy)``; Optuna maximises the first and
minimises the second (``hydra.sweeper.direction: [maximize, minimize]``). The sweep ends with
the comparison of :mod:`lightning_green.compare.hydra_callback` (its Pareto front is the set of
trials that no other trial beats on both), Optuna's own ``optimization_results.yaml`` (its
Pareto solutions) and, with ``hydra.sweeper.storage=sqlite:///...``, the saved study.

The ``search`` node of the config names the objectives:

* ``search.metric``: a validation metric the model logs (default ``val/acc``);
* ``search.cost``: ``energy`` (IT energy in kWh, default) or ``emissions`` (kg CO2e), the
  same words as the comparison's ``by``.

A metric the run did not log gives NaN (Optuna records the trial as failed, the sweep goes on)
and a warning that lists the metrics that were logged.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lightning_green.validation import check_choice

log = logging.getLogger(__name__)

DEFAULT_METRIC = "val/acc"
COSTS = ("energy", "emissions")
_COST_FIELDS = {"energy": "energy_kwh", "emissions": "emissions_kg"}


def search_settings(cfg: DictConfig) -> tuple[str, str]:
    """``(search.metric, search.cost)`` with their defaults; a bad cost names the key and the choices."""
    metric = OmegaConf.select(cfg, "search.metric", default=None) or DEFAULT_METRIC
    cost = OmegaConf.select(cfg, "search.cost", default=None) or COSTS[0]
    return str(metric), check_choice("search.cost", cost, COSTS)


def objectives(cfg: DictConfig, metrics: dict[str, float], report: Any) -> tuple[float, float]:
    """The two objectives of a recipe run: ``(validation metric, energy in kWh or emissions in kg)``.

    The metric is read from the footprint (``report.metrics``, what the comparison table uses),
    else from ``metrics``; the cost from the footprint. Returns NaN for what is missing (ranks
    other than 0 have no report).
    """
    metric, cost = search_settings(cfg)
    logged = dict(metrics or {})
    if report is not None:
        logged.update(getattr(report, "metrics", None) or {})
    value = logged.get(metric)
    if value is None or not math.isfinite(float(value)):
        if report is not None:
            log.warning("lightning-green: search.metric=%r was not logged by this run; logged metrics: %s",
                        metric, sorted(logged))
        value = math.nan
    spent = math.nan if report is None else float(getattr(report, _COST_FIELDS[cost]))
    return float(value), spent


class MakeSweepDir(Callback):
    """Create ``hydra.sweep.dir`` when a multirun starts.

    Hydra creates it only when the first job is launched, after the sweeper has opened its
    storage: this lets ``hydra.sweeper.storage: sqlite:///${hydra.sweep.dir}/optuna.db`` keep
    Optuna's study beside the runs it describes.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = OmegaConf.select(config, "hydra.sweep.dir", default=None)
        if sweep_dir:
            Path(str(sweep_dir)).mkdir(parents=True, exist_ok=True)
