"""Serving: energy per 1,000 predictions against prediction accuracy, and the break-even.

A *serving run* has energy in its ``predict`` phase (``energy_kwh_by_phase["predict"]``) and
counted predictions (``work_by_phase["predict"]["samples"]``). Per run: predictions, real
and padded tokens, J per 1,000 predictions, J per real token and per processed (padded)
token, the prediction metric (``predict/acc`` ...), and the inference settings the recipe
recorded in ``extra.inference``.

**Pairing a serving run with the training run that produced its model**, first rule that
applies (the table says which one did):

1. ``given``: an explicit pair, ``pairs={"serving run": "training run"}`` (CLI
   ``--pair SERVING=TRAINING``, run names as in the table).
2. ``trained_from``: ``extra.inference.trained_from`` names the training run: its
   ``run_id``, its folder name or its folder path.
3. ``checkpoint``: ``extra.inference.ckpt_path`` (or ``checkpoint``) lies inside a training
   run's folder (the recipe saves checkpoints in its run folder).
4. ``same run``: the serving footprint trained too (fit then predict in one run): its
   training energy is its total minus its predict energy.

A paired training run's training energy is its total minus its own predict energy.

**Break-even** of a variant V against the serving baseline B: training costs
``dT = T_V - T_B`` more (J) and each prediction saves ``ds = s_B - s_V`` (J). With ``ds > 0``:
V pays back after ``N = dT / ds`` predictions (at once when ``dT <= 0``). With ``ds < 0``:
V stays cheaper *until* ``N = dT / ds`` predictions when it trained for less, else never.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_green.compare.footprints import Run, canonical_value, finite
from lightning_green.compare.pareto import pareto_front

__all__ = ["BreakEven", "SERVING_METRICS", "Serving", "ServingRow", "analyse_serving", "break_even", "pair_training"]

J_PER_KWH = 3.6e6
SERVING_METRICS = ("predict/acc", "predict_acc", "predict/accuracy", "predict_accuracy", "predict/f1", "predict_f1",
                   "test/acc", "test_acc")
#: The inference levers (``extra.inference``) a serving row is told apart by; the rest of that
#: block is measurement (times, counts, energy), shown in its own columns or not at all.
_SETTINGS = ("precision", "quantization", "batch_size", "compile", "pruning")


def _setting(key: str, value: Any) -> Any:
    if key == "pruning" and isinstance(value, dict):  # {"method": "heads", "amount": 0.5, ...}
        method = value.get("method") or "none"
        amount = value.get("amount")
        return method if method == "none" or amount is None else f"{method} {canonical_value(amount)}"
    return canonical_value(value)


@dataclass(frozen=True)
class BreakEven:
    """``kind``: ``"baseline"``, ``"immediate"`` (cheaper from the first prediction),
    ``"after"`` (pays back after ``predictions``), ``"until"`` (cheaper only until
    ``predictions``), ``"never"``, or ``"same"`` (identical costs)."""

    kind: str
    predictions: float | None
    extra_training_j: float
    saving_j_per_prediction: float

    def text(self, variant: str, baseline: str) -> str:
        n = f"{self.predictions:,.0f}" if self.predictions is not None else ""
        extra = f"{self.extra_training_j:+.4g} J of training"
        saving = f"{self.saving_j_per_prediction * 1000:+.4g} J saved per 1,000 predictions"
        return {
            "baseline": f"`{variant}` is the serving baseline",
            "immediate": f"`{variant}` is cheaper than `{baseline}` from the first prediction ({extra}, {saving})",
            "after": f"`{variant}` pays back its extra training energy after {n} predictions ({extra}, {saving})",
            "until": f"`{variant}` is cheaper than `{baseline}` only until {n} predictions ({extra}, {saving})",
            "never": f"`{variant}` never pays back against `{baseline}` ({extra}, {saving})",
            "same": f"`{variant}` costs the same as `{baseline}`",
        }[self.kind]


def break_even(train_j_variant: float, j_per_prediction_variant: float,
               train_j_baseline: float, j_per_prediction_baseline: float) -> BreakEven:
    """The break-even of a variant against a baseline (all in joules; see the module docstring)."""
    extra = float(train_j_variant) - float(train_j_baseline)
    saving = float(j_per_prediction_baseline) - float(j_per_prediction_variant)
    if saving > 0:
        return BreakEven("immediate", 0.0, extra, saving) if extra <= 0 else BreakEven("after", extra / saving, extra, saving)
    if saving < 0:
        return BreakEven("until", extra / saving, extra, saving) if extra < 0 else BreakEven("never", None, extra, saving)
    return BreakEven("immediate", 0.0, extra, saving) if extra < 0 else BreakEven(
        "same" if extra == 0 else "never", None, extra, saving)


@dataclass
class ServingRow:
    run: Run
    predictions: int
    batches: int
    tokens: int
    padded_tokens: int
    energy_kwh: float
    metric: float | None
    settings: dict[str, str]
    training: Run | None = None
    training_kwh: float | None = None
    pairing: str = ""
    break_even: BreakEven | None = None
    pareto: bool = False

    @property
    def j_per_1k(self) -> float:
        return self.energy_kwh * J_PER_KWH / self.predictions * 1000.0

    @property
    def j_per_token(self) -> float | None:
        return self.energy_kwh * J_PER_KWH / self.tokens if self.tokens else None

    @property
    def j_per_padded_token(self) -> float | None:
        return self.energy_kwh * J_PER_KWH / self.padded_tokens if self.padded_tokens else None


@dataclass
class Serving:
    rows: list[ServingRow]
    baseline: ServingRow | None
    metric: str | None
    maximize: bool
    setting_keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def training_kwh(run: Run) -> float:
    """Energy spent producing the model: the run's total minus its predict phase."""
    return max(0.0, float(run.report.energy_kwh) - run.phase_kwh("predict"))


