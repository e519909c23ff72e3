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

The Lightning callbacks are thin adapters over this class. Its parts: the measuring session
(:mod:`lightning_green.engine`), the sensors each rank reads (:mod:`.sensors`), the reduce over
ranks (:mod:`.finish`), the report (:mod:`.report`), checkpoints (:mod:`.resume`, :mod:`.state`),
snapshots (:mod:`.snapshots`), budgets (:mod:`.budget`), emissions (:mod:`.emissions`).
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

from lightning_green.engine.distributed import World, all_gather, current_world
from lightning_green.engine.marks import PHASE_INDEX
from lightning_green.engine.session import Session
from lightning_green.engine.totals import Totals
from lightning_green.meter import finish, sensors as sensor_choice
from lightning_green.meter.budget import Projection
from lightning_green.meter.checkpoints import Checkpoints
from lightning_green.meter.emissions import EmissionsAccount
from lightning_green.meter.live import live_figures
from lightning_green.meter.live_view import LiveView
from lightning_green.meter.recording import Recording, _Step
from lightning_green.meter.rounds import SamplerRounds
from lightning_green.meter.options import MeterOptions
from lightning_green.meter.report import ReportInputs, make_report
from lightning_green.meter.snapshots import Exchange, Snapshotter
from lightning_green.meter.state import RankState, state_dir_for
from lightning_green.outputs.emissions_csv import append_emissions_csv
from lightning_green.outputs.footprint import FootprintReport, write_footprint
from lightning_green.outputs.steps_csv import StepsCsv

__all__ = ["EnergyMeter"]

STATUSES = ("completed", "failed", "interrupted")


