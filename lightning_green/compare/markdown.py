"""``comparison.md``: the comparison for a reader.

One readable unit per column (J, Wh or kWh; g or kg); ``~`` marks an estimated component;
``5 (4.6-5.4)`` is a value with its low-high band; configurations with repeats read
``mean ± std (min-max)``; fairness notes are numbered and referenced from the rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_green.compare.groups import Stat
from lightning_green.compare.runs import Comparison
from lightning_green.compare.table import emissions_unit, energy_unit

__all__ = ["render_markdown"]


def fmt(value: Any, factor: float = 1.0, spec: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, (int, float)):
        return format(value * factor, spec)
    return str(value).replace("|", "\\|")


def _band(value: Any, low: Any, high: Any, factor: float) -> str:
    text = fmt(value, factor)
    return f"{text} ({fmt(low, factor, '.3g')}-{fmt(high, factor, '.3g')})" if text and low is not None and high is not None else text


def _stat(stat: Stat | None, factor: float = 1.0) -> str:
    if stat is None:
        return ""
    spread = f" ± {fmt(stat.std, factor, '.2g')}" if stat.std is not None else ""
    return f"{fmt(stat.mean, factor)}{spread} ({fmt(stat.low, factor, '.4g')}-{fmt(stat.high, factor, '.4g')})"


def _table(head: Sequence[str], body: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(fmt(h) for h in head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(fmt(x) for x in cells) + " |" for cells in body]


def _signed_pct(value: Any) -> str:
    return "" if value is None else f"{value:+.1f}%"


def _runs_table(c: Comparison, refs: dict[Any, int], e_unit: str, e_factor: float, g_unit: str, g_factor: float) -> list[str]:
    rows, grouped = c.rows, bool(c.groups)
    extras = [k for k in ("embodied_kg", "water_l", "energy_cost") if rows and k in rows[0]]
    head = ["run", *(["config"] if grouped else []), *c.override_keys, "status", "duration (s)", f"energy ({e_unit})",
            *(f"{comp} ({e_unit})" for comp in c.components), "J/sample", f"CO2 ({g_unit})"]
    head += [{"embodied_kg": f"embodied CO2 ({g_unit}, not included)", "water_l": "water (L)",
              "energy_cost": "electricity cost"}[k] for k in extras]
    head += [c.metric] if c.metric else []
    deltas = (["energy_per_sample_vs_baseline_pct", "emissions_per_sample_vs_baseline_pct"] if c.per_sample
              else ["energy_vs_baseline_pct", "emissions_vs_baseline_pct"])
    head += ["g/kWh", "PUE"] + (["J/sample vs base", "CO2/sample vs base"] if c.per_sample else ["energy vs base", "CO2 vs base"])
    head += [f"{c.metric} vs base"] if c.metric else []
    head += ["Pareto", "notes"]
    body = []
    for run, row in zip(c.runs, rows):
        measured = c.measured.get(run.name, {})
        cells = [row["run"], *([row["group"]] if grouped else []), *(row[k] for k in c.override_keys), row["status"],
                 fmt(row["duration_s"], spec=".1f"),
                 _band(row["energy_kwh"], row.get("energy_kwh_low"), row.get("energy_kwh_high"), e_factor)]
        cells += [("~" if measured.get(comp) == "estimated" else "")
                  + _band(row[f"{comp}_kwh"], row.get(f"{comp}_kwh_low"), row.get(f"{comp}_kwh_high"), e_factor)
                  for comp in c.components]
        cells += [fmt(row["energy_per_sample_j"]),
                  _band(row["emissions_kg"], row.get("emissions_kg_low"), row.get("emissions_kg_high"), g_factor)]
        for key in extras:
            factor = g_factor if key == "embodied_kg" else 1.0
            cells.append(fmt(row[key], factor) + (f" {row.get('currency') or ''}".rstrip() if key == "energy_cost" else ""))
        cells += [fmt(row[c.metric])] if c.metric else []
        cells += [fmt(row["carbon_intensity_g_per_kwh"], spec="g"), fmt(row["pue"], spec="g")]
        if row["baseline"]:
            cells += ["baseline"] * (len(deltas) + bool(c.metric))
        else:
            cells += [_signed_pct(row[d]) for d in deltas]
            cells += [fmt(row[f"{c.metric}_vs_baseline"], spec="+.4g")] if c.metric else []
        cells += [fmt(row["pareto"]), " ".join(f"[{i}]" for f, i in refs.items() if run.name in f.runs)]
        body.append(cells)
    return _table(head, body)


def _groups_table(c: Comparison, e_unit: str, e_factor: float, g_unit: str, g_factor: float) -> list[str]:
    cost = c.cost_figure
    head = ["config", *c.group_keys, "runs", f"energy ({e_unit})", "J/sample", f"CO2 ({g_unit})"]
    head += [c.metric] if c.metric else []
    cost_label = {"energy_kwh": f"energy ({e_unit})", "energy_per_sample_j": "J/sample",
                  "emissions_kg": f"CO2 ({g_unit})", "emissions_per_sample_g": "CO2/sample (g)"}[cost]
    head += [f"{cost_label} vs base"] + ([f"{c.metric} vs base"] if c.metric else []) + ["Pareto", "noise"]
    cost_factor = {"energy_kwh": e_factor, "emissions_kg": g_factor}.get(cost, 1.0)
    body = []
    for g in c.groups:
        is_base = c.baseline in g.runs
        cells = [g.name, *(c.display.get(k, {}).get(v, v) for k, v in g.config.items()), g.n,
                 _stat(g.stats.get("energy_kwh"), e_factor), _stat(g.stats.get("energy_per_sample_j")),
                 _stat(g.stats.get("emissions_kg"), g_factor)]
        cells += [_stat(g.stats.get(c.metric))] if c.metric else []
        for name, factor in [(cost, cost_factor)] + ([(c.metric, 1.0)] if c.metric else []):
            diff, noise = g.vs_baseline.get(name), g.noise.get(name)
            cells.append("baseline" if is_base else "" if diff is None else
                         f"{diff * factor:+.3g}" + (f" (noise ±{noise * factor:.2g})" if noise is not None else ""))
        noise_text = ("within run-to-run noise: " + ", ".join(g.within_noise)) if g.within_noise else ""
        body.append(cells + [fmt(g.pareto), noise_text])
    return _table(head, body)


def _whatif(c: Comparison, g_unit: str, g_factor: float) -> list[str]:
    if not c.regions or not c.rows:
        return []
    window = "emissions_kg_cleanest_window" in c.rows[0]
    columns = ["emissions_kg", *(f"emissions_kg_if_{r.label}" for r in c.regions)]
    head = ["config" if c.groups else "run", f"as run ({g_unit})", *(f"{r.label} ({g_unit})" for r in c.regions)]
    if c.groups:  # one row per configuration: the mean over its repeats
        by_run = {row["run"]: row for row in c.rows}
        body = []
        for g in c.groups:
            means = []
            for col in columns:
                values = [by_run[r.name][col] for r in g.runs if by_run[r.name][col] is not None]
                means.append(fmt(sum(values) / len(values), g_factor) if values else "")
            body.append([f"{g.name} (mean of {g.n})", *means])
    else:
        head += [f"cleanest window ({g_unit})"] if window else []
        body = [[row["run"], *(fmt(row[col], g_factor) for col in columns)]
                + ([fmt(row["emissions_kg_cleanest_window"], g_factor) + f" {row['cleanest_window']}".rstrip()]
                   if window else []) for row in c.rows]
    sources = "; ".join(f"{r.label} {r.g_per_kwh:.4g} g/kWh ({r.source})" for r in c.regions)
    return ["", "## What if: the same runs on other grids", "",
            "Each run's facility energy (IT energy x its PUE) at another grid's carbon intensity, offline "
            "(codecarbon's data): " + sources + ".", "", *_table(head, body)]


def _serving(c: Comparison) -> list[str]:
    s = c.serving
    if s is None:
        return []
    top = max((r.j_per_1k for r in s.rows), default=0.0)
    unit, factor = ("Wh", 1 / 3600) if top >= 36000 else ("J", 1.0)
    head = ["run", *s.setting_keys, "predictions", "tokens (padded)", f"{unit} / 1,000 predictions", "J/token",
            "J/padded token"] + ([s.metric] if s.metric else []) + ["trained in", "training energy (Wh)", "break-even", "Pareto"]
    body = []
    for r in s.rows:
        be = r.break_even
        be_text = ("baseline" if be and be.kind == "baseline" else "" if be is None else
                   {"immediate": "at once", "after": f"after {be.predictions:,.0f}",
                    "until": f"cheaper until {be.predictions:,.0f}" if be.predictions is not None else "",
                    "never": "never", "same": "same cost"}[be.kind])
        body.append([r.run.name, *(r.settings.get(k, "") for k in s.setting_keys), f"{r.predictions:,}",
                     f"{r.tokens:,} ({r.padded_tokens:,})", fmt(r.j_per_1k, factor), fmt(r.j_per_token),
                     fmt(r.j_per_padded_token)] + ([fmt(r.metric)] if s.metric else [])
                    + [f"{r.training.name} ({r.pairing})" if r.training else "", fmt(r.training_kwh, 1000.0),
                       be_text, fmt(r.pareto)])
    goal = "highest" if s.maximize else "lowest"
    lines = ["", "## Serving: energy per prediction", "",
             f"Predict-phase energy per 1,000 predictions against {s.metric or 'no prediction metric'}"
             f" (Pareto: least energy, {goal} metric). Serving baseline: `{s.baseline.run.name}`. "
             "Training energy is the paired training run's total minus its own predict energy; "
             "the break-even is the number of predictions after which a variant's lower serving energy "
             "has paid back the extra training energy it cost.", "", *_table(head, body), ""]
    lines += [f"- {r.break_even.text(r.run.name, s.baseline.run.name)}." for r in s.rows
              if r.break_even is not None and r.break_even.kind != "baseline"]
    lines += [f"- Note: {n}." for n in s.notes]
    return lines


def render_markdown(c: Comparison, plots: Sequence[Path]) -> str:
    rows = c.rows
    e_unit, e_factor = energy_unit([r["energy_kwh"] for r in rows])
    g_unit, g_factor = emissions_unit([r["emissions_kg"] for r in rows])
    refs = {f: i for i, f in enumerate(c.flags, 1)}
    text = [f"# Energy comparison of {len(c.runs)} run{'s' if len(c.runs) != 1 else ''}", ""]
    if c.baseline:
        shown = " ".join(f"{k}={c.shown(k, c.baseline)}" for k in c.override_keys if k in c.baseline.overrides)
        text.append(f"Baseline: run `{c.baseline.name}`" + (f" ({shown})" if shown else "") + ".")
    if c.work_note:
        text.append(c.work_note)
    if c.metric:
        goal = "highest" if c.maximize else "lowest"
        if c.groups:
            front = ", ".join(f"{g.name}" for g in c.groups if g.pareto) or "none"
            text.append(f"Pareto front of the configurations (mean over repeats; least {c.by}"
                        f"{' per sample' if c.per_sample else ''}, {goal} {c.metric}; completed only): {front}.")
        else:
            front = ", ".join(f"`{r.name}`" for r in c.pareto) or "none"
            text.append(f"Pareto front (least {c.by}{' per sample' if c.per_sample else ''}, {goal} {c.metric}; "
                        f"completed runs only): {front}.")
    else:
        text.append("No validation metric found in the footprints: no Pareto front (use --metric).")
    if c.groups:
        keys = ", ".join(c.group_keys) or "none"
        text += ["", "## Configurations (repeats pooled)", "",
                 f"Runs with the same {keys} are one configuration: mean ± std (min-max) over its runs. "
                 "A difference from the baseline configuration smaller than the spread of a one-run difference "
                 "(sqrt(std² + std_base²)) is *within run-to-run noise*.", "",
                 *_groups_table(c, e_unit, e_factor, g_unit, g_factor)]
    bands = {b.source for b in c.bands.values()}
    band_note = ("Values in brackets are the low-high band from each sensor's stated uncertainty"
                 + (" (footprints written before sensors stated one have none)" if "" in bands else "") + ". "
                 if bands - {""} else "No footprint states an uncertainty (written before sensors stated one). ")
    text += ["", "## Runs", "", *_runs_table(c, refs, e_unit, e_factor, g_unit, g_factor), "",
             f"Energy is IT energy before PUE, in {e_unit}; CO2 = energy x PUE x carbon intensity. "
             "`~` marks an estimated component (a model, not a hardware reading). " + band_note
             + ("Embodied CO2 (hardware manufacturing) is shown beside operational CO2, never added to it."
                if rows and "embodied_kg" in rows[0] else "")]
    text += _whatif(c, g_unit, g_factor)
    text += _serving(c)
    text += ["", "## Fairness notes", ""]
    text += [f"{i}. **{f.kind}**: {f.message}." for f, i in refs.items()] or [
        "None found: no overlapping runs, no incomplete runs, same sensor kinds and carbon settings."]
    text += [f"- {note}" for note in c.notes]
    if plots:
        text += ["", "## Plots", ""] + [f"![{p.stem.replace('_', ' ')}]({p.name})" for p in plots]
    return "\n".join(text) + "\n"
