"""The early projection of a whole run: set-up and sanity-check energy counted once, not
extrapolated as if every batch cost it; a run of unknown length says why there is none."""

from __future__ import annotations

import re
import time

import pytest
from lightning.pytorch.demos.boring_classes import BoringModel

from tests.helpers.ecosystem_kit import StreamModel, energy_cb, trainer

BATCHES, AFTER = 20, 3


class CostlyStartModel(BoringModel):
    """A slow set-up (0.6 s) and sanity check (2 x 0.4 s) before 20 batches of 0.1 s: most of
    what was spent by the third batch is spent once."""

    def setup(self, stage: str) -> None:
        time.sleep(0.6)

    def training_step(self, batch, batch_idx):
        time.sleep(0.1)
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        if self.trainer.sanity_checking:
            time.sleep(0.4)
        return super().validation_step(batch, batch_idx)


def test_projection_after_3_of_20_batches_counts_set_up_and_sanity_check_once(tmp_path):
    cb = energy_cb(output_dir=tmp_path / "fp", project_after_steps=AFTER)
    trainer(tmp_path, [cb], limit_train_batches=BATCHES, limit_val_batches=2, num_sanity_val_steps=2).fit(
        CostlyStartModel())
    report = cb.report
    assert report.steps == BATCHES and report.predicted_energy_kwh is not None
    assert report.predicted_energy_kwh == pytest.approx(report.energy_kwh, rel=0.2)
    # How it was made is in the report: fixed energy once, a per-batch rate for the rest.
    method = report.context["projection_method"]
    per_batch_j = float(re.search(rf"{BATCHES - AFTER} remaining training batches x ([0-9.e+-]+) J", method)[1])
    fixed_j = float(re.search(r"fixed energy \(([0-9.e+-]+) J: set-up, sanity check\) counted once", method)[1])
    # The case this guards: extrapolating everything spent so far would predict several times the truth.
    naive_kwh = (fixed_j + AFTER * per_batch_j) / AFTER * BATCHES / 3.6e6
    assert naive_kwh > 2 * report.energy_kwh
    assert report.predicted_emissions_kg == pytest.approx(
        report.predicted_energy_kwh * report.pue * report.carbon_intensity_g_per_kwh / 1000, rel=1e-6)


def test_an_iterable_dataset_without_a_length_says_why_there_is_no_projection(tmp_path):
    cb = energy_cb(output_dir=tmp_path / "fp", project_after_steps=AFTER)
    with pytest.warns(UserWarning, match="no projection"):
        trainer(tmp_path, [cb], max_epochs=2, limit_train_batches=None).fit(StreamModel())
    report = cb.report
    assert report.steps == 12 and report.predicted_energy_kwh is None  # 2 epochs of 24 samples in 4s
    said = [w for w in report.warnings if "no projection" in w]
    assert said == ["no projection: max_epochs=2, but the batches per epoch are not known (an IterableDataset "
                    "without a length); set max_steps or limit_train_batches"]


@pytest.mark.parametrize("limit", [{"limit_train_batches": 5}, {"max_steps": 8}])
def test_an_iterable_dataset_with_a_known_length_is_projected(tmp_path, limit):
    cb = energy_cb(output_dir=tmp_path / "fp", project_after_steps=AFTER)
    trainer(tmp_path, [cb], max_epochs=2, **{"limit_train_batches": None, **limit}).fit(StreamModel())
    report = cb.report
    assert report.predicted_energy_kwh is not None
    assert not [w for w in report.warnings if "no projection" in w]
    planned = 10 if "limit_train_batches" in limit else 8
    assert f"{planned - AFTER} remaining training batches" in report.context["projection_method"]
