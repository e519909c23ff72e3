"""emissions.csv holds one row per run id (cumulative for that run), so summing its rows, as
codecarbon's own dashboard does, counts every run once; codecarbon's readers load our file."""

from __future__ import annotations

import pandas as pd
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint

from tests.helpers.ecosystem_kit import LoggingModel, csv_rows, energy_cb, trainer

PROJECT = "lightning-green"  # the project_name of our rows (report.context may set another)


def _fit_then_test(tmp_path, out):
    cb = energy_cb(output_dir=out)
    run = trainer(tmp_path, [cb])
    run.fit(LoggingModel())
    after_fit = cb.report
    run.test(LoggingModel(), verbose=False)
    return cb, after_fit


def test_fit_then_test_leaves_one_row_with_the_final_totals(tmp_path):
    out = tmp_path / "fp"
    cb, after_fit = _fit_then_test(tmp_path, out)
    final = cb.report
    assert final.run_id == after_fit.run_id and final.energy_kwh > after_fit.energy_kwh
    rows = csv_rows(out / "emissions.csv")
    assert [r["run_id"] for r in rows] == [final.run_id]
    assert float(rows[0]["energy_consumed"]) == pytest.approx(final.facility_energy_kwh)
    assert float(rows[0]["emissions"]) == pytest.approx(final.emissions_kg)
    assert float(rows[0]["duration"]) == pytest.approx(final.duration_s)


def test_a_resume_in_the_same_folder_replaces_its_row_and_keeps_other_runs(tmp_path):
    out, ckpt = tmp_path / "fp", tmp_path / "ckpt"
    earlier = energy_cb(output_dir=out)
    trainer(tmp_path, [earlier]).fit(LoggingModel())
    first = energy_cb(output_dir=out)
    trainer(tmp_path, [first, ModelCheckpoint(dirpath=ckpt, save_last=True)], enable_checkpointing=True).fit(
        LoggingModel())
    resumed = energy_cb(output_dir=out)
    trainer(tmp_path, [resumed], max_epochs=2).fit(LoggingModel(), ckpt_path=ckpt / "last.ckpt")
    assert resumed.report.run_id == first.report.run_id and resumed.report.steps == 8
    rows = csv_rows(out / "emissions.csv")
    assert [r["run_id"] for r in rows] == [earlier.report.run_id, first.report.run_id]
    assert float(rows[0]["energy_consumed"]) == pytest.approx(earlier.report.facility_energy_kwh)
    assert float(rows[1]["energy_consumed"]) == pytest.approx(resumed.report.facility_energy_kwh)
    total = sum(float(r["energy_consumed"]) for r in rows)
    assert total == pytest.approx(earlier.report.facility_energy_kwh + resumed.report.facility_energy_kwh)


def _two_runs_in_one_folder(tmp_path):
    """A fit + test run and a second run, both writing tmp_path/fp/emissions.csv."""
    out = tmp_path / "fp"
    tested, _ = _fit_then_test(tmp_path, out)
    other = energy_cb(output_dir=out)
    trainer(tmp_path, [other]).fit(LoggingModel())
    return out / "emissions.csv", [tested.report, other.report]


def test_codecarbons_dataframe_reader_loads_our_rows_and_sums_each_run_once(tmp_path):
    from codecarbon.output_methods.emissions_data import EmissionsData
    from codecarbon.output_methods.file import FileOutput

    path, reports = _two_runs_in_one_folder(tmp_path)
    df = pd.read_csv(path)  # what carbonboard's loader does (codecarbon.viz.carbonboard.viz)
    assert set(df.columns) == set(EmissionsData.__dataclass_fields__)
    records = [EmissionsData(**row) for row in df.to_dict("records")]
    assert [r.run_id for r in records] == [r.run_id for r in reports]
    assert df["energy_consumed"].sum() == pytest.approx(sum(r.facility_energy_kwh for r in reports))
    assert df["emissions"].sum() == pytest.approx(sum(r.emissions_kg for r in reports))
    # codecarbon's own writer takes our file as its own: same columns, no backup, rows kept.
    writer = FileOutput(path.name, str(path.parent), on_csv_write="update")
    assert writer.has_valid_headers(records[0])
    writer.out(records[0], None)
    assert not list(path.parent.glob("*.bak"))
    assert list(pd.read_csv(path)["run_id"]) == [reports[1].run_id, reports[0].run_id]


def test_carbonboards_project_summary_counts_each_run_once(tmp_path):
    pytest.importorskip("dash", reason="codecarbon's carbonboard extra (dash) is not installed; it is in the test extra")
    from codecarbon.viz.carbonboard import render_app
    from codecarbon.viz.data import Data

    path, reports = _two_runs_in_one_folder(tmp_path)
    df = pd.read_csv(path)  # carbonboard --filepath=emissions.csv: read, then the app is built on it
    assert type(render_app(df)).__name__ == "Dash"
    project = Data.get_project_data(df, PROJECT).data  # carbonboard's records of one project
    summary = Data.get_project_summary(project)
    assert summary["total"]["energy_consumed"] == pytest.approx(sum(r.facility_energy_kwh for r in reports))
    assert summary["total"]["emissions"] == pytest.approx(sum(r.emissions_kg for r in reports))
    assert summary["total"]["duration"] == pytest.approx(sum(r.duration_s for r in reports))
