"""Many footprints -> one comparison: rows, baseline deltas, Pareto front, repeats, flags.

Pure Python (no matplotlib). Energy is compared as IT energy (before PUE), so runs with
different carbon settings stay comparable on energy; emissions are not, and the comparison
says so. Runs that did different amounts of work (an interrupted run, another
``limit_train_batches``, another data size) are compared on energy per training sample.
Runs that differ only in ``seed`` are pooled (:mod:`lightning_green.compare.groups`);
serving runs get their own table (:mod:`lightning_green.compare.serving`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning_green.compare.fairness import Flag, fairness_flags
from lightning_green.compare.footprints import Run, canonical_value, finite, load_runs
from lightning_green.compare.groups import Group, compare_groups, fill_stats, group_runs
from lightning_green.compare.pareto import METRIC_MODES, metric_maximized, pareto_front
from lightning_green.compare.rows import build_rows
from lightning_green.compare.serving import Serving, analyse_serving
from lightning_green.compare.serving import choose_metric as serving_choice
from lightning_green.compare.uncertainty import Bands, run_bands
from lightning_green.compare.whatif import DEFAULT_REGIONS, Region, resolve_regions
from lightning_green.validation import check_choice

__all__ = [
    "BYS", "METRIC_CANDIDATES", "METRIC_MODES", "Comparison", "Run", "choose_baseline", "choose_metric",
    "compare", "load_runs", "metric_maximized", "order_components", "pareto_front",
]

BYS = ("energy", "emissions")
# Default main metric: the first of these present in any run's metrics.
METRIC_CANDIDATES = (
    "val/acc", "val_acc", "val/accuracy", "val_accuracy", "val/f1", "val_f1",
    "val/loss", "val_loss",
)
_COMPONENT_ORDER = ("gpu", "cpu", "ram")
_FP32 = {"32", "32-true", "fp32", "float32", "full", "none", "null", ""}


@dataclass
class Comparison:
    """The result of :func:`compare`. ``rows`` are CSV-ready dicts in ``columns`` order, one
    per run of the table (serving-only runs are in ``serving`` instead)."""

    runs: list[Run]
    rows: list[dict[str, Any]]
    columns: list[str]
    baseline: Run | None
    flags: list[Flag]
    metric: str | None
    maximize: bool
    by: str
    pareto: list[Run]
    override_keys: list[str]
    components: list[str]
    measured: dict[str, dict[str, str]] = field(default_factory=dict)  # run -> component -> status
    display: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> canonical -> as written
    bands: dict[str, Bands] = field(default_factory=dict)  # run -> bands
    per_sample: bool = False  # "vs baseline" compares energy per training sample
    work_note: str = ""
    group_keys: list[str] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)  # non-empty when some configuration repeats
    regions: list[Region] = field(default_factory=list)
    serving: Serving | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def cost_figure(self) -> str:
        """The figure the Pareto front and the noise check use for cost."""
        if self.by == "energy":
            return "energy_per_sample_j" if self.per_sample else "energy_kwh"
        return "emissions_per_sample_g" if self.per_sample else "emissions_kg"

    def shown(self, key: str, run: Run) -> str:
        """An override value as first written among the runs (one spelling per value)."""
        value = run.canonical_overrides.get(key)
        return "" if value is None else self.display.get(key, {}).get(value, value)


def choose_metric(runs: Sequence[Run], metric: str | None = None) -> str | None:
    """``metric`` if given, else the first of METRIC_CANDIDATES present, else any ``val*``."""
    if metric:
        return metric
    present = {k for r in runs for k, v in (r.report.metrics or {}).items() if finite(v)}
    for name in METRIC_CANDIDATES:
        if name in present:
            return name
    val = sorted(k for k in present if k.startswith("val"))
    return val[0] if val else None


def _is_default_baseline(run: Run) -> bool:
    overrides = run.overrides
    config = run.report.config if isinstance(run.report.config, dict) else {}
    precision = overrides.get("precision", (run.report.context or {}).get("precision", config.get("precision")))
    pruning = overrides.get("pruning", config.get("pruning"))
    if isinstance(pruning, dict):
        pruning = pruning.get("name", pruning.get("mode", pruning.get("method")))
    return str(precision).lower() in _FP32 and str(pruning).lower() in {"none", "null", ""}


def choose_baseline(runs: Sequence[Run], baseline: str | None = None) -> Run | None:
    """The run named ``baseline`` (folder name, or overrides such as ``"precision=32 pruning=none"``,
    values compared by :func:`~lightning_green.compare.footprints.canonical_value`);
    by default the completed fp32 / no-pruning run, else any such run, else the first run."""
    if not runs:
        return None
    if baseline is None:
        defaults = [r for r in runs if _is_default_baseline(r)]
        return ([r for r in defaults if r.report.status == "completed"] or defaults or list(runs))[0]
    for run in runs:
        if baseline in (run.name, run.path.name):
            return run
    wanted = dict(t.split("=", 1) for t in baseline.replace(",", " ").split() if "=" in t)
    for run in runs:
        values = run.canonical_overrides
        if wanted and all(values.get(k.lstrip("+~")) == canonical_value(v) for k, v in wanted.items()):
            return run
    known = ", ".join(repr(r.name) for r in runs)
    raise ValueError(f"baseline must be a run folder name ({known}) or overrides like 'precision=32', got {baseline!r}")


def order_components(names: Iterable[str]) -> list[str]:
    names = set(names)
    return [c for c in _COMPONENT_ORDER if c in names] + sorted(names - set(_COMPONENT_ORDER))


def _work_mode(runs: Sequence[Run], base: Run | None) -> tuple[bool, str, list[Flag]]:
    """Whether to compare per sample, the sentence that says why, and a flag for the runs."""
    samples = {r.name: int(r.report.samples or 0) for r in runs}
    known = {n: s for n, s in samples.items() if s > 0}
    if len(set(known.values())) <= 1:
        unknown = [n for n, s in samples.items() if s == 0]
        if known and unknown:
            return False, (f"Runs {', '.join(unknown)} recorded no training samples, so their work cannot be "
                           "compared: totals are compared."), []
        return False, "", []
    base_samples = samples.get(base.name, 0) if base else 0
    odd = tuple(n for n, s in known.items() if s != base_samples) if base_samples else tuple(known)
    text = (f"Runs did different amounts of work ({min(known.values()):,}-{max(known.values()):,} training "
            "samples): \"vs baseline\" compares energy (and emissions) per training sample, not totals.")
    flag = Flag("different-work", odd, (
        "these runs trained on another number of samples than the baseline "
        f"({', '.join(f'{n}: {known[n]:,}' for n in odd)}; baseline {base_samples:,}): "
        "they are compared per sample"))
    return True, text, [flag]


def compare(
    runs: Sequence[Run],
    baseline: str | None = None,
    metric: str | None = None,
    *,
    by: str = "energy",
    metric_mode: str = "auto",
    group_by: Sequence[str] | None = None,
    regions: Sequence[str] = DEFAULT_REGIONS,
    serving_metric: str | None = None,
    pairs: Mapping[str, str] | None = None,
) -> Comparison:
    """Tabulate ``runs``: one row each, deltas against the baseline, Pareto front, flags,
    repeats pooled, what-if regions, and the serving table.

    Args:
        runs: From :func:`load_runs`.
        baseline: Folder name or override string of the baseline run; None picks the
            fp32 / no-pruning run, else the first.
        metric: Main validation metric; None picks the first of METRIC_CANDIDATES found.
        by: ``"energy"`` or ``"emissions"``: the cost axis of the Pareto front.
        metric_mode: ``"auto"`` (loss-like names minimised), ``"max"`` or ``"min"``.
        group_by: Override keys that define a configuration; None: all that differ except
            ``seed``. Groups are reported when a configuration has repeats.
        regions: What-if locations (ISO-3 codes, ``provider:region``); empty for none.
        serving_metric: Metric of the serving table (default ``predict/acc`` and kin).
        pairs: Explicit serving run -> training run names for the break-even.

    Raises:
        ValueError: A bad ``by``, ``metric_mode``, ``baseline``, ``group_by``, region or pair.
    """
    check_choice("by", by, BYS)
    check_choice("metric_mode", metric_mode, METRIC_MODES)
    try:
        region_list = resolve_regions(list(regions))
    except RuntimeError as err:  # codecarbon's data missing: the what-if is skipped, not the comparison
        region_list, skipped = [], f"What-if regions skipped: {err}."
    else:
        skipped = ""
    everything = list(runs)
    table = [r for r in everything if r.is_training or not r.is_serving] or everything
    chosen = choose_baseline(everything, baseline) if baseline is not None else None
    base = chosen if chosen in table else choose_baseline(table)
    metric = choose_metric(table, metric)
    maximize = metric_maximized(metric, metric_mode)
    display: dict[str, dict[str, str]] = {}
    for run in table:
        for key, value in run.overrides.items():
            display.setdefault(key, {}).setdefault(canonical_value(value), value)
    canon = [r.canonical_overrides for r in table]
    keys = [k for k in dict.fromkeys(k for p in canon for k in p) if len({p.get(k) for p in canon}) > 1]
    per_sample, work_note, work_flags = _work_mode(table, base)
    comparison = Comparison(
        runs=table, rows=[], columns=[], baseline=base, flags=[], metric=metric, maximize=maximize, by=by,
        pareto=[], override_keys=keys, components=order_components(c for r in table for c in r.energy_kwh_by_component()),
        measured={r.name: r.component_measured() for r in table}, display=display,
        bands={r.name: run_bands(r) for r in table}, per_sample=per_sample, work_note=work_note, regions=region_list,
        notes=[skipped] if skipped else [],
    )
    cost = comparison.cost_figure
    group_keys, groups = group_runs(table, keys, group_by)
    repeats = any(g.n > 1 for g in groups)
    rows = build_rows(comparison, {r.name: g.name for g in groups for r in g.runs} if repeats else None)
    by_run = {r["run"]: r for r in rows}
    candidates = [r for r in table if r.report.status == "completed" and finite(by_run[r.name].get(cost))
                  and r.metric(metric) is not None]
    points = [(by_run[r.name][cost], r.metric(metric)) for r in candidates]
    comparison.pareto = [candidates[i] for i in pareto_front(points, maximize)]
    comparison.flags = fairness_flags(table) + work_flags
    if repeats:
        _pool(comparison, groups, by_run, base)
        comparison.group_keys, comparison.groups = group_keys, groups
    elif len(groups) > 1 and metric:
        comparison.notes.append("Each configuration ran once, so run-to-run noise is unknown: differences smaller "
                                "than a repeat would show cannot be told from noise (repeat with seed=1,2,3).")
    pareto_names = {r.name for r in comparison.pareto}
    for row in rows:
        row["baseline"], row["pareto"] = row["run"] == (base.name if base else None), row["run"] in pareto_names
        row["flags"] = ";".join(dict.fromkeys(f.kind for f in comparison.flags if row["run"] in f.runs))
    comparison.rows, comparison.columns = rows, list(rows[0]) if rows else []
    serving_base = chosen if chosen is not None and chosen not in table else base
    s_metric = serving_choice([r for r in everything if r.is_serving], serving_metric)
    comparison.serving = analyse_serving(everything, baseline=serving_base, metric=s_metric,
                                         maximize=metric_maximized(s_metric, metric_mode), pairs=pairs)
    return comparison


def _pool(comparison: Comparison, groups: list[Group], by_run: dict[str, dict[str, Any]], base: Run | None) -> None:
    """Statistics per configuration, differences from the baseline's, noise flags, group Pareto."""
    metric, cost = comparison.metric, comparison.cost_figure
    figures = {name: (lambda run, name=name: by_run[run.name].get(name))
               for name in ("duration_s", "energy_kwh", "energy_per_sample_j", "emissions_kg", "emissions_per_sample_g")}
    if metric:
        figures[metric] = lambda run: run.metric(metric)
    for group in groups:
        fill_stats(group, figures)
    base_group = next((g for g in groups if base in g.runs), None)
    compare_groups(groups, base_group, [cost] + ([metric] if metric else []))
    scored = [g for g in groups if g.completed and cost in g.stats and metric in g.stats]
    for i in pareto_front([(g.stats[cost].mean, g.stats[metric].mean) for g in scored], comparison.maximize):
        scored[i].pareto = True
    for group in groups:
        if group.within_noise:
            comparison.flags.append(Flag("within-noise", tuple(r.name for r in group.runs), (
                f"configuration {group.name} differs from the baseline configuration by less than the "
                f"run-to-run spread in {', '.join(group.within_noise)}: within run-to-run noise")))
