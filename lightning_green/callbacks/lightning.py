"""EnergyCallback for ``lightning.pytorch`` Trainers.

For ``pytorch_lightning.Trainer`` use the twin :class:`lightning_green.pytorch_lightning.EnergyCallback`
(the two packages' Trainers only accept their own ``Callback`` classes).
"""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from lightning_green.callbacks.hooks import EnergyHooks

__all__ = ["EnergyCallback"]


class EnergyCallback(EnergyHooks, Callback):
    r"""Measure the energy and CO2 of a Lightning run, per phase, epoch and training step.

    Add it to any Trainer; nothing else changes. A thin adapter over
    :class:`~lightning_green.EnergyMeter`: a background thread reads the sensors; the batch
    hooks only record a timestamp and the batch's size (a few microseconds), so no training
    step waits on a sensor. At the end of every ``fit``/``validate``/``test``/``predict``
    global rank 0 writes ``footprint.json``, ``emissions.csv`` (codecarbon's columns) and
    ``steps.csv`` into the run's folder, says where in one line, and :attr:`report` holds the
    :class:`~lightning_green.outputs.footprint.FootprintReport`. Calls add up: after ``fit``
    then ``test`` the report covers both, and a fit resumed from a checkpoint continues the
    footprint saved in it. A debug run (``fast_dev_run``) measures and prints the summary but
    writes no files, as Lightning does for its own outputs.

    Args:
        sensors: ``"auto"`` (this process's GPU through NVML, the CPU through RAPL or an
            estimate, the RAM estimate) or a list of :class:`~lightning_green.sensors.Sensor`.
        sampling_interval_s: How often power sensors are read, in seconds (> 0).
        country_iso_code: ISO 3166-1 alpha-3 code for the grid's carbon intensity (``"FRA"``).
        cloud_provider: With ``cloud_region``, use that region's intensity (``"gcp"``, ...).
        cloud_region: The provider's region name (``"europe-west1"``).
        carbon_intensity_g_per_kwh: An explicit intensity (> 0, <= 2000 g/kWh); wins over the lookups.
        pue: Power usage effectiveness of the facility (1.0-5.0).
        output_dir: Folder (or fsspec URL) for the files. Default: the first logger's versioned
            log dir (TensorBoard, CSV), else ``<default_root_dir>/lightning_green/<run_id>``.
        idle_baseline_s: Seconds of idle power measured after setup (0 = off); the report
            then has ``idle_power_w`` and ``net_energy_kwh``.
        max_energy_kwh: Stop training gracefully once the run has used this much energy.
        max_emissions_kg: Stop training gracefully once the run has emitted this much CO2.
        project_after_epochs: After this many epochs, predict the whole run's energy.
        project_after_steps: After this many training batches, predict the whole run's energy.
        log_every_n_steps: Logging period in batches (default: the Trainer's).
        write_files: Write the files (rank 0); the report is built either way.
        snapshot_every_s: Write the footprint so far (status ``running``) this often, so a run
            killed at any moment leaves its energy (0 = off).
        exporters: Live exporters, e.g. ``[PrometheusExporter(port=9464)]``.
        name: A name for this measurement; two EnergyCallbacks in one Trainer need distinct
            names (it is part of their checkpoint key).

    Logged keys (all cumulative for the run so far):

    * progress bar (refreshed at most once a second; never in the report's metrics):
      ``energy/power_w`` (W, this process's sensors, latest sample) and ``energy/energy_wh``
      (Wh, all ranks)
    * loggers, every ``log_every_n_steps`` batches, at each epoch end and at the end of every
      stage (so a test-only run logs its energy too), at the step Lightning's own monitors
      use: ``energy/energy_kwh``, ``energy/<component>_kwh`` (e.g. ``energy/gpu_kwh``),
      ``energy/<phase>_kwh`` (``train``, ``validate``, ``test``, ``predict``, ``other``),
      ``carbon/emissions_kg``; after the projection point ``energy/predicted_energy_kwh`` and
      ``carbon/predicted_emissions_kg``. During the run, per-component and per-phase values
      are this process's sensors; the end-of-stage values are every rank's.

    Example::

        from lightning.pytorch import Trainer
        from lightning.pytorch.demos.boring_classes import BoringModel
        from lightning_green import EnergyCallback

        cb = EnergyCallback(country_iso_code="FRA", pue=1.2)
        Trainer(max_epochs=1, callbacks=[cb], logger=False).fit(BoringModel())
        print(cb.report.summary())
    """

    _info = staticmethod(rank_zero_info)
