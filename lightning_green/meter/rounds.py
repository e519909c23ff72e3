"""What an :class:`~lightning_green.EnergyMeter` does on the sampler thread after each round:
the intensity series' integral, live exporters, and snapshots of the running footprint."""

from __future__ import annotations

import copy
import os
from typing import Any

from lightning_green.engine.marks import Boundary
from lightning_green.engine.session import Session
from lightning_green.meter.live import live_figures
from lightning_green.meter.report import make_report
from lightning_green.outputs.footprint import write_footprint

__all__ = ["SamplerRounds"]


class SamplerRounds:
    """The sampler-thread side of an EnergyMeter (a mixin: the attributes are the meter's)."""

    def _on_round(self) -> None:
        """After every sampler round: emissions over time, exporters, snapshots."""
        session = self._session
        if session is None:
            return
        resolved = session.sampler.resolved
        if resolved:
            self._observe(session)
        figures = None
        if self.options.exporters:
            figures = live_figures(self, session)
            for exporter in self.options.exporters:
                self._call_exporter(exporter, "update", figures)
        if resolved and self.options.write_files and not self._world.distributed:
            self._stream_steps(session)
        snapshots = self._snapshots
        if not (resolved and snapshots.enabled and self.options.write_files):
            return
        if snapshots.pending is not None and session.resolved(snapshots.pending[0]):
            self._take_snapshot(session, snapshots.pending[1], figures)
            snapshots.done()
        if snapshots.due(session.sampler.housekeeping_s):  # the next mark, in the same round
            snapshots.pending = session.mark_at(Boundary("snapshot"))

    def _stream_steps(self, session: Session) -> None:
        """One process, local folder: append the steps resolved this round to steps.csv (no
        fsync: the snapshots and the end sync it). The rows are formatted here, on the sampler
        thread, about 2 us a row, so the end of the run has only the last round's rows to write
        and ``tail -f steps.csv`` follows the run a second behind."""
        try:
            steps = self._steps_file(list(session.store.components))
            if steps.appendable and session.store.rows > steps.rows_written:
                steps.append(session.store.chunks_from(steps.rows_written), sync=False)
        except Exception as err:  # never cost the run: the end writes the whole file instead
            steps = self._steps_csv
            if steps is not None:
                steps.appendable = False
            self._warn(f"could not append to steps.csv while running ({type(err).__name__}: {err}); "
                       "it is written whole at the end")

    def _observe(self, session: Session) -> None:
        """This process's cumulative energy now, for the intensity series' integral."""
        if self._emissions.series is not None:
            snap = session.sampler.snapshot()
            self._emissions.observe(snap.t + session.wall_offset_s, float(sum(snap.energy_j)))

    def _take_snapshot(self, session: Session, wall_s: float, figures: Any) -> None:
        """This rank's state file; on rank 0 footprint.json (status running) and steps.csv."""
        try:
            own = self._carried + self._segment_totals(session, wall_s)
            self._write_rank_state("running", own)
            figures = figures or live_figures(self, session)
            for exporter in self.options.exporters:
                self._call_exporter(exporter, "snapshot", figures)
            if self._world.rank != 0:
                return
            totals, results, redone_j, as_of_s = own, [self._rank_result(session, own, own)], None, wall_s
            if self._world.distributed:
                latest = self._exchange
                if latest is None:
                    return  # no exchange yet: nothing honest to say about the other ranks
                # Every rank's figures are those of the latest exchange, which may come before or
                # after the mark (exchanges go on while the mark waits to be resolved): the
                # snapshot is dated, and its duration taken, at the exchange.
                as_of_s = latest.wall_s
                totals = copy.copy(latest.totals)
                totals.duration_s = max(0.0, own.duration_s - (wall_s - as_of_s))
                totals.facility_energy_j = totals.energy_j * self.options.pue
                redone_j = latest.redone_energy_j
            inputs = self._report_inputs("completed", session, None, {}, None, snapshot_wall_s=as_of_s,
                                         redone_energy_j=redone_j)
            report = make_report(totals, results, inputs)
            report.status = "running"
            if not self._world.distributed:
                steps = self._steps_file(list(session.store.components))
                steps.append(session.store.chunks_from(steps.rows_written))
            write_footprint(report, self.output_dir)
        except Exception as err:  # a snapshot must never cost the run
            self._warn(f"could not write a snapshot ({type(err).__name__}: {err})")

    def _labels(self) -> Any:
        from lightning_green.engine.live import RunLabels

        local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
        return RunLabels(run_id=self.run_id, host=self._world.host, rank=self._world.rank, local_rank=local_rank)

    def _call_exporter(self, exporter: Any, method: str, argument: Any) -> None:
        try:
            getattr(exporter, method)(argument)
        except Exception as err:  # an exporter must never cost the run
            self._warn(f"exporter {type(exporter).__name__}.{method} failed ({type(err).__name__}: {err})")

    def _live_figures(self) -> Any:
        return live_figures(self, self._session)