def _inside(path: Any, folder: Path) -> bool:
    if not isinstance(path, str) or not path:
        return False
    try:
        return Path(path).resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


def _same_folder(path: str, folder: Path) -> bool:
    try:
        return Path(path).resolve() in (folder.resolve(), (folder / "footprint.json").resolve())
    except (OSError, ValueError):
        return False


def pair_training(serving: Run, runs: Sequence[Run], pairs: Mapping[str, str] | None = None) -> tuple[Run | None, str]:
    """(training run, rule) for a serving run; (None, "") when no rule applies."""
    trainers = [r for r in runs if r.is_training and r is not serving]
    by_name = {r.name: r for r in runs}
    if pairs and serving.name in pairs:
        return by_name[pairs[serving.name]], "given"
    wanted = serving.inference.get("trained_from")
    if isinstance(wanted, str) and wanted:
        for run in trainers:
            if wanted in (run.report.run_id, run.name, run.path.name) or _same_folder(wanted, run.path):
                return run, "trained_from"
    for key in ("ckpt_path", "checkpoint"):
        for run in trainers:
            if _inside(serving.inference.get(key), run.path):
                return run, "checkpoint"
    if serving.is_training:
        return serving, "same run"
    return None, ""


def choose_metric(runs: Sequence[Run], metric: str | None) -> str | None:
    if metric:
        return metric
    present = {k for r in runs for k, v in (r.report.metrics or {}).items() if finite(v)}
    return next((m for m in SERVING_METRICS if m in present), None)


def _default_serving(row: ServingRow) -> bool:
    quant = str(row.run.inference.get("quantization", "none")).lower()
    precision = str(row.run.inference.get("precision", row.run.overrides.get("precision", "32"))).lower()
    return quant in ("none", "null", "") and precision in ("32", "32-true", "fp32", "float32")


def analyse_serving(runs: Sequence[Run], *, baseline: Run | None = None, metric: str | None = None,
                    maximize: bool = True, pairs: Mapping[str, str] | None = None) -> Serving | None:
    """The serving table of the runs that served, or None when none did.

    Raises:
        ValueError: ``pairs`` naming a run that is not loaded (lists the run names).
    """
    names = [r.name for r in runs]
    for serving_name, training_name in (pairs or {}).items():
        for name in (serving_name, training_name):
            if name not in names:
                raise ValueError(f"pair must be SERVING=TRAINING with run names ({', '.join(names)}), got {name!r}")
    served = [r for r in runs if r.is_serving]
    if not served:
        return None
    metric = choose_metric(served, metric)
    raw_settings = [{k: _setting(k, r.inference[k]) for k in _SETTINGS if k in r.inference} for r in served]
    keys = [k for k in dict.fromkeys(k for s in raw_settings for k in s) if len({s.get(k) for s in raw_settings}) > 1]
    rows = []
    for run, settings in zip(served, raw_settings):
        work = run.work("predict")
        row = ServingRow(run=run, predictions=work.get("samples", 0), batches=work.get("batches", 0),
                         tokens=work.get("tokens", 0), padded_tokens=work.get("padded_tokens", 0),
                         energy_kwh=run.phase_kwh("predict"), metric=run.metric(metric),
                         settings={k: settings.get(k, "") for k in keys})
        row.training, row.pairing = pair_training(run, runs, pairs)
        if row.training is not None:
            row.training_kwh = training_kwh(row.training)
        rows.append(row)
    base = next((r for r in rows if baseline is not None and r.run is baseline), None)
    base = base or next((r for r in rows if _default_serving(r)), None) or rows[0]
    notes = []
    for row in rows:
        if row is base:
            row.break_even = BreakEven("baseline", None, 0.0, 0.0)
        elif row.training_kwh is not None and base.training_kwh is not None:
            row.break_even = break_even(row.training_kwh * J_PER_KWH, row.j_per_1k / 1000,
                                        base.training_kwh * J_PER_KWH, base.j_per_1k / 1000)
    unpaired = [r.run.name for r in rows if r.training is None]
    if base.training is None and len(rows) > 1:
        notes.append(f"the serving baseline `{base.run.name}` has no training footprint paired: no break-even")
    elif unpaired:
        notes.append(f"no training footprint paired with {', '.join(unpaired)}: no break-even for "
                     + ("them" if len(unpaired) > 1 else "it")
                     + " (give the training runs too, or --pair SERVING=TRAINING)")
    scored = [r for r in rows if r.metric is not None and r.run.report.status == "completed"]
    for i in pareto_front([(r.j_per_1k, r.metric) for r in scored], maximize):
        scored[i].pareto = True
    return Serving(rows=rows, baseline=base, metric=metric, maximize=maximize, setting_keys=keys, notes=notes)
