"""EnergyMeter: the public, framework-free way to measure a training (or serving) loop.

Example::

    from lightning_green import EnergyMeter

    meter = EnergyMeter(output_dir="runs/a", country_iso_code="FRA", pue=1.2)
    with meter:                                  # start(); stop() and the files on exit
        with meter.phase("train"):               # time outside any phase is "other"
            for batch in loader:
                with meter.step(samples=len(batch)):   # one steps.csv row
                    loss = model(batch).loss; loss.backward(); opt.step()
            meter.epoch_end()
    print(meter.report.summary())

The Lightning callbacks are thin adapters over this class.
"""

from __future__ import annotations

import math
import os
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

from lightning_green.engine.batches import count_samples, token_counts
from lightning_green.engine.distributed import World, all_gather, all_reduce_sum, current_world
from lightning_green.engine.marks import PHASE_INDEX, PHASES, Boundary, EpochMark, PhaseMark
from lightning_green.engine.session import Session
from lightning_green.engine.totals import Totals
from lightning_green.meter import finish, sensors as sensor_choice
from lightning_green.meter.budget import Projection, budget_reason, project
from lightning_green.meter.options import MeterOptions
from lightning_green.meter.state import RankState, state_dir_for
from lightning_green.outputs import files
from lightning_green.outputs.build import RunFacts, build_report
from lightning_green.outputs.emissions_csv import append_emissions_csv
from lightning_green.outputs.footprint import FootprintReport, write_footprint
from lightning_green.outputs.steps_csv import STEPS_FILENAME, write_steps_csv
from lightning_green.units import J_PER_KWH

__all__ = ["EnergyMeter"]

STATUSES = ("completed", "failed", "interrupted")
CHECKPOINT_SCHEMA = 2
#: How long an epoch end or a checkpoint waits for the sampler to resolve the marks. A healthy
#: sampler takes milliseconds; one stuck in a sensor read must not hold training.
FLUSH_TIMEOUT_S = 0.1


