"""Live figures of a running :class:`~lightning_green.EnergyMeter`: energy and power so far,
every rank's energy (a collective exchange), budgets and the projection of the whole run."""

from __future__ import annotations

import time
import warnings

from lightning_green.engine.distributed import all_reduce_sum
from lightning_green.meter.budget import Projection, budget_reason, project
from lightning_green.meter.live import live_figures
from lightning_green.meter.recording import FLUSH_TIMEOUT_S
from lightning_green.meter.snapshots import exchange

__all__ = ["LiveView"]


class LiveView:
    """Live figures, budgets and projections of an EnergyMeter (a mixin: the attributes are
    the meter's)."""

    def live_energy_j(self) -> float:
        """This process's energy so far (earlier segments included), from the latest readings."""
        session = self._session
        return self._carried.energy_j + (session.live_energy_j() - self._live_from_j if session is not None else 0.0)

    def live_power_w(self) -> float:
        """This process's power from the latest readings, in watts."""
        session = self._session
        return session.live_power_w() if session is not None else 0.0

    def global_energy_j(self, batches_since: int = 0, every_n: int = 50) -> float:
        """Every rank's energy so far. A collective under torch.distributed: every rank must call
        it at the same point (the callbacks do it every ``log_every_n_steps`` batches or
        sooner, see :meth:`next_exchange_in`); it also refreshes rank 0's running snapshots."""
        if not self._world.distributed:
            return self.live_energy_j()
        energy_j = self.live_energy_j()
        now = time.monotonic()
        target_s = self.options.snapshot_every_s / 2 if self.options.snapshot_every_s > 0 else float("inf")
        session = self._session
        self._exchange = exchange(
            figures=live_figures(self, session), energy_j=energy_j, emissions_kg=self.emissions_kg(energy_j),
            samples=self._carried.samples + (session.ledger.work_by_phase.get("train", {}).get("samples", 0)
                                             if session is not None else 0),
            steps=self._carried.steps + self._steps, elapsed_s=now - self._last_exchange_s, rank=self._world.rank,
            batches_since=batches_since, every_n=every_n, target_s=target_s,
            redone_energy_j=float(self._meta["redone_energy_j"]))
        self._last_exchange_s = now
        return self._exchange.totals.energy_j

    def next_exchange_in(self, every_n: int) -> int:
        """Batches until the next :meth:`global_energy_j` (the same on every rank)."""
        return self._exchange.next_in_batches if self._exchange is not None else every_n

    def emissions_kg(self, energy_j: float) -> float:
        """Emissions of ``energy_j`` of IT energy at this meter's PUE and intensity."""
        return self._emissions.kg(energy_j)

    def check_budgets(self, energy_j: float) -> str | None:
        """Record and return why the run must stop (once), given every rank's energy so far."""
        if self.stopped_by is None:
            reason = budget_reason(energy_j, self.emissions_kg(energy_j), self.options.max_energy_kwh,
                                   self.options.max_emissions_kg)
            if reason is not None:
                self.stopped_by = f"training stopped early by lightning-green: {reason}"
                if self._world.rank == 0:
                    warnings.warn(self.stopped_by, stacklevel=2)
                return self.stopped_by
        return None

    @property
    def budget_exceeded(self) -> bool:
        """Whether a budget was reached, on this process's energy (distributed loops call
        :meth:`check_budgets` with :meth:`global_energy_j` on every rank instead)."""
        if self.stopped_by is None and self.options.budgets:
            self.check_budgets(self.live_energy_j())
        return self.stopped_by is not None

    def project_run(self, batches_planned: int) -> Projection | None:
        """Predict the whole run's energy from the training batches done so far (once).

        Under torch.distributed a collective (every rank calls it at the same batch): the
        energy so far and its recurring part are summed over ranks.
        """
        session = self._session
        if self._projection is not None or session is None:
            return self._projection
        session.flush(FLUSH_TIMEOUT_S)
        phases, carried = session.ledger.energy_j_by_phase, self._carried.energy_j_by_phase
        recurring = sum(carried.get(p, 0.0) + phases.get(p, 0.0) for p in ("train", "validate"))
        total_j, recurring_j = all_reduce_sum([self.live_energy_j(), max(0.0, recurring - self._recurring_from_j)])
        done = int(self._carried.steps) + self._steps
        self._projection = project(energy_j=total_j, recurring_j=recurring_j, batches_done=done,
                                   batches_planned=batches_planned, kg_per_j=self.emissions_kg(1.0))
        return self._projection

    def exclude_from_projection(self) -> None:
        """The energy of the recurring phases so far (e.g. a sanity check) is one-off."""
        session = self._session
        if session is not None:
            session.flush(FLUSH_TIMEOUT_S)
            phases = session.ledger.energy_j_by_phase
            self._recurring_from_j = phases.get("validate", 0.0) + phases.get("train", 0.0)

