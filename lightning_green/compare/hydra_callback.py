"""A Hydra callback that ends every multirun with a comparison of its runs.

Switch it on in the primary config (the recipe's ``conf/train.yaml`` does)::

    hydra:
      callbacks:
        compare:
          _target_: lightning_green.compare.hydra_callback.CompareCallback

After ``python train.py -m precision=32,bf16 pruning=none,heads`` the sweep folder then
holds ``comparison.csv``, ``comparison.md`` and the plots of
:mod:`lightning_green.compare`. Between jobs it waits ``energy.cooldown_s`` seconds (read
from each job's config; 0 or missing = no wait), because a GPU that is still hot from the
previous job draws more power for the same work. Time already spent between jobs counts
toward the cooldown; on a terminal it counts down (:mod:`lightning_green.progress`). The
cooldown applies to Hydra's sequential (basic) launcher only: with a launcher that runs jobs in
parallel (``hydra/launcher=submitit_local``, ``submitit_slurm``, joblib, ...) there is no
"previous job" to cool down from, so it is skipped with one warning at the start of the sweep
(the comparison flags jobs that overlapped on one host). Processes other than rank 0 of a DDP
launch (Lightning re-runs the script for rank 1, which re-enters Hydra) neither wait nor write:
the rank is read from the variables Lightning reads (RANK, LOCAL_RANK, SLURM_PROCID,
JSM_NAMESPACE_RANK, in that order) and NODE_RANK.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lightning_green.progress import sleep_with_progress
from lightning_green.validation import check_choice, check_number

log = logging.getLogger(__name__)

COOLDOWN_KEY = "energy.cooldown_s"
#: Hydra's default launcher: jobs one after the other in this process.
SEQUENTIAL_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


# The variables Lightning reads for a process's rank, in its order (lightning.fabric.utilities.
# rank_zero._get_rank: "SLURM_PROCID can be set even if SLURM is not managing the
# multiprocessing, therefore LOCAL_RANK needs to be checked first"); copied rather than
# imported because importing lightning.fabric imports torch.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def process_rank(environ: Any = None) -> int | None:
    """This process's rank as Lightning reads it: the first of RANK_VARIABLES that is set
    (None when none is); an unparsable value counts as rank 0, like an unset one."""
    environ = os.environ if environ is None else environ
    for key in RANK_VARIABLES:
        value = environ.get(key)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                return 0
    return None


def _is_rank_zero(environ: Any = None) -> bool:
    """Rank 0 of the launch: Lightning's rank is 0 (or unset) and, on a multi-node launch,
    this is the first node (Lightning's launcher starts a node's first process with only
    NODE_RANK set; its global rank is NODE_RANK x processes per node)."""
    environ = os.environ if environ is None else environ
    try:
        node_rank = int(environ.get("NODE_RANK") or 0)
    except ValueError:
        node_rank = 0
    return (process_rank(environ) or 0) == 0 and node_rank == 0


def launcher_target(config: DictConfig) -> str | None:
    """``hydra.launcher._target_`` of a config, or None when the config does not say."""
    target = OmegaConf.select(config, "hydra.launcher._target_", default=None)
    return None if target is None else str(target)


def is_sequential_launcher(config: DictConfig) -> bool:
    """Whether the sweep's jobs run one after the other (Hydra's basic launcher, or unknown)."""
    return launcher_target(config) in (None, SEQUENTIAL_LAUNCHER)


def _is_multirun(config: DictConfig) -> bool:
    mode = OmegaConf.select(config, "hydra.mode", default=None)
    return getattr(mode, "name", str(mode)).upper().endswith("MULTIRUN")


class CompareCallback(Callback):
    """Compare the runs of a Hydra multirun when it ends; cool down between its jobs.

    Args:
        metric: Main validation metric (default: the first of ``val/acc``, ``val_acc``,
            ``val/f1``, ... found in the footprints).
        by: ``"energy"`` or ``"emissions"``: the cost axis of the Pareto plot.
        baseline: Baseline run, by folder name or overrides (``"precision=32 pruning=none"``);
            default: the fp32 / no-pruning run, else the first.
        metric_mode: ``"auto"`` (loss-like metrics minimised), ``"max"`` or ``"min"``.
        plots: Write the plots beside the table.
        out_dir: Output folder; default: the sweep folder (``hydra.sweep.dir``).
        cooldown_s: Seconds to wait between jobs; None reads ``energy.cooldown_s`` from
            the job's config.
        plot_format: ``"png"`` or ``"svg"``.
        dpi: Plot resolution (72-1200).
        group_by: Override keys that define a configuration (default: all that differ
            except ``seed``, so seed repeats are pooled).
        regions: What-if grids, e.g. ``"FRA,USA,gcp:europe-west9"``; None: the default
            ones; ``"none"``: none.

    Example::

        python train.py -m precision=32,bf16 energy.cooldown_s=30
        # -> multirun/<date>/<time>/comparison.md
    """

    def __init__(
        self,
        metric: str | None = None,
        by: str = "energy",
        baseline: str | None = None,
        metric_mode: str = "auto",
        plots: bool = True,
        out_dir: str | None = None,
        cooldown_s: float | None = None,
        plot_format: str = "png",
        dpi: int = 150,
        group_by: list[str] | None = None,
        regions: str | None = None,
    ) -> None:
        from lightning_green.compare.plots import FORMATS
        from lightning_green.compare.runs import BYS, METRIC_MODES
        from lightning_green.compare.whatif import parse_regions, resolve_regions

        self.metric = metric
        self.by = check_choice("by", by, BYS)
        self.baseline = baseline
        self.metric_mode = check_choice("metric_mode", metric_mode, METRIC_MODES)
        self.plots = bool(plots)
        self.out_dir = out_dir
        self.cooldown_s = check_number("cooldown_s", cooldown_s, minimum=0.0, optional=True)
        self.plot_format = check_choice("plot_format", plot_format, FORMATS)
        self.dpi = int(check_number("dpi", dpi, minimum=72, maximum=1200, integer=True))
        self.group_by = None if group_by is None else [str(k) for k in group_by]
        self.regions = parse_regions(regions)
        resolve_regions(self.regions)  # an unknown region fails here, not after the sweep
        self._last_job_end: float | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not _is_rank_zero() or is_sequential_launcher(config):
            return
        try:
            cooldown_s = self.cooldown_for(config)
        except ValueError:
            return  # reported by the job, which checks energy.* before training
        if cooldown_s > 0:
            log.warning("lightning-green: %s=%g is ignored: it applies to Hydra's sequential launcher only, and "
                        "%s runs the jobs in parallel (the comparison flags jobs that overlapped on one host)",
                        COOLDOWN_KEY, cooldown_s, launcher_target(config))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._cool_down(config)

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        self._last_job_end = time.monotonic()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._compare_sweep(config)

    def cooldown_for(self, config: DictConfig) -> float:
        """The cooldown in seconds for this job's config (constructor value first)."""
        if self.cooldown_s is not None:
            return float(self.cooldown_s)
        value = OmegaConf.select(config, COOLDOWN_KEY, default=None)
        return float(check_number(COOLDOWN_KEY, value, minimum=0.0, optional=True) or 0.0)

    def _cool_down(self, config: DictConfig) -> None:
        if not _is_multirun(config) or not _is_rank_zero() or not is_sequential_launcher(config):
            return
        if int(OmegaConf.select(config, "hydra.job.num", default=0) or 0) == 0:
            return  # nothing ran before the first job
        cooldown_s = self.cooldown_for(config)
        waited_s = 0.0 if self._last_job_end is None else time.monotonic() - self._last_job_end
        remaining_s = cooldown_s - waited_s
        if remaining_s > 0:
            log.info("lightning-green: cooling down %.1f s before the next job (%s=%g)",
                     remaining_s, COOLDOWN_KEY, cooldown_s)
            # the log line above is the one line off a terminal; on one, a countdown
            sleep_with_progress(remaining_s, "cooling down before the next job", announce=False)

    def _compare_sweep(self, config: DictConfig) -> None:
        if not _is_rank_zero():
            return
        from lightning_green.compare.cli import run_comparison
        from lightning_green.compare.table import MD_NAME

        sweep_dir = OmegaConf.select(config, "hydra.sweep.dir", default=None)
        if sweep_dir is None or not Path(str(sweep_dir)).is_dir():
            log.warning("lightning-green: no sweep folder (hydra.sweep.dir=%s); nothing to compare", sweep_dir)
            return
        out_dir = Path(self.out_dir) if self.out_dir else Path(str(sweep_dir))
        try:
            comparison = run_comparison(
                [str(sweep_dir)], out_dir, metric=self.metric, by=self.by, baseline=self.baseline,
                metric_mode=self.metric_mode, plots=self.plots, fmt=self.plot_format, dpi=self.dpi,
                group_by=self.group_by, regions=self.regions,
            )
        except Exception as err:  # the sweep has finished: never turn its end into a crash
            log.warning("lightning-green: comparing the sweep in %s failed: %r", sweep_dir, err)
            return
        if comparison is not None:
            count = len(comparison.runs)
            log.info("lightning-green: compared %d run%s: %s", count, "" if count == 1 else "s", out_dir / MD_NAME)
            if comparison.metric:
                goal = "highest" if comparison.maximize else "lowest"
                front = ", ".join(f"{r.name} ({comparison.metric} {r.metric(comparison.metric):.4g}, "
                                  f"{_cost_text(r, comparison.by)})" for r in comparison.pareto) or "none"
                log.info("lightning-green: Pareto front (least %s, %s %s): %s", comparison.by, goal,
                         comparison.metric, front)


def _cost_text(run: Any, by: str) -> str:
    if by == "energy":
        return f"{run.report.energy_kwh * 3.6e6:.4g} J"
    return f"{run.report.emissions_kg * 1e3:.4g} g CO2e"