class _Phase:
    __slots__ = ("meter", "name", "previous")

    def __init__(self, meter: EnergyMeter, name: str) -> None:
        self.meter, self.name, self.previous = meter, name, "other"

    def __enter__(self) -> _Phase:
        self.previous = self.meter.current_phase
        self.meter.set_phase(self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        self.meter.set_phase(self.previous if self.previous != self.name else "other")


class _Step:
    __slots__ = ("meter", "samples", "tokens", "padded_tokens")

    def __init__(self, meter: EnergyMeter) -> None:
        self.meter = meter
        self.samples = self.tokens = self.padded_tokens = 0

    def __enter__(self) -> _Step:
        self.meter.begin_step()
        return self

    def __exit__(self, *exc: object) -> None:
        self.meter.end_step(self.samples, self.tokens, self.padded_tokens)


class EnergyMeter:
    r"""Measure the energy and CO2 of a loop, per phase, epoch and step; write the footprint.

    A background thread reads the sensors; ``step()`` only records two timestamps (well
    under a microsecond of the training thread's time), so no step waits on a sensor. Under
    ``torch.distributed`` (Fabric, torchrun, or by hand) every rank makes its own meter:
    device sensors are read per rank, host sensors once per host, totals are summed over
    ranks at :meth:`stop` and only global rank 0 writes ``footprint.json``, ``emissions.csv``
    and ``steps.csv``. ``start``/``stop`` cycles add up: a second ``with meter:`` continues
    the same footprint.

    Args:
        sensors: ``"auto"`` (this process's GPU through NVML, the CPU through RAPL or an
            estimate, the RAM estimate) or a list of :class:`~lightning_green.sensors.Sensor`.
        sampling_interval_s: How often power sensors are read, in seconds (> 0).
        country_iso_code: ISO 3166-1 alpha-3 code for the grid's carbon intensity (``"FRA"``).
        cloud_provider: With ``cloud_region``, use that region's intensity (``"gcp"``, ...).
        cloud_region: The provider's region name (``"europe-west1"``).
        carbon_intensity_g_per_kwh: An explicit intensity (> 0, <= 2000 g/kWh); wins over lookups.
        pue: Power usage effectiveness of the facility (1.0-5.0).
        output_dir: Folder (or fsspec URL) for the files; default ``<cwd>/lightning_green/<run_id>``.
        idle_baseline_s: Seconds of idle power measured at the first start (0 = off); the
            report then has ``idle_power_w`` and ``net_energy_kwh``.
        max_energy_kwh, max_emissions_kg: Budgets; :attr:`budget_exceeded` tells when reached.
        project_after_epochs, project_after_steps: After this point, predict the whole run.
        log_every_n_steps: How often (in steps) budgets and projections are checked.
        write_files: Write the files (global rank 0); the report is built either way.
        snapshot_every_s: Write the footprint so far (status ``running``) this often, so a run
            killed at any moment leaves its energy (0 = off).
        exporters: Live exporters (e.g. ``lightning_green.exporters.PrometheusExporter``).
        name: A name for this measurement, recorded in the report.
        device: The torch device this process trains on (default: the current CUDA device when
            CUDA is initialised, else the CPU); picks the GPU that NVML measures.
    """

    def __init__(
        self,
        sensors: str | list[Any] = "auto",
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
        name: str | None = None,
        device: Any = None,
    ) -> None:
        self.options = MeterOptions.build(
            sensors=sensors, sampling_interval_s=sampling_interval_s, country_iso_code=country_iso_code,
            cloud_provider=cloud_provider, cloud_region=cloud_region,
            carbon_intensity_g_per_kwh=carbon_intensity_g_per_kwh, pue=pue, output_dir=output_dir,
            idle_baseline_s=idle_baseline_s, max_energy_kwh=max_energy_kwh, max_emissions_kg=max_emissions_kg,
            project_after_epochs=project_after_epochs, project_after_steps=project_after_steps,
            log_every_n_steps=log_every_n_steps, write_files=write_files, snapshot_every_s=snapshot_every_s,
            exporters=exporters or [],
        )
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError(f"name must be a non-empty string or None, got {name!r}")
        self.name = name
        self.device = device
        #: Merged into the report when it is written: ``config``, ``overrides``, ``extra``, ``metrics``.
        self.extra_fields: dict[str, Any] = {}
        self.run_id = uuid.uuid4().hex
        self.output_dir: str | None = self.options.output_dir
        self.report: FootprintReport | None = None
        self._carried = Totals()  # this rank's own earlier segments
        self._meta: dict[str, Any] = {"segments": 0, "resumed": False, "redone_energy_j": 0.0}
        self._state: RankState | None = None
        self._state_dir: str | None = None
        self._session: Session | None = None
        self._sampler: Any = None
        self._extend: Any = None
        self._world = World()
        self._unavailable: list[dict] = []
        self._warnings: list[str] = []
        self._phase_index = PHASE_INDEX["other"]
        self._epoch = -1
        self._steps = 0  # training steps of this segment (budgets, projections, checkpoint keys)
        self._device_tokens: Any = None
        self._step_scope = _Step(self)
        self._context: dict[str, Any] = {}
        self._stage: str | None = None
        self.stopped_by: str | None = None
        self._projection: Projection | None = None
        self._recurring_from_j = 0.0
        self._last_snapshot = -math.inf
        self._next_epoch: int | None = 0  # plain loops: the first step starts epoch 0
        self._final_figures: Any = None
        self._built: FootprintReport | None = None

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._session is not None

    def start(self, *, default_output_dir: Callable[[str], str] | None = None, context: dict[str, Any] | None = None,
              stage: str | None = None, idle: bool = True, manage_epochs: bool = True) -> EnergyMeter:
        """Start measuring (a collective under torch.distributed: every rank starts together).

        Adapters pass ``default_output_dir(run_id)`` (e.g. the Trainer's log dir), the run ``context``
        (precision, strategy, ...) and a ``stage`` name; an adapter that marks epochs itself
        passes ``manage_epochs=False`` (otherwise the first step starts epoch 0 and
        :meth:`epoch_end` moves on). Never raises because of a sensor: a process that cannot
        measure reports no energy and says why.
        """
        if self._session is not None:
            self._close_session()
        self._world = world = current_world()
        self._stage = stage
        self._context = dict(context or {})
        self._warnings = []
        self.stopped_by = None
        self._steps = 0
        self._device_tokens = None
        self._phase_index, self._epoch = PHASE_INDEX["other"], -1
        self._next_epoch = 0 if manage_epochs else None
        self._final_figures = None
        if world.distributed and self._meta["segments"] == 0 and not self._meta["resumed"]:
            self.run_id = all_gather(self.run_id)[0]  # one run id: rank 0's
        if self.output_dir is None:
            default = default_output_dir(self.run_id) if default_output_dir is not None else None
            self.output_dir = default or os.path.join(os.getcwd(), "lightning_green", self.run_id)
        failure = None
        try:
            found, self._unavailable, notes = sensor_choice.find_sensors(self.options.sensors, self.device)
        except Exception as err:  # detection itself failed: measure nothing, say why
            found, self._unavailable, notes, failure = [], [], [], err
        kept, more = sensor_choice.choose(found, world)  # collective; every rank reaches it
        for note in notes + more:
            self._warn(note)
        session = None
        if failure is None:
            try:
                session = self._open(kept, idle)
            except Exception as err:
                failure = err
        if session is None:  # measuring nothing beats failing the run
            self._warn(f"could not start measuring ({type(failure).__name__}: {failure}); this process reports no energy")
            session = self._open([], idle=False)
        self._session = session
        self._sampler = session.sampler
        self._extend = session.sampler.step_buffer.extend
        self._recurring_from_j = 0.0
        self._last_snapshot = time.monotonic()
        session.begin()
        for exporter in self.options.exporters:
            self._call_exporter(exporter, "start", self._labels())
        return self

    def _open(self, sensors: list[Any], idle: bool) -> Session:
        session = Session(sensors, self.options.sampling_interval_s, first_step=int(self._carried.step_rows),
                          on_round=self._on_round)
        try:
            session.start()
            if idle and self.options.idle_baseline_s > 0 and self._meta.get("idle_power_w") is None:
                self._meta["idle_power_w"] = session.measure_idle(self.options.idle_baseline_s)
        except BaseException:
            session.stop()
            session.cleanup()
            raise
        return session

    def stop(self, status: str = "completed", exception: BaseException | None = None, *,
             metrics: dict[str, float] | None = None, context: dict[str, Any] | None = None,
             optimizer_steps: int | None = None) -> FootprintReport | None:
        """Stop measuring, sum over ranks (a collective when ``completed`` and distributed),
        write the files (rank 0) and return the report (None on other ranks). Idempotent.

        Never raises because of the footprint: a failure to report is a warning (set
        ``LIGHTNING_GREEN_STRICT=1`` to raise it instead, as the tests do).
        """
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        session = self._session
        if session is None:
            return None
        self._session = self._sampler = self._extend = None
        world = self._world
        if context:
            self._context.update(context)
        self._built = None
        try:
            return self._finish(session, world, status, exception, metrics or {}, optimizer_steps)
        except Exception as err:  # the footprint must never cost the user the run
            warnings.warn(f"lightning-green could not finish its report: {type(err).__name__}: {err}", stacklevel=2)
            if exception is None and os.environ.get("LIGHTNING_GREEN_STRICT") == "1":
                raise
            return self._built  # built, but its files could not be written
        finally:
            figures = getattr(self, "_final_figures", None)
            for exporter in self.options.exporters:
                self._call_exporter(exporter, "stop", figures)
            session.cleanup()

    def _finish(self, session: Session, world: World, status: str, exception: BaseException | None,
                metrics: dict[str, float], optimizer_steps: int | None) -> FootprintReport | None:
        gathered_ok = status == "completed" and world.distributed
        result = None
        try:
            session.stop()
            segment = self._segment_totals(session)
            own = self._carried + segment
            result = finish.RankResult(
                rank=world.rank, host=world.host, totals=own.to_dict(), segment=segment.to_dict(),
                sensors=[dict(e, rank=world.rank, host=world.host) for e in session.sensor_entries(include_extra=True)],
                warnings=session.warnings() + self._warnings, idle_power_w=self._meta.get("idle_power_w"),
                rows=session.store.rows, components=list(session.store.components),
            )
        except Exception as err:
            local_error: Exception | None = err
        else:
            local_error = None
        alone = World(world.rank, 1, world.host)
        gathered = finish.reduce_to_zero(result, session.store, world if gathered_ok else alone,
                                         with_rows=self.options.write_files,
                                         spill_path=session.scratch_path("reduced.bin"))
        if local_error is not None:
            raise local_error
        # -- no collective below this line --
        self._carried = Totals.from_dict(result.totals)
        self._meta["segments"] += 1
        if not self._meta.get("started_at"):
            self._meta["started_at"] = session.started_wall_s
        # The state's status is the training's: a resume redoes training steps, so only a fit
        # that did not complete leaves energy to carry (a failed test() redoes nothing).
        training = self._stage in (None, "fit")
        self._write_rank_state(status if training else "completed")
        self._final_figures = self._live_figures(session)
        if gathered is None or world.rank != 0:
            return None
        report = self._report(gathered, status, exception, world, session, metrics, optimizer_steps)
        self.report = self._built = report
        if self.options.write_files:
            self._write_files(report, gathered, first_step=int(Totals.from_dict(result.totals).step_rows
                                                              - Totals.from_dict(result.segment).step_rows))
        return report

    def _segment_totals(self, session: Session) -> Totals:
        world = self._world
        totals = session.totals(rank=world.rank, host=world.host)
        if self._device_tokens is not None:  # read once, at the end: no per-step device sync
            try:
                extra = float(self._device_tokens.item())
                totals.tokens += extra
                train = totals.work_by_phase.setdefault("train", {})
                train["tokens"] = train.get("tokens", 0.0) + extra
            except Exception as err:  # e.g. after a device-side assert: keep the report
                self._warn(f"tokens on the device could not be read ({type(err).__name__}); counted on the CPU only")
        totals.facility_energy_j = totals.energy_j * self.options.pue
        totals.emissions_kg = totals.facility_energy_j / J_PER_KWH * self.options.intensity.g_per_kwh / 1000.0
        return totals

    def _report(self, gathered: finish.Gathered, status: str, exception: BaseException | None, world: World,
                session: Session, metrics: dict[str, float], optimizer_steps: int | None) -> FootprintReport:
        results = gathered.results
        many = len(results) > 1
        warnings_out = [f"rank {r.rank}: {w}" if many else w for r in results for w in r.warnings]
        if world.distributed and status == "completed" and not gathered.complete:
            warnings_out.append(f"{world.world_size - len(results)} of {world.world_size} ranks could not report "
                                "their energy; the totals hold the other ranks only")
        if world.distributed and status != "completed":
            warnings_out.append(f"only rank 0's sensors are in this report: the run ended ({status}) before the "
                                f"{world.world_size} ranks could exchange their totals; every rank's own figures "
                                f"are in {self._state_dir}")
        if world.distributed and any(r.rows != results[0].rows for r in results):
            warnings_out.append("ranks recorded different numbers of steps; steps.csv sums the first "
                                f"{results[0].rows} steps of every rank (the totals hold everything)")
        if exception is not None:
            warnings_out.append(f"training {status}: {type(exception).__name__}: {exception}")
        if self.stopped_by:
            warnings_out.append(self.stopped_by)
        estimated = sorted({s["component"] for r in results for s in r.sensors if not s.get("measured")})
        if estimated:
            warnings_out.append(f"estimated, not measured: {', '.join(estimated)} "
                                "(see each component's range for its uncertainty)")
        idle = [r.idle_power_w for r in results if r.idle_power_w is not None]
        from lightning_green.meter.context import base_context

        context = base_context(device=self.device)
        context.update(self._context)
        context.update(
            stage=self._stage, segments=self._meta["segments"], resumed=bool(self._meta["resumed"]),
            redone_energy_kwh=float(self._meta["redone_energy_j"]) / J_PER_KWH,
            sampling_interval_s=self.options.sampling_interval_s,
            energy_per_sample_basis="all energy of the run / training samples",
        )
        if self._projection is not None:
            context["projection_method"] = self._projection.method
        facts = RunFacts(
            status=status, run_id=self.run_id, name=self.name, started_wall_s=self._meta.get("started_at"),
            ended_wall_s=session.stopped_wall_s, pue=self.options.pue, intensity=self.options.intensity,
            world_size=world.world_size, sensors=[s for r in results for s in r.sensors],
            unavailable=list(self._unavailable), warnings=warnings_out, context=context,
            metrics=dict(metrics), idle_power_w=float(sum(idle)) if idle else None,
            predicted=(self._projection.energy_kwh, self._projection.emissions_kg) if self._projection else None,
            budget_stopped=self.stopped_by, optimizer_steps=optimizer_steps,
        )
        report = build_report(gathered.totals, facts)
        for key, value in self.extra_fields.items():
            if key == "metrics":
                report.metrics.update(value)
            elif hasattr(report, key):
                setattr(report, key, value)
        return report

    def _write_files(self, report: FootprintReport, gathered: finish.Gathered, first_step: int) -> None:
        out = self.output_dir
        if gathered.rows is not None:
            write_steps_csv(files.join(out, STEPS_FILENAME), gathered.rows.chunks(), gathered.components,
                            first_step=first_step)
        write_footprint(report, out)
        append_emissions_csv(report, out)

    def _write_rank_state(self, status: str) -> None:
        if not self.options.write_files:
            return
        try:
            state = self._rank_state()
            state.status, state.totals = status, self._carried
            state.idle_power_w = self._meta.get("idle_power_w")
            state.write(self._state_dir)
        except Exception as err:
            self._warn(f"could not leave this rank's totals for a resume ({type(err).__name__}: {err})")

    def _rank_state(self) -> RankState:
        if self._state_dir is None:
            self._state_dir = state_dir_for(self.output_dir or os.getcwd(), self.run_id)
        if self._state is None or self._state.rank != self._world.rank:
            self._state = RankState(self.run_id, self._world.rank, self._world.host)
        return self._state

    def _close_session(self) -> None:
        session, self._session = self._session, None
        self._sampler = self._extend = None
        if session is not None:
            session.stop()
            session.cleanup()

    def __enter__(self) -> EnergyMeter:
        return self.start()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.stop("completed")
        else:
            interrupted = isinstance(exc, KeyboardInterrupt)
            self.stop("interrupted" if interrupted else "failed", exc)

    # -- the training thread ---------------------------------------------------------------
    @property
    def current_phase(self) -> str:
        return PHASES[self._phase_index]

    def phase(self, name: str) -> _Phase:
        """``with meter.phase("train"):`` energy inside goes to that phase."""
        if name not in PHASE_INDEX:
            raise ValueError(f"phase must be one of {PHASES}, got {name!r}")
        return _Phase(self, name)

    def set_phase(self, name: str) -> None:
        """From now on, energy goes to phase ``name``."""
        index = PHASE_INDEX.get(name)
        if index is None:
            raise ValueError(f"phase must be one of {PHASES}, got {name!r}")
        self._phase_index = index
        sampler = self._sampler
        if sampler is not None:
            sampler.mark(PhaseMark(name))

    def set_epoch(self, epoch: int | None) -> None:
        """From now on, energy goes to epoch ``epoch`` (None: to no epoch)."""
        self._epoch = -1 if epoch is None else int(epoch)
        sampler = self._sampler
        if sampler is not None:
            sampler.mark(EpochMark(epoch))

    def epoch_end(self) -> None:
        """Close the current epoch; the next step starts the next one. Flushes briefly."""
        if self._epoch >= 0:
            self._next_epoch = self._epoch + 1
            self.set_epoch(None)
        self.flush()

    def step(self, samples: int = 0, tokens: int | None = None, padded_tokens: int | None = None) -> _Step:
        """``with meter.step(samples=32):`` one step (one steps.csv row) in the current phase.

        ``tokens``: real tokens (padding excluded); ``padded_tokens``: tokens as processed
        (padding included; default ``tokens``).
        """
        scope = self._step_scope
        scope.samples = int(samples or 0)
        scope.tokens = int(tokens or 0)
        scope.padded_tokens = int(padded_tokens if padded_tokens is not None else (tokens or 0))
        return scope

    def begin_step(self) -> None:
        """A step starts now (the hot path: one clock read)."""
        sampler = self._sampler
        if sampler is not None:
            if self._epoch < 0 and self._next_epoch is not None:
                self.set_epoch(self._next_epoch)
            sampler.open_t0 = sampler._clock()

    def end_step(self, samples: int = 0, tokens: int = 0, padded_tokens: int = 0) -> None:
        """The step begun by :meth:`begin_step` ends now (the hot path: one list extend)."""
        sampler = self._sampler
        if sampler is None:
            return
        t1 = sampler._clock()
        t0 = sampler.open_t0
        self._extend((t1 if t0 is None else t0, t1, samples, tokens, padded_tokens, self._phase_index, self._epoch))
        sampler.open_t0 = None
        if self._phase_index == 0:
            self._steps += 1

    def step_batch(self, batch: Any) -> None:
        """End the current step, counting samples and tokens from a batch (tensors, tuples,
        dicts with ``input_ids``/``attention_mask``)."""
        tokens, padded = token_counts(batch)
        if tokens is not None and not isinstance(tokens, int):  # a device tensor: read at the end
            self._device_tokens = tokens if self._device_tokens is None else self._device_tokens + tokens
            tokens = 0
        self.end_step(count_samples(batch), tokens or 0, padded or 0)

    def count(self, samples: int = 0, tokens: int = 0, padded_tokens: int = 0, batches: int = 1) -> None:
        """Work done in the current phase without a steps.csv row (e.g. a validation batch)."""
        session = self._session
        if session is not None:
            session.count(self.current_phase, batches, samples, tokens, padded_tokens)

    def count_batch(self, batch: Any) -> None:
        """:meth:`count` a batch's samples and tokens (device token counts are not read)."""
        tokens, padded = token_counts(batch)
        self.count(count_samples(batch), tokens if isinstance(tokens, int) else 0, padded or 0)

    def mark(self, name: str) -> float:
        """A named boundary now; returns its wall time."""
        session = self._session
        return session.mark_now(Boundary(name)) if session is not None else time.time()

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
        """Resolve what was recorded so far (epoch ends, checkpoints); True when done in time."""
        session = self._session
        return session.flush(timeout_s) if session is not None else False

    # -- live figures ----------------------------------------------------------------------
    def live_energy_j(self) -> float:
        """This process's energy so far (earlier segments included), from the latest readings."""
        session = self._session
        return self._carried.energy_j + (session.live_energy_j() if session is not None else 0.0)

    def live_power_w(self) -> float:
        """This process's power from the latest readings, in watts."""
        session = self._session
        return session.live_power_w() if session is not None else 0.0

    def global_energy_j(self) -> float:
        """Every rank's energy so far. A collective under torch.distributed: every rank must
        call it at the same point (the callbacks do it every ``log_every_n_steps`` batches)."""
        return all_reduce_sum([self.live_energy_j()])[0]

    def emissions_kg(self, energy_j: float) -> float:
        """Emissions of ``energy_j`` of IT energy at this meter's PUE and intensity."""
        return energy_j * self.options.pue / J_PER_KWH * self.options.intensity.g_per_kwh / 1000.0

    def check_budgets(self, energy_j: float) -> str | None:
        """Record and return why the run must stop (once), given every rank's energy so far."""
        if self.stopped_by is None:
            reason = budget_reason(energy_j, self.emissions_kg(energy_j), self.options.max_energy_kwh,
                                   self.options.max_emissions_kg)
            if reason is not None:
                self.stopped_by = f"training stopped early by lightning-green: {reason}"
                warnings.warn(self.stopped_by, stacklevel=2)
                return self.stopped_by
        return None

    @property
    def budget_exceeded(self) -> bool:
        """Whether a budget was reached (checked on this process's energy every
        ``log_every_n_steps`` steps; distributed loops call :meth:`check_budgets` with
        :meth:`global_energy_j` on every rank instead)."""
        if self.stopped_by is None and self.options.budgets:
            self.check_budgets(self.live_energy_j())
        return self.stopped_by is not None

    def project_run(self, batches_planned: int, energy_j: float | None = None) -> Projection | None:
        """Predict the whole run's energy from the training batches done so far (once)."""
        session = self._session
        if self._projection is not None or session is None:
            return self._projection
        session.flush(FLUSH_TIMEOUT_S)
        ledger = session.ledger
        phases = ledger.energy_j_by_phase
        recurring = self._carried.energy_j_by_phase.get("train", 0.0) + phases.get("train", 0.0)
        recurring += self._carried.energy_j_by_phase.get("validate", 0.0) + phases.get("validate", 0.0)
        recurring -= self._recurring_from_j
        done = int(self._carried.steps) + self._steps
        total_j = energy_j if energy_j is not None else self.live_energy_j()
        self._projection = project(energy_j=total_j, recurring_j=max(0.0, recurring), batches_done=done,
                                   batches_planned=batches_planned, kg_per_j=self.emissions_kg(1.0))
        return self._projection

    def exclude_from_projection(self) -> None:
        """The energy of the recurring phases so far (e.g. a sanity check) is one-off."""
        session = self._session
        if session is not None:
            session.flush(FLUSH_TIMEOUT_S)
            phases = session.ledger.energy_j_by_phase
            self._recurring_from_j = phases.get("validate", 0.0) + phases.get("train", 0.0)

    # -- state -------------------------------------------------------------------------------
    def state_dict(self, key: str | None = None) -> dict[str, Any]:
        """This run's footprint so far, for a checkpoint; no collective (any rank may call it).

        Every rank also writes its own figures at this checkpoint to its state file, so that a
        resume gives every rank back its own (``key``: the same on every rank for one
        checkpoint; default the number of training steps so far).
        """
        own = self._carried
        session = self._session
        if session is not None:
            # The ledger's energy then reaches this mark; duration ends at it too (not after the
            # flush, which may wait on a busy machine and would count time without energy).
            end_wall_s = session.mark_now(Boundary("checkpoint"))
            session.flush(FLUSH_TIMEOUT_S)
            segment = session.totals(rank=self._world.rank, host=self._world.host, end_wall_s=end_wall_s)
            segment.facility_energy_j = segment.energy_j * self.options.pue
            segment.emissions_kg = self.emissions_kg(segment.energy_j)
            own = own + segment
        key = key if key is not None else f"step{int(own.steps)}"
        if self.options.write_files and self.output_dir is not None:
            try:
                state = self._rank_state()
                state.remember_checkpoint(key, own)
                state.status, state.totals = "running", own
                state.idle_power_w = self._meta.get("idle_power_w")
                state.write(self._state_dir)
            except Exception as err:
                self._warn(f"could not leave this rank's checkpoint totals ({type(err).__name__}: {err})")
        return {
            "schema": CHECKPOINT_SCHEMA,
            "run_id": self.run_id,
            "key": key,
            "state_dir": self._state_dir,
            "world_size": self._world.world_size,
            "totals": own.to_dict(),  # this rank's (rank 0's in a Lightning checkpoint)
            "started_at": self._meta.get("started_at") or (session.started_wall_s if session else None),
            "idle_power_w": self._meta.get("idle_power_w"),
            "segments": int(self._meta["segments"]) + (1 if session is not None else 0),
            "redone_energy_j": float(self._meta["redone_energy_j"]),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the footprint saved by :meth:`state_dict` (on every rank, with the same
        checkpoint): each rank takes back its own figures from its state file, plus what a run
        that did not complete spent after this checkpoint. Old checkpoints load too."""
        if not isinstance(state, dict):
            return
        self.run_id = str(state.get("run_id") or self.run_id)
        if self._session is None:
            self._world = current_world()
        rank = self._world.rank
        key = state.get("key")
        state_dir = state.get("state_dir")
        checkpoint_totals = Totals.from_dict(state.get("totals")) if rank == 0 else Totals()
        rank_state = None
        if isinstance(state_dir, str) and key is not None:
            self._state_dir = state_dir
            rank_state = RankState.read(state_dir, rank, self.run_id)
            if rank_state is not None and rank_state.at_checkpoint(str(key)) is not None:
                checkpoint_totals = rank_state.at_checkpoint(str(key))
            elif rank != 0:
                self._warn(f"rank {rank}'s figures at this checkpoint were not found in {state_dir}; "
                           "its energy before the checkpoint is missing from the totals")
        carried = checkpoint_totals
        redone_j = float(state.get("redone_energy_j") or 0.0)
        tail = rank_state.tail_after(checkpoint_totals) if rank_state is not None else None
        if tail is not None:
            carried = carried + tail
            redone_j += tail.energy_j
            self._warn(f"carried {tail.energy_j / J_PER_KWH:.6g} kWh ({tail.duration_s:.1f} s) that the crashed run "
                       "spent after this checkpoint on steps done again now")
        self._carried = carried
        self._meta.update(
            started_at=state.get("started_at"), segments=int(state.get("segments") or 1), resumed=True,
            redone_energy_j=redone_j,
        )
        if state.get("idle_power_w") is not None and rank == 0:
            self._meta["idle_power_w"] = float(state["idle_power_w"])
        if rank_state is not None:
            self._state = rank_state
            if rank_state.idle_power_w is not None:
                self._meta["idle_power_w"] = rank_state.idle_power_w
            self._write_rank_state("running")  # a second resume takes this lineage's figures, once
        if self._session is not None:
            self._session.ledger.first_step = int(carried.step_rows)

    # -- the sampler thread --------------------------------------------------------------------
    def _on_round(self) -> None:
        """After every sampler round: exporters, and every ``snapshot_every_s`` this rank's state."""
        for exporter in self.options.exporters:
            self._call_exporter(exporter, "update", None)

    def _labels(self) -> Any:
        from lightning_green.engine.live import RunLabels

        local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
        return RunLabels(run_id=self.run_id, host=self._world.host, rank=self._world.rank, local_rank=local_rank)

    def _call_exporter(self, exporter: Any, method: str, argument: Any) -> None:
        try:
            if argument is None and method in ("update", "stop"):
                argument = self._live_figures()
            getattr(exporter, method)(argument)
        except Exception as err:  # an exporter must never cost the run
            self._warn(f"exporter {type(exporter).__name__}.{method} failed ({type(err).__name__}: {err})")

    def _live_figures(self, session: Session | None = None) -> Any:
        from lightning_green.meter.live import live_figures

        return live_figures(self, session or self._session)

    def _warn(self, message: str) -> None:
        """Recorded for the report on every rank; printed once, by global rank 0."""
        if message not in self._warnings:
            self._warnings.append(message)
            if self._world.rank == 0:
                warnings.warn(f"lightning-green: {message}", stacklevel=3)

    def __getstate__(self) -> dict[str, Any]:
        # Picklable (ddp_spawn): a running session (thread, handles) never travels.
        state = self.__dict__.copy()
        state.update(_session=None, _sampler=None, _extend=None, _device_tokens=None)
        return state

    def __repr__(self) -> str:
        o = self.options
        return f"EnergyMeter(sensors={o.sensors!r}, pue={o.pue}, intensity={o.intensity.g_per_kwh:g} g/kWh)"
