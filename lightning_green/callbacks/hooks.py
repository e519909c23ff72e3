"""EnergyCallback's behaviour, shared by the ``lightning.pytorch`` and ``pytorch_lightning`` twins.

A thin adapter: Lightning hooks become :class:`~lightning_green.EnergyMeter` calls; this module
adds only what needs a Trainer: logging to the progress bar and the loggers, budgets that set
``trainer.should_stop``, checkpoint state, the folder of the run, debug runs that write no
files. It imports no Lightning: each twin mixes :class:`EnergyHooks` into its own package's
``Callback`` class, because each package's Trainer only accepts its own callbacks.

Collectives (under DDP) happen only where every rank is at the same point: in ``setup``
(measuring starts), every ``log_every_n_steps`` training batches (the live energy of all ranks,
for logging and budgets), at the projection batch, and in ``teardown`` (the end-of-run sums).
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

from lightning_green.callbacks import handoff, logs, placement
from lightning_green.meter.energy_meter import EnergyMeter

_STAGE_PHASE = {"validate": "validate", "test": "test", "predict": "predict"}
#: The longest the projection waits for the sampler to resolve the batches so far (seconds;
#: it takes one sampling interval on a healthy sampler).
PROJECTION_FLUSH_S = 2.0
#: What this callback shows on the progress bar (and nowhere else).
#: Options shown as attributes of the callback (``cb.pue``, ``cb.sampling_interval_s``, ...).
_OPTION_NAMES = (
    "sensors", "sampling_interval_s", "country_iso_code", "cloud_provider", "cloud_region",
    "carbon_intensity_g_per_kwh", "pue", "idle_baseline_s", "max_energy_kwh", "max_emissions_kg",
    "project_after_epochs", "project_after_steps", "log_every_n_steps", "write_files", "snapshot_every_s",
    "exporters", "intensity",
)


class EnergyHooks:
    """Measure the energy and CO2 of the Trainer calls this callback is attached to.

    See :class:`lightning_green.callbacks.lightning.EnergyCallback` for the arguments and logged keys.
    """

    #: Each twin sets its Lightning package's ``rank_zero_info``.
    _info: Any = staticmethod(print)

    def __init__(
        self,
        sensors: Any = "auto",
        sampling_interval_s: float = 0.1,
        country_iso_code: str | None = None,
        cloud_provider: str | None = None,
        cloud_region: str | None = None,
        carbon_intensity_g_per_kwh: float | None = None,
        pue: float = 1.0,
        output_dir: str | os.PathLike | None = None,
        idle_baseline_s: float = 0.0,
        max_energy_kwh: float | None = None,
        max_emissions_kg: float | None = None,
        project_after_epochs: int | None = None,
        project_after_steps: int | None = None,
        log_every_n_steps: int | None = None,
        write_files: bool = True,
        snapshot_every_s: float = 60.0,
        exporters: list[Any] | None = None,
        carbon_intensity_series: str | os.PathLike | None = None,
        pause_above_g_per_kwh: float | None = None,
        max_pause_s: float | None = None,
        water_l_per_kwh: float | None = None,
        price_per_kwh: float | None = None,
        currency: str | None = None,
        embodied: bool | dict | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        arguments = dict(locals())
        for key in ("self", "__class__"):
            arguments.pop(key, None)
        # Every process of a DDP job builds its callback: what building says (no location
        # given, a pause that can never happen, ...) is said once per job, by global rank 0.
        said: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                self.meter = EnergyMeter(**arguments)
        finally:
            for warning in said:
                logs.rank_zero_warn(warning.message, warning.category)
        self._token = self.meter.run_id  # names the ddp_spawn hand-off file
        self._configured_write = self.meter.options.write_files
        self._write = self._configured_write
        self._report = None
        self._stage: str | None = None
        self._batches = 0
        self._every_n = 50
        self._next_exchange = 50
        self._last_exchange = 0
        self._last_log = 0
        self._bar_t = -float("inf")
        self._project_at: int | None = None
        self._budget_each_step = False

    # -- public ------------------------------------------------------------------------
    @property
    def report(self) -> Any:
        """The FootprintReport of everything measured so far (None before the first run ends)."""
        handed = handoff.take(self._token)  # ddp_spawn: the report was made in a child process
        if handed is not None:
            self._report = handed
        return self._report

    @property
    def extra_fields(self) -> dict[str, Any]:
        """Merged into the report: ``config``, ``overrides``, ``extra``, ``metrics``."""
        return self.meter.extra_fields

    @property
    def output_dir(self) -> str | None:
        return self.meter.output_dir

    @property
    def name(self) -> str | None:
        return self.meter.name

    @property
    def state_key(self) -> str:
        """Checkpoint key: the class name, plus the ``name`` argument when given (two
        EnergyCallbacks in one Trainer need distinct names). It does not depend on where the
        files go, so a resume into another folder finds its state. Computed once: Lightning
        reads it on every hook call of every step."""
        key = self.__dict__.get("_state_key")
        if key is None:
            name = self.meter.name
            key = type(self).__qualname__ if name is None else self._generate_state_key(name=name)  # type: ignore[attr-defined]
            self.__dict__["_state_key"] = key
        return key

    def state_dict(self) -> dict[str, Any]:
        """The footprint so far (plain numbers), so that a resumed fit continues it. No
        collective: Lightning may call this on one rank only (an exception checkpoint)."""
        return self.meter.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.meter.load_state_dict(state_dict)

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        """Checkpoints of earlier versions keyed the state by ``output_dir``: adopt the only
        EnergyCallback state of such a checkpoint when this Trainer has only this one."""
        states = checkpoint.get("callbacks") or {}
        if self.state_key in states:
            return  # Lightning passes it to load_state_dict
        name = type(self).__qualname__
        ours = [k for k in states if isinstance(k, str) and (k == name or k.startswith(name + "{"))]
        alone = sum(isinstance(cb, EnergyHooks) for cb in getattr(trainer, "callbacks", [])) == 1
        if len(ours) == 1 and alone:
            self.load_state_dict(states[ours[0]])
            states.pop(ours[0])  # consumed: Lightning does not warn about a missing callback

    # -- lifecycle hooks ---------------------------------------------------------------
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._stage = stage
        self._batches = self._last_exchange = self._last_log = 0
        self._bar_t = -float("inf")
        self._every_n = int(self.meter.options.log_every_n_steps or getattr(trainer, "log_every_n_steps", 50) or 50)
        self._next_exchange = self._every_n
        debug = bool(getattr(trainer, "fast_dev_run", False))
        self._write = self._configured_write and not debug  # a debug run writes nothing, as Lightning
        self.meter.options.write_files = self._write
        self.meter.device = trainer.strategy.root_device
        self._project_at = self.meter.options.project_after_steps if self.meter._projection is None else None
        output_dir = None if self.meter.output_dir is not None else placement.default_output_dir(trainer)
        from lightning_green.callbacks.context import trainer_context

        self.meter.start(default_output_dir=output_dir, context=trainer_context(trainer, pl_module), stage=stage,
                         manage_epochs=False, idle=getattr(trainer, "ckpt_path", None) is None)
        # One process: budgets are checked on every batch (no collective needed).
        self._budget_each_step = self.meter.options.budgets and self.meter._world.world_size == 1

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._end(trainer, "completed", None)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        interrupted = isinstance(exception, KeyboardInterrupt) or type(exception).__name__ == "SIGTERMException"
        self._end(trainer, "interrupted" if interrupted else "failed", exception)

    def _end(self, trainer: Any, status: str, exception: BaseException | None) -> None:
        meter = self.meter
        if not meter.running:
            return
        write = self._write
        report = meter.stop(status, exception, metrics=logs.trainer_metrics(trainer),
                            optimizer_steps=int(getattr(trainer, "global_step", 0) or 0))
        if report is None:
            return
        self._report = report
        if handoff.spawned(trainer):
            handoff.write(self._token, report)
        self._log_final(trainer, report)
        where = f"in {meter.output_dir}" if write else "not written (debug run: Lightning writes nothing either)"
        line = (f"lightning-green: {report.status}, {report.energy_kwh * 1000:.4g} Wh, "
                f"{report.emissions_kg * 1000:.4g} g CO2e; footprint {where}")
        self._info(line if write else report.summary() + "\n" + line)

    # -- phase marks -------------------------------------------------------------------
    def on_sanity_check_start(self, trainer: Any, pl_module: Any) -> None:
        self.meter.set_phase("validate")

    def on_sanity_check_end(self, trainer: Any, pl_module: Any) -> None:
        self.meter.set_phase("other")

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.meter.exclude_from_projection()  # set-up and the sanity check happen once
        # A fit resumed from a mid-epoch checkpoint gets no on_train_epoch_start for the epoch
        # it resumes in (Lightning skips it): mark here so that energy is not left in "other".
        self.on_train_epoch_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self.meter.set_epoch(int(trainer.current_epoch))
        self.meter.set_phase("train")

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        meter = self.meter
        if not meter.running:
            return
        meter.flush()
        energy_j = self._energy_all_ranks_j()  # collective: every rank ends the epoch
        logs.log_metrics(trainer, logs.live_metrics(self.meter, energy_j), ended=True, warn=self.meter._warn)
        after = meter.options.project_after_epochs
        if after is not None and int(trainer.current_epoch) + 1 >= after:
            self._project(trainer)
        self._check_budgets(trainer, energy_j)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.meter.set_phase("other")

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self.meter.set_phase("validate")

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        fitting = self._stage == "fit" and not trainer.sanity_checking
        self.meter.set_phase("train" if fitting else "other")

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self.meter.set_phase("test")

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self.meter.set_phase("other")

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self.meter.set_phase("predict")

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        self.meter.set_phase("other")

    # -- the hot path: a clock read and a list extend per batch --------------------------
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self.meter.begin_step()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        meter = self.meter
        meter.step_batch(batch)
        self._batches = batches = self._batches + 1
        if self._project_at is not None and meter._carried.steps + batches >= self._project_at:
            self._project_at = None  # once; the same batch count on every rank keeps DDP in step
            self._project(trainer)
        if batches >= self._next_exchange:
            self._periodic(trainer, pl_module)
        elif self._budget_each_step:
            self._check_budgets(trainer, meter.live_energy_j())

    def on_validation_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        self.meter.count_batch(batch)

    def on_test_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
                          dataloader_idx: int = 0) -> None:
        self.meter.count_batch(batch)

    def on_predict_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
                             dataloader_idx: int = 0) -> None:
        self.meter.count_batch(batch)

    # -- logging, projection, budgets -----------------------------------------------------
    def _energy_all_ranks_j(self) -> float:
        """Every rank's energy so far: a collective when distributed (every rank calls it at
        the same batch, epoch end or projection point)."""
        meter, batches = self.meter, self._batches
        energy_j = meter.global_energy_j(batches - self._last_exchange, self._every_n)
        self._last_exchange = batches
        self._next_exchange = batches + meter.next_exchange_in(self._every_n)
        return energy_j

    def _periodic(self, trainer: Any, pl_module: Any) -> None:
        """Every ``log_every_n_steps`` batches (under DDP sooner when snapshots need a fresher
        view of every rank): progress bar, loggers, budgets."""
        energy_j = self._energy_all_ranks_j()
        if self._batches - self._last_log < self._every_n and self._batches % self._every_n:
            self._check_budgets(trainer, energy_j)
            return
        self._last_log = self._batches
        now = time.perf_counter()
        # LightningModule.log costs ~0.4 ms a call: refresh the bar at most once a second. Its
        # values are for the bar only (logger=False) and never reach the report's metrics.
        if getattr(trainer, "progress_bar_callback", None) is not None and now - self._bar_t >= 1.0:
            self._bar_t = now
            try:
                pl_module.log("energy/power_w", self.meter.live_power_w(), prog_bar=True, logger=False, on_step=True)
                pl_module.log("energy/energy_wh", energy_j / 3600.0, prog_bar=True, logger=False, on_step=True)
            except Exception as err:  # a module that forbids logging must not stop training
                self.meter._warn(f"could not log to the progress bar: {err}")
        logs.log_metrics(trainer, logs.live_metrics(self.meter, energy_j), ended=False, warn=self.meter._warn)
        self._check_budgets(trainer, energy_j)

    def _log_final(self, trainer: Any, report: Any) -> None:
        """The run's totals by phase, for every stage (a test-only run has its energy logged too)."""
        logs.log_metrics(trainer, logs.final_metrics(report), ended=self._stage == "fit", warn=self.meter._warn)
        for logger in getattr(trainer, "loggers", None) or []:
            try:
                placement.attach_footprint(logger, self.meter.output_dir, self._write)
            except Exception as err:  # a logger that cannot take files must not cost the run
                self.meter._warn(f"could not attach footprint.json to {type(logger).__name__}'s run "
                                 f"({type(err).__name__}: {err}); it is in {self.meter.output_dir}")

    def _project(self, trainer: Any) -> None:
        """Predict the whole configured run's energy from the training batches done so far (a
        collective under DDP: every rank gets here at the same batch or epoch end)."""
        planned, why_not = placement.planned_batches(trainer)
        if planned is None:
            self.meter._warn(f"no projection: {why_not}")
            return
        # The meter's energy by phase reaches only resolved marks: mark now and let the sampler
        # resolve it (one reading; once per run), or the batches so far would count as set-up.
        self.meter.mark("projection")
        self.meter.flush(PROJECTION_FLUSH_S)
        self.meter.project_run(planned)

    def _check_budgets(self, trainer: Any, energy_j: float) -> None:
        if self.meter.check_budgets(energy_j) is not None:
            trainer.should_stop = True

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()  # the meter leaves its running parts behind itself

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.meter!r})"


def _option_property(name: str) -> property:
    return property(lambda self: getattr(self.meter.options, name), doc=f"The ``{name}`` option.")


for _name in _OPTION_NAMES:
    setattr(EnergyHooks, _name, _option_property(_name))
