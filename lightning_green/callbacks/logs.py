"""What the callback logs, and where: metric dicts, Lightning's logging step, rank-zero warnings.

Helpers of :class:`~lightning_green.callbacks.hooks.EnergyHooks` that need no Trainer object
beyond what they are given.
"""

from __future__ import annotations

import warnings
from typing import Any

from lightning_green.units import J_PER_KWH

__all__ = ["PROGRESS_BAR_KEYS", "final_metrics", "live_metrics", "log_metrics", "logger_step", "rank_zero_warn",
           "trainer_metrics"]

#: The callback's own progress-bar values: for the bar only, never in the report's metrics.
PROGRESS_BAR_KEYS = ("energy/power_w", "energy/energy_wh")


def live_metrics(meter: Any, energy_j: float) -> dict[str, float]:
    """The run so far: total (``energy_j``, every rank), this process's components and phases,
    emissions, and the projection once made."""
    metrics = {"energy/energy_kwh": energy_j / J_PER_KWH, "carbon/emissions_kg": meter.emissions_kg(energy_j)}
    for (component, phase), joules in meter._live_figures().energy_j.items():
        metrics[f"energy/{component}_kwh"] = metrics.get(f"energy/{component}_kwh", 0.0) + joules / J_PER_KWH
        metrics[f"energy/{phase}_kwh"] = metrics.get(f"energy/{phase}_kwh", 0.0) + joules / J_PER_KWH
    projection = meter._projection
    if projection is not None:
        metrics["energy/predicted_energy_kwh"] = projection.energy_kwh
        metrics["carbon/predicted_emissions_kg"] = projection.emissions_kg
    return metrics


def final_metrics(report: Any) -> dict[str, float]:
    """A finished call's totals (every rank): total, components, phases, emissions."""
    metrics = {"energy/energy_kwh": report.energy_kwh, "carbon/emissions_kg": report.emissions_kg}
    metrics.update({f"energy/{c}_kwh": v for c, v in report.energy_kwh_by_component.items()})
    metrics.update({f"energy/{p}_kwh": v for p, v in report.energy_kwh_by_phase.items() if v})
    return metrics


def log_metrics(trainer: Any, metrics: dict[str, float], *, ended: bool, warn: Any) -> None:
    """``metrics`` to every logger (global rank 0) at Lightning's logging step; ``ended``: at an
    epoch's or a fit's end, where Lightning logs at its last batch's step. A logger that
    refuses them is warned about through ``warn``, never raised."""
    if not getattr(trainer, "is_global_zero", True) or not getattr(trainer, "loggers", None):
        return
    step = logger_step(trainer, ended)
    for logger in trainer.loggers:
        try:
            logger.log_metrics(metrics, step=step)
        except Exception as err:
            warn(f"logger {type(logger).__name__} rejected energy metrics: {err}")


def trainer_metrics(trainer: Any) -> dict[str, float]:
    """The Trainer's metrics as floats; this callback's own progress-bar values left out (they
    reach ``callback_metrics`` through ``LightningModule.log``; the report has the real totals)."""
    out: dict[str, float] = {}
    for key, value in dict(getattr(trainer, "callback_metrics", {}) or {}).items():
        if key in PROGRESS_BAR_KEYS:
            continue
        try:
            out[str(key)] = float(value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError, RuntimeError):
            continue
    return out


def logger_step(trainer: Any, ended: bool = False) -> int:
    """The step Lightning's own loggers and monitors log at (``LearningRateMonitor``,
    ``self.log``): batches that stepped an optimizer, once per batch whatever the number of
    optimizers (``global_step`` counts each optimizer's steps). At an epoch's end Lightning logs
    its epoch values at the last batch's step (one less: the counter has moved on); so do we,
    and the final totals of a fit land there too."""
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    stepped = getattr(loop, "_batches_that_stepped", None)
    if stepped is None:
        return int(getattr(trainer, "global_step", 0) or 0)
    return max(0, int(stepped) - 1) if ended else int(stepped)


def rank_zero_warn(message: Warning | str, category: type[Warning]) -> None:
    """Warn on global rank 0 only (``lightning_utilities``' helper, which serves both
    ``lightning`` and ``pytorch_lightning``: both set its rank from the launcher's variables and
    the strategy), pointing at the line that built the callback."""
    from lightning_utilities.core.rank_zero import rank_zero_only, rank_zero_warn

    text = str(message)
    if getattr(rank_zero_only, "rank", None) is None:  # no Lightning imported yet: it cannot be a DDP job
        warnings.warn(text, category, stacklevel=3)
    else:
        rank_zero_warn(text, stacklevel=6, category=category)
