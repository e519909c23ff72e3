"""EnergyCallback for ``lightning.pytorch`` Trainers.

For ``pytorch_lightning.Trainer`` use the twin :class:`lightning_green.callbacks.pytorch_lightning.EnergyCallback`
(the two packages' Trainers only accept their own ``Callback`` classes).
"""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback

from lightning_green.callbacks.hooks import EnergyHooks

__all__ = ["EnergyCallback"]


class EnergyCallback(EnergyHooks, Callback):
    r"""Measure the energy and CO2 of a Lightning run, per phase, epoch and training step.

    Add it to any Trainer; nothing else changes. A background thread reads the sensors; the
    batch hooks only record timestamps (a few microseconds), so no training step waits on a
    sensor. At the end of every ``fit``/``validate``/``test``/``predict`` global rank 0 writes
    ``footprint.json``, ``emissions.csv`` (codecarbon's columns) and ``steps.csv`` into
    ``output_dir``, and :attr:`report` holds the :class:`~lightning_green.outputs.footprint.FootprintReport`.
    Calls add up: after ``fit`` then ``test`` the report covers both (see its phases), and a
    fit resumed from a checkpoint continues the footprint saved in it.

    Args:
        sensors: ``"auto"`` (this process's GPU through NVML, the CPU through RAPL or an
            estimate, the RAM estimate) or a list of :class:`~lightning_green.sensors.Sensor`.
        sampling_interval_s: How often power sensors are read, in seconds (> 0).
        country_iso_code: ISO 3166-1 alpha-3 code for the grid's carbon intensity (``"FRA"``).
        cloud_provider: With ``cloud_region``, use that region's intensity (``"gcp"``, ...).
        cloud_region: The provider's region name (``"europe-west1"``).
        carbon_intensity_g_per_kwh: An explicit intensity (> 0, <= 2000 g/kWh); wins over the lookups.
        pue: Power usage effectiveness of the facility (1.0-5.0).
        output_dir: Folder for the files (default: the trainer's log dir, else the cwd).
        idle_baseline_s: Seconds of idle power measured after setup (0 = off); the report
            then has ``idle_power_w`` and ``net_energy_kwh``.
        max_energy_kwh: Stop training gracefully once the run has used this much energy.
        max_emissions_kg: Stop training gracefully once the run has emitted this much CO2.
        project_after_epochs: After this many epochs, predict the whole run's energy.
        project_after_steps: After this many training batches, predict the whole run's energy.
        log_every_n_steps: Logging period in batches (default: the Trainer's).
        write_files: Write the three files (rank 0); the report is built either way.

    Logged keys (all cumulative for the run so far):

    * progress bar (refreshed at most once a second): ``energy/power_w`` (W, this
      process's sensors, latest sample) and
      ``energy/energy_wh`` (Wh, all ranks)
    * loggers, every ``log_every_n_steps`` batches and at each epoch end:
      ``energy/energy_kwh``, ``energy/<component>_kwh`` (e.g. ``energy/gpu_kwh``),
      ``energy/<phase>_kwh`` (``train``, ``validate``, ``test``, ``predict``, ``other``),
      ``carbon/emissions_kg``; after the projection point ``energy/predicted_energy_kwh``
      and ``carbon/predicted_emissions_kg``. Per-component and per-phase values are those
      of this process's sensors until the end-of-run reduction.

    Example::

        from lightning.pytorch import Trainer
        from lightning.pytorch.demos.boring_classes import BoringModel
        from lightning_green import EnergyCallback

        cb = EnergyCallback(country_iso_code="FRA", pue=1.2)
        Trainer(max_epochs=1, callbacks=[cb], logger=False).fit(BoringModel())
        print(cb.report.summary())
    """
