"""Plots: resolution, SVG on request, a key for long override names, titles and legends that fit."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lightning_green.compare import compare, load_runs, main, write_plots
from lightning_green.compare.plots import figure_energy_by_component, figure_pareto, figure_power_over_time
from tests.helpers.compare_fixtures import footprint, write_run, write_sweep

LONG = [
    ["precision=32", "model.pretrained=prajjwal1/bert-tiny", "trainer.limit_train_batches=50"],
    ["precision=bf16-mixed", "model.pretrained=google/bert_uncased_L-4_H-256_A-4", "trainer.limit_train_batches=50"],
]


def two_real_looking_runs(root: Path) -> Path:
    """Two runs in Hydra's dated folders with long override values (as in the issue's report)."""
    for i, overrides in enumerate(LONG):
        write_run(root / f"outputs/2025-01-01/12-0{i}-00", footprint(
            overrides=overrides, gpu_kwh=0.004 - 0.0015 * i, cpu_kwh=0.001, acc=0.8 + 0.01 * i, start_min=10 * i,
            duration_s=120), steps_w=150.0 - 40 * i, n_steps=200)
    return root


def test_png_at_150_dpi_by_default(tmp_path):
    written = write_plots(compare(load_runs([write_sweep(tmp_path / "sweep")])), tmp_path / "out")
    assert sorted(p.name for p in written) == ["energy_by_component.png", "pareto_energy.png", "power_over_time.png"]
    for path in written:
        with Image.open(path) as image:
            assert image.info["dpi"] == pytest.approx((150, 150), abs=0.05)
            assert image.size[0] >= 150 * 6  # at least 6 inches wide at 150 dpi
    dense = write_plots(compare(load_runs([tmp_path / "sweep"])), tmp_path / "dense", dpi=300)
    with Image.open(dense[0]) as image:
        assert image.info["dpi"] == pytest.approx((300, 300), abs=0.05)


def test_svg_on_request_keeps_text_as_text(tmp_path, capsys):
    root = two_real_looking_runs(tmp_path / "runs")
    assert main([str(root), "--format", "svg", "--out", str(tmp_path / "out")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["comparison.csv", "comparison.md", "energy_by_component.svg", "pareto_energy.svg",
                     "power_over_time.svg"]
    svg = (tmp_path / "out" / "power_over_time.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "Power during training steps" in svg and "google/bert_uncased_L-4_H-256_A-4" in svg  # title and key as text
    assert "![power over time](power_over_time.svg)" in (tmp_path / "out" / "comparison.md").read_text()


def _inside(fig, artist) -> bool:
    renderer = fig.canvas.get_renderer()
    box, page = artist.get_window_extent(renderer), fig.bbox
    return box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1 and box.y0 >= page.y0 - 1 and box.y1 <= page.y1 + 1


@pytest.mark.parametrize("make", [figure_power_over_time, figure_energy_by_component, figure_pareto])
def test_titles_legends_and_keys_fit_and_leave_the_axes_room(tmp_path, make):
    comparison = compare(load_runs([two_real_looking_runs(tmp_path / "runs")]))
    fig = make(comparison)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert _inside(fig, ax.title), "title cut off"
    legend = ax.get_legend()
    if legend is not None:
        assert _inside(fig, legend), "legend outside the figure"
    for text in fig.axes[1].texts if len(fig.axes) > 1 else []:  # the key under the plot
        assert _inside(fig, text), "key cut off"
    assert ax.get_position().width >= 0.6, f"axes squeezed to {ax.get_position().width:.2f} of the width"
    labels = [t.get_text() for t in ax.get_xticklabels()] if make is figure_energy_by_component else []
    assert all(len(line) <= 14 for label in labels for line in label.split("\n"))  # long names go to the key


def test_key_spells_out_long_names(tmp_path):
    comparison = compare(load_runs([two_real_looking_runs(tmp_path / "runs")]))
    fig = figure_power_over_time(comparison)
    key = "\n".join(t.get_text() for t in fig.axes[1].texts)
    assert "#1 = outputs/2025-01-01/12-00-00: precision=32, model.pretrained=prajjwal1/bert-tiny (baseline)" in key
    assert "google/bert_uncased_L-4_H-256_A-4" in key
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["#1 (baseline)", "#2"]


def test_bad_plot_options(tmp_path):
    comparison = compare(load_runs([write_sweep(tmp_path / "sweep")]))
    with pytest.raises(ValueError, match=r"format must be one of 'png', 'svg', got 'gif'"):
        write_plots(comparison, tmp_path / "out", fmt="gif")
    with pytest.raises(ValueError, match=r"dpi must be an integer >= 72"):
        write_plots(comparison, tmp_path / "out", dpi=50)