class EnergyMeter(Recording, LiveView, Checkpoints, SamplerRounds):
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
        output_dir: Folder or fsspec URL for the files; default ``<cwd>/lightning_green/<run_id>``.
        idle_baseline_s: Seconds of idle power measured at the first start (0 = off); the
            report then has ``idle_power_w`` and ``net_energy_kwh``.
        max_energy_kwh, max_emissions_kg: Budgets; :attr:`budget_exceeded` tells when reached.
        project_after_epochs, project_after_steps: After this point, predict the whole run.
        log_every_n_steps: How often (in training steps) budgets are checked by the adapters.
        write_files: Write the files (global rank 0; every rank's state file); the report is
            built either way.
        snapshot_every_s: Write the footprint so far (status ``running``) this often, so a run
            killed at any moment leaves its energy (0 = off).
        exporters: Live exporters (e.g. ``lightning_green.exporters.PrometheusExporter``).
        carbon_intensity_series: A CSV of timestamps and g/kWh covering the run: emissions are
            then each moment's energy times that moment's intensity (offline).
        pause_above_g_per_kwh: With a series, pause between steps while the grid is dirtier.
        max_pause_s: The most time a run may spend paused (default a day).
        water_l_per_kwh: On-site water use (WUE, litres per IT kWh): reports ``water_l``.
        price_per_kwh, currency: Electricity price per facility kWh and its ISO 4217 code.
        embodied: True (defaults) or a dict of :class:`~lightning_green.carbon.embodied.EmbodiedModel`
            fields: reports ``embodied_kg``, apart from the operational emissions.
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
        carbon_intensity_series: str | os.PathLike | None = None,
        pause_above_g_per_kwh: float | None = None,
        max_pause_s: float | None = None,
        water_l_per_kwh: float | None = None,
        price_per_kwh: float | None = None,
        currency: str | None = None,
        embodied: bool | dict | None = None,
        name: str | None = None,
        device: Any = None,
    ) -> None:
        arguments = dict(locals())
        for key in ("self", "name", "device", "__class__"):
            arguments.pop(key, None)
        arguments["exporters"] = exporters or []
        self.options = MeterOptions.build(**arguments)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError(f"name must be a non-empty string or None, got {name!r}")
        self.name = name
        self.device = device
        #: Merged into the report when it is written: ``config``, ``overrides``, ``extra``, ``metrics``.
        self.extra_fields: dict[str, Any] = {}
        self.run_id = uuid.uuid4().hex
        self.output_dir: str | None = self.options.output_dir
        self.report: FootprintReport | None = None
        self.stopped_by: str | None = None
        self._carried = Totals()  # this rank's own earlier segments
        self._meta: dict[str, Any] = {"segments": 0, "resumed": False, "redone_energy_j": 0.0,
                                      "started_at": None, "idle_power_w": None}
        self._state: RankState | None = None
        self._state_dir: str | None = None
        self._session: Session | None = None
        self._sampler: Any = None
        self._extend: Any = None
        self._world = World()
        self._unavailable: list[dict] = []
        self._warnings: list[str] = []
        self._resume_notes: list[str] = []  # said by load_state_dict before start(): kept for the report
        self._phase_index = PHASE_INDEX["other"]
        self._epoch = -1
        self._next_epoch: int | None = 0
        self._epoch_base = 0  # plain loops: the epoch the next start() continues with
        self._steps = 0  # training steps of this segment (projections, checkpoint keys)
        self._device_tokens: Any = None
        self._step_scope = _Step(self)
        self._context: dict[str, Any] = {}
        self._stage: str | None = None
        self._projection: Projection | None = None
        self._recurring_from_j = 0.0
        self._live_from_j = 0.0  # the sampler's energy when the segment began (see start())
        self._emissions = EmissionsAccount(self.options.pue, self.options.intensity.g_per_kwh,
                                           self.options.carbon_options.series)
        self._pause: Any = None
        self._next_pause_check = 0.0
        self._snapshots = Snapshotter(self.options.snapshot_every_s)
        self._steps_csv: StepsCsv | None = None
        self._first_step = 0  # the first steps.csv row of this segment
        self._exchange: Exchange | None = None
        self._last_exchange_s = time.monotonic()
        self._built: FootprintReport | None = None
        self._final_figures: Any = None

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._session is not None

    def start(self, *, default_output_dir: Callable[[str], str] | None = None, context: dict[str, Any] | None = None,
              stage: str | None = None, idle: bool = True, manage_epochs: bool = True) -> EnergyMeter:
        """Start measuring (a collective under torch.distributed: every rank starts together).

        Adapters pass ``default_output_dir(run_id)`` (e.g. the Trainer's log dir), the run
        ``context`` (precision, strategy, ...) and a ``stage`` name; an adapter that marks
        epochs itself passes ``manage_epochs=False`` (otherwise the first step starts epoch 0
        and :meth:`epoch_end` moves on). Never raises because of a sensor: a process that
        cannot measure reports no energy and says why.
        """
        if self._session is not None:
            self._close_session()
        self._world = world = current_world()
        self._stage, self._context = stage, dict(context or {})
        self._warnings, self._resume_notes = list(self._resume_notes), []
        self.stopped_by, self._steps, self._device_tokens, self._final_figures = None, 0, None, None
        self._phase_index, self._epoch = PHASE_INDEX["other"], -1
        self._next_epoch = self._epoch_base if manage_epochs else None
        if world.distributed and self._meta["segments"] == 0 and not self._meta["resumed"]:
            self.run_id = all_gather(self.run_id)[0]  # one run id: rank 0's
        if self.output_dir is None:
            default = default_output_dir(self.run_id) if default_output_dir is not None else None
            self.output_dir = default or os.path.join(os.getcwd(), "lightning_green", self.run_id)
        if self.options.write_files and world.rank == 0:
            from lightning_green.outputs import files

            files.check_output_dir(self.output_dir)  # a folder that cannot take the files fails now
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
        self._emissions.restart()
        self._pause = self.options.carbon_options.pause_policy()
        self._steps_csv, self._first_step = None, int(self._carried.step_rows)
        self._exchange, self._last_exchange_s = None, time.monotonic()
        self._snapshots = Snapshotter(self.options.snapshot_every_s)
        self._session, self._sampler, self._extend = session, session.sampler, session.sampler.step_buffer.extend
        self._recurring_from_j = 0.0
        session.begin()
        self._observe(session)  # the intensity series' integral starts here
        # The sampler has been reading since before the idle baseline: live energy counts from
        # here, as the report does (else a budget or the logged energy would include idle time).
        self._live_from_j = session.live_energy_j()
        for exporter in self.options.exporters:
            self._call_exporter(exporter, "start", self._labels())
        return self

    def _open(self, sensors: list[Any], idle: bool) -> Session:
        exporters = bool(self.options.exporters)  # live figures every sampling interval for them
        session = Session(sensors, self.options.sampling_interval_s, first_step=int(self._carried.step_rows),
                          on_round=self._on_round, tick_s=self.options.sampling_interval_s if exporters else None)
        try:
            session.start()
            if idle and self.options.idle_baseline_s > 0 and self._meta.get("idle_power_w") is None:
                from lightning_green.progress import Progress

                seconds = self.options.idle_baseline_s
                if self._world.rank == 0:  # one line, by rank 0
                    with Progress("measuring idle power", total_s=seconds) as bar:
                        self._meta["idle_power_w"] = session.measure_idle(seconds, bar.update)
                else:
                    self._meta["idle_power_w"] = session.measure_idle(seconds)
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
        self._epoch_base = self._continue_epoch()
        if context:
            self._context.update(context)
        self._built = None
        try:
            return self._finish(session, status, exception, metrics or {}, optimizer_steps)
        except Exception as err:  # the footprint must never cost the user the run
            warnings.warn(f"lightning-green could not finish its report: {type(err).__name__}: {err}", stacklevel=2)
            if exception is None and os.environ.get("LIGHTNING_GREEN_STRICT") == "1":
                raise
            return self._built  # built, but its files could not be written
        finally:
            figures = self._final_figures or live_figures(self, None)
            for exporter in self.options.exporters:
                self._call_exporter(exporter, "stop", figures)
            session.cleanup()

    def _finish(self, session: Session, status: str, exception: BaseException | None,
                metrics: dict[str, float], optimizer_steps: int | None) -> FootprintReport | None:
        world = self._world
        together = status == "completed" and world.distributed  # a failed run may have lost ranks
        result = local_error = None
        try:
            session.stop()
            self._observe(session)  # ... and ends at the stop
            segment = self._segment_totals(session)
            result = self._rank_result(session, self._carried + segment, segment)
            self._final_figures = live_figures(self, session)
        except Exception as err:  # still take part in the collective below, with nothing to add
            local_error = err
        gathered = finish.reduce_to_zero(result, session.store, world if together else World(world.rank, 1, world.host),
                                         with_rows=self.options.write_files,
                                         spill_path=session.scratch_path("reduced.bin"))
        if local_error is not None:
            raise local_error
        # -- no collective below this line --
        self._carried = Totals.from_dict(result.totals)
        self._meta["segments"] += 1
        self._meta["started_at"] = self._meta["started_at"] or session.started_wall_s
        # The state's status is the training's: a resume redoes training steps, so only a fit
        # that did not complete leaves energy to carry (a failed test() redoes nothing). A
        # completed segment that never wrote the file (no checkpoint, no snapshot, no resume)
        # leaves nothing a resume could need: no file, two fsyncs saved per short fit.
        state_status = status if self._stage in (None, "fit") else "completed"
        if state_status != "completed" or self._state is not None:
            self._write_rank_state(state_status)
        if gathered is None or world.rank != 0:
            return None
        if world.distributed and not together:  # no collective: the other ranks' own files
            gathered = finish.with_state_files(gathered, self._state_dir, self.run_id, world)
        inputs = self._report_inputs(status, session, exception, metrics, optimizer_steps, complete=gathered.complete,
                                     redone_energy_j=gathered.redone_energy_j)
        report = self.report = self._built = make_report(gathered.totals, gathered.results, inputs)
        if self.options.write_files:
            steps = self._steps_file(gathered.components)
            if gathered.rows is not None:
                if together or not steps.appendable:
                    steps.write_all(gathered.rows.chunks())
                else:
                    steps.append(gathered.rows.chunks_from(steps.rows_written))
            write_footprint(report, self.output_dir)
            append_emissions_csv(report, self.output_dir)
        return report

    def _segment_totals(self, session: Session, end_wall_s: float | None = None) -> Totals:
        world = self._world
        totals = session.totals(rank=world.rank, host=world.host, end_wall_s=end_wall_s)
        if self._device_tokens is not None and end_wall_s is None:  # read once, at the end: no device sync per step
            try:
                extra = float(self._device_tokens.item())
                totals.tokens += extra
                train = totals.work_by_phase.setdefault("train", {})
                train["tokens"] = train.get("tokens", 0.0) + extra
            except Exception as err:  # e.g. after a device-side assert: keep the report
                self._warn(f"tokens on the device could not be read ({type(err).__name__}); counted on the CPU only")
        totals.facility_energy_j = totals.energy_j * self.options.pue
        end = end_wall_s or session.stopped_wall_s or time.time()
        g_per_kwh = self._emissions.g_per_kwh_over(session.started_wall_s or end, end)
        totals.emissions_kg = self._emissions.kg(totals.energy_j, g_per_kwh)
        if self._pause is not None:
            totals.paused_s = self._pause.paused_s
        return totals

    def _rank_result(self, session: Session, own: Totals, segment: Totals) -> finish.RankResult:
        world = self._world
        entries = session.sensor_entries(include_extra=True)
        return finish.RankResult(
            rank=world.rank, host=world.host, totals=own.to_dict(), segment=segment.to_dict(),
            sensors=[dict(e, rank=world.rank, host=world.host) for e in entries],
            warnings=session.warnings() + self._warnings + _short_steps(session, entries),
            idle_power_w=self._meta.get("idle_power_w"), rows=session.store.rows,
            components=list(session.store.components), redone_energy_j=float(self._meta["redone_energy_j"]),
        )

    def _report_inputs(self, status: str, session: Session, exception: BaseException | None,
                       metrics: dict[str, float], optimizer_steps: int | None, *, complete: bool = True,
                       snapshot_wall_s: float | None = None, redone_energy_j: float | None = None) -> ReportInputs:
        return ReportInputs(
            status=status, run_id=self.run_id, name=self.name, stage=self._stage, options=self.options,
            world_size=self._world.world_size, device=self.device, exception=exception,
            started_wall_s=self._meta.get("started_at") or session.started_wall_s,
            ended_wall_s=snapshot_wall_s or session.stopped_wall_s, snapshot_wall_s=snapshot_wall_s,
            segments=int(self._meta["segments"]), resumed=bool(self._meta["resumed"]),
            redone_energy_j=float(self._meta["redone_energy_j"] if redone_energy_j is None else redone_energy_j),
            stopped_by=self.stopped_by,
            projection=self._projection, paused=self._pause.describe() if self._pause is not None else None,
            unavailable=list(self._unavailable), context=dict(self._context), metrics=dict(metrics),
            optimizer_steps=optimizer_steps, extra_fields=self.extra_fields, complete=complete,
        )

    def _steps_file(self, components: list[str]) -> StepsCsv:
        if self._steps_csv is None:
            self._steps_csv = StepsCsv(self.output_dir, components, first_step=self._first_step,
                                       emissions_g=self._emissions.steps_g)
        return self._steps_csv

    def _write_rank_state(self, status: str, totals: Totals | None = None) -> None:
        if not self.options.write_files:
            return
        try:
            state = self._rank_state()
            state.status, state.totals = status, totals if totals is not None else self._carried
            state.idle_power_w = self._meta.get("idle_power_w")
            state.redone_energy_j = float(self._meta["redone_energy_j"])
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
            self.stop("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", exc)


    def _warn(self, message: str) -> None:
        """Recorded for the report on every rank; printed once, by global rank 0."""
        if message not in self._warnings:
            self._warnings.append(message)
            if self._world.rank == 0:
                warnings.warn(f"lightning-green: {message}", stacklevel=3)

    def __getstate__(self) -> dict[str, Any]:
        # Picklable (ddp_spawn): a running session (thread, handles) never travels.
        state = self.__dict__.copy()
        state.update(_session=None, _sampler=None, _extend=None, _device_tokens=None, _pause=None)
        return state

    def __repr__(self) -> str:
        o = self.options
        return f"EnergyMeter(sensors={o.sensors!r}, pue={o.pue}, intensity={o.intensity.g_per_kwh:g} g/kWh)"




def _short_steps(session: Session, entries: list[dict[str, Any]]) -> list[str]:
    """A warning per sensor whose source updates more slowly than some steps last: those
    steps' energy is interpolated between updates, not measured (e.g. NVML's counter every
    20-100 ms against 5 ms steps)."""
    notes = []
    for entry in entries:
        period = entry.get("update_period_s")
        measured_counter = entry.get("kind") == "energy" and entry.get("measured")
        if not measured_counter or not isinstance(period, (int, float)) or period <= 0:
            continue  # estimates are labelled as such, per step too
        total = short = 0
        for chunk in session.store.chunks():
            total += len(chunk)
            short += int(((chunk[:, 4] - chunk[:, 3]) < period).sum())
        if short:
            notes.append(f"{short} of {total} steps ({100.0 * short / total:.0f} %) were shorter than "
                         f"{entry['name']}'s update period ({period * 1000:.0f} ms): their per-step energy is "
                         "interpolated between the source's updates, not measured (totals are unaffected)")
    return notes
