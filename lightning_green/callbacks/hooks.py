"""EnergyCallback's behaviour, shared by the ``lightning.pytorch`` and ``pytorch_lightning`` twins.

This module imports no Lightning: :mod:`lightning_green.callbacks.lightning` and
:mod:`lightning_green.callbacks.pytorch_lightning` each mix :class:`EnergyHooks` into their package's
``Callback`` class, because the two packages' Trainers only accept their own callbacks.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from typing import Any

from lightning_green import carbon
from lightning_green.callbacks import crash_tail
from lightning_green.engine import totals
from lightning_green.engine.batches import count_samples, token_count
from lightning_green.engine.distributed import gather_objects, is_distributed
from lightning_green.callbacks.finish import build_report, rank_arrays, spawned, write_handoff, write_outputs
from lightning_green.sensors.base import Sensor
from lightning_green.engine.session import J_PER_KWH, MeterSession
from lightning_green.validation import check_number, check_optional_str

_STAGE_PHASE = {"validate": "validate", "test": "test", "predict": "predict"}
#: How long an epoch end or a checkpoint waits for the meter thread to resolve the marks. A
#: healthy meter takes milliseconds; one stuck in a sensor read must not hold training (marks
#: left over are resolved later, and the checkpoint then lags by those last moments).
FLUSH_TIMEOUT_S = 0.1


class EnergyHooks:
    """Measure the energy and CO2 of the Trainer calls this callback is attached to.

    See :class:`lightning_green.callbacks.lightning.EnergyCallback` for the arguments and logged keys.
    """

    def __init__(
        self,
        sensors: str | list[Sensor] = "auto",
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
    ) -> None:
        super().__init__()
        if isinstance(sensors, str):
            if sensors != "auto":
                raise ValueError(f"sensors must be 'auto' or a list of Sensor objects, got {sensors!r}")
        elif not isinstance(sensors, (list, tuple)) or not sensors or not all(
            isinstance(s, Sensor) for s in sensors
        ):
            raise ValueError(
                "sensors must be 'auto' or a non-empty list of lightning_green.sensors.Sensor objects, "
                f"got {sensors!r}"
            )
        self.sensors = sensors if isinstance(sensors, str) else list(sensors)
        self.sampling_interval_s = check_number(
            "sampling_interval_s", sampling_interval_s, exclusive_minimum=0.0, maximum=3600.0
        )
        for name, value in (
            ("country_iso_code", country_iso_code),
            ("cloud_provider", cloud_provider),
            ("cloud_region", cloud_region),
        ):
            check_optional_str(name, value)
        check_number(
            "carbon_intensity_g_per_kwh", carbon_intensity_g_per_kwh, exclusive_minimum=0.0,
            maximum=carbon.MAX_G_PER_KWH, optional=True,
        )
        self.pue = carbon.validate_pue(pue)
        self.intensity = carbon.resolve_intensity(
            carbon_intensity_g_per_kwh=carbon_intensity_g_per_kwh,
            country_iso_code=country_iso_code,
            cloud_provider=cloud_provider,
            cloud_region=cloud_region,
        )
        if output_dir is not None and not isinstance(output_dir, (str, os.PathLike)):
            raise ValueError(f"output_dir must be a path (str or os.PathLike) or None, got {output_dir!r}")
        self._output_dir_arg = os.fspath(output_dir) if output_dir is not None else None
        self.idle_baseline_s = check_number("idle_baseline_s", idle_baseline_s, minimum=0.0, maximum=3600.0)
        self.max_energy_kwh = check_number("max_energy_kwh", max_energy_kwh, exclusive_minimum=0.0, optional=True)
        self.max_emissions_kg = check_number(
            "max_emissions_kg", max_emissions_kg, exclusive_minimum=0.0, optional=True
        )
        self.project_after_epochs = check_number(
            "project_after_epochs", project_after_epochs, minimum=1, optional=True, integer=True
        )
        self.project_after_steps = check_number(
            "project_after_steps", project_after_steps, minimum=1, optional=True, integer=True
        )
        self.log_every_n_steps = check_number(
            "log_every_n_steps", log_every_n_steps, minimum=1, optional=True, integer=True
        )
        if not isinstance(write_files, bool):
            raise ValueError(f"write_files must be True or False, got {write_files!r}")
        self.write_files = write_files
        #: Merged into the report when it is written: ``config``, ``overrides``, ``extra``, ``metrics``.
        self.extra_fields: dict[str, Any] = {}
        self.output_dir: str | None = self._output_dir_arg
        self._token = uuid.uuid4().hex
        self._run_id = self._token
        self._carried = totals.empty()  # from a checkpoint or an earlier stage
        self._carried_meta: dict[str, Any] = {}
        self._report = None
        self._session: MeterSession | None = None
        self._unavailable: list[dict] = []
        self._warnings: list[str] = []
        self._batches = 0
        self._device_tokens: Any = None
        self._stopped_by: str | None = None
        self._predicted: tuple[float, float] | None = None
        self._stage: str | None = None

    # -- public ------------------------------------------------------------------------
    @property
    def report(self) -> Any:
        """The FootprintReport of everything measured so far (None before the first run ends)."""
        from lightning_green.callbacks.finish import take_handoff

        handed = take_handoff(self._token)  # ddp_spawn: the report was made in a child process
        if handed is not None:
            self._report = handed
        return self._report

    def state_dict(self) -> dict[str, Any]:
        """Totals so far (plain numbers), so that a resumed fit continues the footprint."""
        session = self._session
        live = totals.empty()
        summaries: list[dict[str, Any]] = []
        if session is not None:
            # The ledger's energy then reaches this mark; duration_s ends at it too (not after
            # the flush, which may wait on a busy machine and would count time without energy).
            mark_wall_s = session.mark_now(("checkpoint",))
            session.flush(FLUSH_TIMEOUT_S)
            summaries = [self._local_summary(session, end_wall_s=mark_wall_s)]
            if self._world_size > 1 and is_distributed():
                # Only rank 0's state reaches the checkpoint: it must hold every rank's energy.
                # Collective; Trainer.save_checkpoint runs on all ranks (it ends in a barrier).
                summaries = gather_objects(summaries[0])
            live = totals.merge_ranks([self._session_totals(s) for s in summaries])
        return {
            "schema": totals.SCHEMA,
            "run_id": self._run_id,
            "totals": totals.add(self._carried, live),
            "started_at": self._carried_meta.get("started_at") or self._session_started_at(),
            "idle_power_w": self._idle_total_w(summaries),
            "segments": int(self._carried_meta.get("segments", 0)) + (1 if session is not None else 0),
            "redone_energy_j": float(self._carried_meta.get("redone_energy_j", 0.0)),
        }

    @property
    def state_key(self) -> str:
        """Checkpoint key: the class name, plus ``output_dir`` when one was given.

        Lightning refuses two stateful callbacks with one key, so two EnergyCallbacks in one
        Trainer need distinct ``output_dir`` arguments (they would write the same files anyway).
        Lightning reads this on every hook call of every step (for its profiler's label):
        computed once.
        """
        key = self.__dict__.get("_state_key")
        if key is None:
            if self._output_dir_arg is None:
                key = type(self).__qualname__
            else:
                key = self._generate_state_key(output_dir=self._output_dir_arg)  # type: ignore[attr-defined]
            self.__dict__["_state_key"] = key
        return key

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        """Resume into another ``output_dir`` (a new Hydra run folder): adopt the checkpoint's
        only EnergyCallback state when this Trainer has only this one."""
        states = checkpoint.get("callbacks") or {}
        if self.state_key in states:
            return  # Lightning passes it to load_state_dict
        name = type(self).__qualname__
        ours = [k for k in states if isinstance(k, str) and (k == name or k.startswith(name + "{"))]
        alone = sum(isinstance(cb, EnergyHooks) for cb in getattr(trainer, "callbacks", [])) == 1
        if len(ours) == 1 and alone:
            self.load_state_dict(states[ours[0]])

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not isinstance(state_dict, dict):
            return
        self._run_id = str(state_dict.get("run_id") or self._run_id)
        self._carried = totals.clean(state_dict.get("totals"))
        # Loaded after setup(): steps continue from here. _first_step is the step index the
        # current call started at; _carried only changes here and when a call ends.
        self._first_step = self._carried_steps
        self._carried_meta = {
            "started_at": state_dict.get("started_at"),
            "idle_power_w": state_dict.get("idle_power_w"),
            "segments": state_dict.get("segments", 1),
            "resumed": True,
            "redone_energy_j": float(state_dict.get("redone_energy_j") or 0.0),
        }
        self._crash_tail_pending = True  # looked for once the checkpoint path is known

    # -- lifecycle hooks ---------------------------------------------------------------
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._start(trainer, stage)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._finish(trainer, pl_module, "completed")

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        interrupted = isinstance(exception, KeyboardInterrupt) or type(exception).__name__ == "SIGTERMException"
        self._finish(trainer, pl_module, "interrupted" if interrupted else "failed", exception)

    # -- phase marks -------------------------------------------------------------------
    def on_sanity_check_start(self, trainer: Any, pl_module: Any) -> None:
        self._mark(("phase", "validate"))

    def on_sanity_check_end(self, trainer: Any, pl_module: Any) -> None:
        self._mark(("phase", "other"))

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if self.__dict__.pop("_crash_tail_pending", False):
            self._take_crash_tail(trainer)
        # A fit resumed from a mid-epoch checkpoint gets no on_train_epoch_start for the epoch
        # it resumes in (Lightning skips it): mark here so that energy is not left in "other".
        self.on_train_epoch_start(trainer, pl_module)

    def _take_crash_tail(self, trainer: Any) -> None:
        """A resumed one-process fit: add what the crashed run spent after this checkpoint."""
        ckpt_path = getattr(trainer, "ckpt_path", None)
        if not ckpt_path or self._world_size != 1:
            return
        try:
            tail = crash_tail.take(ckpt_path, self._run_id, self._carried)
        except Exception as err:  # the footprint must never cost the user the run
            self._warn_once(f"could not read the crashed run's totals ({type(err).__name__}: {err})")
            return
        if tail is None:
            return
        self._carried = totals.add(self._carried, tail)
        self._carried_meta["redone_energy_j"] = float(self._carried_meta.get("redone_energy_j", 0.0)) + tail["energy_j"]
        self._warn_once(
            f"carried {tail['energy_j'] / J_PER_KWH:.6g} kWh ({tail['duration_s']:.1f} s) that the crashed run "
            "spent after this checkpoint on steps done again now"
        )

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._mark(("epoch", int(trainer.current_epoch)))
        self._mark(("phase", "train"))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._epoch_end(trainer, pl_module)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._mark(("phase", "other"))

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self._mark(("phase", "validate"))

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        fitting = self._stage == "fit" and not trainer.sanity_checking
        self._mark(("phase", "train" if fitting else "other"))

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self._mark(("phase", "test"))

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._mark(("phase", "other"))

    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self._mark(("phase", "predict"))

    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        self._mark(("phase", "other"))

    # -- the hot path: one mark per batch edge, nothing else ---------------------------
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        session = self._session
        if session is not None:
            session.meter.mark(("step_start", self._first_step + self._batches))

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        session = self._session
        if session is None:
            return
        tokens = token_count(batch)
        if tokens is not None and not isinstance(tokens, int):
            self._device_tokens = tokens if self._device_tokens is None else self._device_tokens + tokens
            tokens = 0
        session.meter.mark(("step_end", self._first_step + self._batches, count_samples(batch), tokens or 0))
        self._batches += 1
        if self._project_at_step is not None and self._first_step + self._batches >= self._project_at_step:
            self._project_at_step = None  # once; the same batch count on every rank keeps DDP in step
            self._project(trainer, self._carried["energy_j"] + self._global_live_energy_j(trainer))
        if self._batches % self._every_n == 0:
            self._periodic(trainer, pl_module)
        elif self._check_budget_every_step:
            self._check_budgets(trainer, self._carried["energy_j"] + session.live_energy_j())

    # -- internals ---------------------------------------------------------------------
    def _mark(self, label: tuple) -> None:
        if self._session is not None:
            self._session.meter.mark(label)

    def _start(self, trainer: Any, stage: str) -> None:
        if self._session is not None:  # a previous call ended without teardown
            self._session.stop()
            self._session.cleanup()
            self._session = None
        self._stage = stage
        self._bar_t = -float("inf")
        self._project_at_step = self.project_after_steps if self._predicted is None else None
        self._first_step = self._carried_steps
        self._batches = 0
        self._device_tokens = None
        self._stopped_by = None
        self._warnings = []
        self._rank = int(getattr(trainer, "global_rank", 0))
        self._local_rank = int(getattr(trainer, "local_rank", 0))
        self._world_size = int(getattr(trainer, "world_size", 1))
        self._every_n = int(self.log_every_n_steps or getattr(trainer, "log_every_n_steps", 50) or 50)
        budgets = self.max_energy_kwh is not None or self.max_emissions_kg is not None
        self._check_budget_every_step = budgets and self._world_size == 1
        if self.output_dir is None:
            self.output_dir = os.fspath(getattr(trainer, "log_dir", None) or os.getcwd())
        try:
            sensors, self._unavailable = self._sensors_for_this_process(trainer)
            session = self._open_session(trainer, sensors)
        except Exception as err:  # measuring nothing beats failing the fit; ranks stay in step
            self._warn_once(f"could not start measuring ({type(err).__name__}: {err}); this process reports no energy")
            session = self._open_session(trainer, [])
        session.begin()
        self._session = session

    def _open_session(self, trainer: Any, sensors: list[Sensor]) -> MeterSession:
        session = MeterSession(sensors, self.sampling_interval_s)
        try:
            session.start()
            resuming = getattr(trainer, "ckpt_path", None) is not None  # idle power comes with the checkpoint
            if self.idle_baseline_s > 0 and self._carried_meta.get("idle_power_w") is None and not resuming:
                session.measure_idle(self.idle_baseline_s)
        except BaseException:
            session.stop()
            session.cleanup()
            raise
        return session

    @property
    def _carried_steps(self) -> int:
        return int(self._carried.get("steps", 0))

    def _sensors_for_this_process(self, trainer: Any) -> tuple[list[Sensor], list[dict]]:
        """Device-scoped sensors on every rank; host-scoped ones on local rank 0 only."""
        unavailable: list[dict] = []
        if self.sensors == "auto":
            from lightning_green.sensors.detect import probe

            found, missing = probe(torch_device=trainer.strategy.root_device)
            unavailable = [m.describe() for m in missing]
        else:
            import copy

            found = []
            for sensor in self.sensors:
                try:  # a user sensor's bug must not fail the fit: leave it out, say why
                    sensor = copy.copy(sensor)
                    sensor.describe()
                except Exception as err:
                    reason = f"left out: {type(err).__name__}: {err}"
                    unavailable.append({"source": sensor.name, "component": sensor.component, "reason": reason})
                    self._warn_once(f"sensor {sensor.name!r} {reason}")
                    continue
                found.append(sensor)
        keep = [s for s in found if s.scope == "device" or self._local_rank == 0]
        return keep, unavailable

    def _idle_total_w(self, summaries: list[dict[str, Any]]) -> float | None:
        """Idle power of the whole run: carried from a checkpoint or an earlier call, else the
        sum of every rank's measured idle power (None when none was measured)."""
        carried = self._carried_meta.get("idle_power_w")
        if carried is not None:
            return float(carried)
        measured = [s["idle_power_w"] for s in summaries if s.get("idle_power_w") is not None]
        return float(sum(measured)) if measured else None

    def _session_started_at(self) -> float | None:
        return self._session.started_wall_s if self._session is not None else None

    def _session_totals(self, summary: dict[str, Any]) -> dict[str, Any]:
        """A totals dict for one rank's session summary, with carbon at this callback's settings."""
        seg = totals.empty()
        for key in ("energy_j", "energy_j_measured", "energy_j_estimated", "duration_s"):
            seg[key] = float(summary[key])
        for key in ("energy_j_by_component", "energy_j_by_phase", "energy_j_by_epoch"):
            seg[key] = dict(summary[key])
        seg["samples"] = float(summary.get("samples", 0))
        seg["tokens"] = float(summary.get("tokens", 0))
        seg["steps"] = float(summary.get("steps", 0))
        seg["energy_j_by_rank"] = {str(summary.get("rank", 0)): seg["energy_j"]}
        seg["energy_j_by_host"] = {str(summary.get("host", "localhost")): seg["energy_j"]}
        seg["facility_energy_j"] = seg["energy_j"] * self.pue
        seg["emissions_kg"] = seg["facility_energy_j"] / J_PER_KWH * self.intensity.g_per_kwh / 1000.0
        return seg

    def _local_summary(self, session: MeterSession, end_wall_s: float | None = None) -> dict[str, Any]:
        import socket

        tokens = int(session.ledger.tokens)
        if self._device_tokens is not None:  # read once, at the end: no per-step device sync
            try:
                tokens += int(self._device_tokens.item())
            except Exception as err:  # e.g. after a device-side assert: keep the report
                self._warn_once(f"tokens on the device could not be read ({type(err).__name__}); counted on the CPU only")
        summary = session.summary(end_wall_s)
        summary.update(
            rank=self._rank,
            host=socket.gethostname(),
            samples=session.ledger.samples,
            tokens=tokens,
            steps=self._batches,
        )
        return summary

    def _periodic(self, trainer: Any, pl_module: Any) -> None:
        """Every ``log_every_n_steps`` batches: live logging, projection and budgets."""
        session = self._session
        energy_j = self._carried["energy_j"] + self._global_live_energy_j(trainer)
        now = time.perf_counter()
        # LightningModule.log costs ~0.4 ms a call: refresh the bar at most once a second.
        if getattr(trainer, "progress_bar_callback", None) is not None and now - self._bar_t >= 1.0:
            self._bar_t = now
            try:
                pl_module.log("energy/power_w", session.live_power_w(), prog_bar=True, logger=False, on_step=True)
                pl_module.log("energy/energy_wh", energy_j / 3600.0, prog_bar=True, logger=False, on_step=True)
            except Exception as err:  # a module that forbids logging must not stop training
                self._warn_once(f"could not log to the progress bar: {err}")
        self._log_metrics(trainer, energy_j)
        self._check_budgets(trainer, energy_j)

    def _global_live_energy_j(self, trainer: Any) -> float:
        """This segment's energy so far over all ranks (a collective when distributed)."""
        local = self._session.live_energy_j()
        if self._world_size == 1:
            return local
        import torch

        tensor = torch.tensor(local, dtype=torch.float64, device=trainer.strategy.root_device)
        return float(trainer.strategy.reduce(tensor, reduce_op="sum"))

    def _log_metrics(self, trainer: Any, energy_j: float) -> None:
        if not getattr(trainer, "is_global_zero", True) or not getattr(trainer, "loggers", None):
            return
        ledger = self._session.ledger
        carried = self._carried
        metrics = {"energy/energy_kwh": energy_j / J_PER_KWH}
        for key, prefix in (("energy_j_by_component", "energy"), ("energy_j_by_phase", "energy")):
            merged = dict(carried[key])
            for name, value in dict(getattr(ledger, key)).items():
                merged[name] = merged.get(name, 0.0) + value
            metrics.update({f"{prefix}/{name}_kwh": value / J_PER_KWH for name, value in merged.items()})
        metrics["carbon/emissions_kg"] = self._emissions_kg(energy_j)
        if self._predicted is not None:
            metrics["energy/predicted_energy_kwh"], metrics["carbon/predicted_emissions_kg"] = self._predicted
        for logger in trainer.loggers:
            try:
                logger.log_metrics(metrics, step=trainer.global_step)
            except Exception as err:
                self._warn_once(f"logger {type(logger).__name__} rejected energy metrics: {err}")

    def _emissions_kg(self, energy_j: float) -> float:
        new_j = energy_j - self._carried["energy_j"]
        return self._carried["emissions_kg"] + new_j * self.pue / J_PER_KWH * self.intensity.g_per_kwh / 1000.0

    def _epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._session is None:
            return
        self._session.flush(FLUSH_TIMEOUT_S)
        energy_j = self._carried["energy_j"] + self._global_live_energy_j(trainer)
        self._log_metrics(trainer, energy_j)
        epochs_done = int(trainer.current_epoch) + 1
        if self.project_after_epochs is not None and self._predicted is None:
            if epochs_done >= self.project_after_epochs:
                self._project(trainer, energy_j)
        self._check_budgets(trainer, energy_j)

    def _project(self, trainer: Any, energy_j: float) -> None:
        """Predict the whole configured run's energy from the fraction of batches done."""
        done = self._first_step + self._batches
        planned = []
        max_steps = getattr(trainer, "max_steps", -1) or -1
        if max_steps > 0:
            planned.append(max_steps * max(1, int(getattr(trainer, "accumulate_grad_batches", 1))))
        max_epochs = getattr(trainer, "max_epochs", None)
        per_epoch = getattr(trainer, "num_training_batches", float("inf"))
        if max_epochs is not None and max_epochs > 0 and per_epoch != float("inf"):
            planned.append(int(max_epochs * per_epoch))
        if not planned or done <= 0:
            self._warn_once("no projection: the run's length is not known (max_epochs=-1 and max_steps=-1)")
            return
        fraction = min(1.0, done / min(planned))
        predicted_kwh = energy_j / fraction / J_PER_KWH
        self._predicted = (predicted_kwh, self._emissions_kg(energy_j / fraction))

    def _check_budgets(self, trainer: Any, energy_j: float) -> None:
        if self._stopped_by is not None:
            return
        reason = None
        energy_kwh = energy_j / J_PER_KWH
        if self.max_energy_kwh is not None and energy_kwh >= self.max_energy_kwh:
            reason = f"energy budget reached: {energy_kwh:.6g} kWh >= max_energy_kwh={self.max_energy_kwh:g}"
        elif self.max_emissions_kg is not None:
            emissions = self._emissions_kg(energy_j)
            if emissions >= self.max_emissions_kg:
                reason = f"emissions budget reached: {emissions:.6g} kg >= max_emissions_kg={self.max_emissions_kg:g}"
        if reason is not None:
            self._stopped_by = f"training stopped early by lightning-green: {reason}"
            trainer.should_stop = True
            warnings.warn(self._stopped_by, stacklevel=2)

    def _warn_once(self, message: str) -> None:
        if message not in self._warnings:
            self._warnings.append(message)
            warnings.warn(f"lightning-green: {message}", stacklevel=3)

    def _finish(self, trainer: Any, pl_module: Any, status: str, exception: BaseException | None = None) -> None:
        """Stop measuring, reduce over ranks (when all can), write the report. Never raises.

        A completed distributed run makes exactly one collective here (every rank's summary
        and per-step arrays in one gather), before any rank-0-only work, so that an error on
        one rank can never leave the others waiting.
        """
        session, self._session = self._session, None
        if session is None:
            return
        gathered = status == "completed" and self._world_size > 1 and is_distributed()
        try:
            if self.__dict__.pop("_crash_tail_pending", False) and self._stage == "fit":
                self._take_crash_tail(trainer)  # a resume that ended before training began
            summary = arrays = None
            local_error = None
            try:
                session.stop()
                summary = self._local_summary(session)
                if self.write_files and gathered:
                    arrays = rank_arrays(session.steps_path)
            except Exception as err:  # still join the collective below, with nothing to add
                local_error = err
            payload = gather_objects((summary, arrays)) if gathered else [(summary, arrays)]
            if local_error is not None:
                raise local_error
            # -- no collective below this line --
            summaries = [s for s, _ in payload if s is not None]
            per_rank = [a for _, a in payload if a is not None] if gathered and self.write_files else None
            report, carried = build_report(self, trainer, pl_module, summary, summaries, status, exception, gathered)
            idle_w = self._idle_total_w(summaries)
            self._carried = carried
            if report is not None:
                self._report = report
                if self.write_files:
                    write_outputs(self, report, session, per_rank)
                if spawned(trainer):
                    write_handoff(self._token, report)
                if status != "completed" and self._stage == "fit" and self.write_files and self._world_size == 1:
                    try:  # for a resume from one of this run's checkpoints
                        crash_tail.write(trainer, self._run_id, status, carried)
                    except Exception as err:
                        warnings.warn(f"lightning-green could not leave its totals by the checkpoints: {err}", stacklevel=2)
            self._carried_meta.update(
                started_at=self._carried_meta.get("started_at") or summary["started_wall_s"],
                idle_power_w=idle_w,
                segments=int(self._carried_meta.get("segments", 0)) + 1,
            )
        except Exception as err:  # the footprint must never cost the user the run
            warnings.warn(f"lightning-green could not finish its report: {type(err).__name__}: {err}", stacklevel=2)
            if exception is None and os.environ.get("LIGHTNING_GREEN_STRICT") == "1":
                raise
        finally:
            session.cleanup()

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for ddp_spawn: a running session (thread, handles) never travels.
        state = self.__dict__.copy()
        state["_session"] = None
        state["_device_tokens"] = None
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sensors={self.sensors!r}, pue={self.pue}, intensity={self.intensity.g_per_kwh:g} g/kWh)"
