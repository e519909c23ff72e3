"""``lightning-green compare``: load runs, compare them, write the tables and plots.

Example::

    from lightning_green.compare import run_comparison

    run_comparison(["multirun/2025-01-01/12-00-00"], metric="val/acc", fmt="svg")

Or from a shell: ``lightning-green compare multirun/2025-01-01/12-00-00 --by emissions``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from lightning_green.compare.footprints import load_runs
from lightning_green.compare.pareto import METRIC_MODES
from lightning_green.compare.runs import BYS, Comparison, compare
from lightning_green.compare.table import CSV_NAME, MD_NAME, write_table
from lightning_green.compare.whatif import DEFAULT_REGIONS, parse_regions

__all__ = ["default_out_dir", "main", "run_comparison"]

PROG = "lightning-green compare"


def default_out_dir(paths: Sequence[str | os.PathLike]) -> Path:
    """Beside the runs: the folder given, or the deepest folder holding every path given."""
    folders = [Path(p).resolve() if Path(p).is_dir() else Path(p).resolve().parent for p in paths]
    return Path(os.path.commonpath(folders)) if folders else Path.cwd()


def run_comparison(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike | None = None, *,
                   metric: str | None = None, by: str = "energy", baseline: str | None = None,
                   metric_mode: str = "auto", plots: bool = True, fmt: str = "png", dpi: int = 150,
                   group_by: Sequence[str] | None = None, regions: Sequence[str] = DEFAULT_REGIONS,
                   serving_metric: str | None = None, pairs: Mapping[str, str] | None = None) -> Comparison | None:
    """Load, compare and write everything; None (with a message on stderr) when no run is found.

    Raises:
        ValueError: A bad option (baseline, group_by, region, pair, format, dpi), named.
    """
    from lightning_green.compare.plots import write_plots

    runs = load_runs(paths)
    if not runs:
        shown = " ".join(str(p) for p in paths)
        print(f"{PROG}: no readable footprint.json under {shown}", file=sys.stderr)
        return None
    comparison = compare(runs, baseline=baseline, metric=metric, by=by, metric_mode=metric_mode, group_by=group_by,
                         regions=regions, serving_metric=serving_metric, pairs=pairs)
    out = Path(out_dir) if out_dir is not None else default_out_dir(paths)
    written = write_plots(comparison, out, dpi=dpi, fmt=fmt) if plots else []
    write_table(comparison, out, plots=written)
    return comparison


def _pairs(items: Sequence[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        serving, sep, training = item.partition("=")
        if not sep or not serving or not training:
            raise ValueError(f"--pair must be SERVING=TRAINING (run names as in the table), got {item!r}")
        pairs[serving] = training
    return pairs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=(
        "Compare the footprints (footprint.json) found under the given folders: a table with "
        "deltas against a baseline (per sample when runs did different work), repeats pooled, "
        "a Pareto front, what-if regions, serving energy and fairness notes."))
    parser.add_argument("paths", nargs="+", help="run folders, sweep folders or footprint.json files")
    parser.add_argument("--out", help="output folder (default: beside the runs)")
    parser.add_argument("--metric", help="main validation metric (default: first of val/acc, val_acc, val/f1, ...)")
    parser.add_argument("--metric-mode", choices=METRIC_MODES, default="auto",
                        help="is the metric maximised or minimised (auto: loss-like names are minimised)")
    parser.add_argument("--by", choices=BYS, default="energy", help="cost axis of the Pareto front")
    parser.add_argument("--baseline", help="baseline run: folder name or overrides, e.g. 'precision=32 pruning=none'")
    parser.add_argument("--group-by", action="append", metavar="KEY",
                        help="override key(s) that define a configuration (repeatable or comma-separated); "
                             "default: every key that differs except seed, so seed repeats are pooled")
    parser.add_argument("--regions", default=",".join(DEFAULT_REGIONS),
                        help="what-if grids: ISO-3 codes or provider:region, comma-separated, '' for none "
                             f"(default {','.join(DEFAULT_REGIONS)})")
    parser.add_argument("--serving-metric", help="metric of the serving table (default: predict/acc and kin)")
    parser.add_argument("--pair", action="append", default=[], metavar="SERVING=TRAINING",
                        help="pair a serving run with the training run of its model (break-even); repeatable")
    parser.add_argument("--format", choices=("png", "svg"), default="png", help="plot file format (default png)")
    parser.add_argument("--dpi", type=int, default=150, help="plot resolution, 72-1200 (default 150)")
    parser.add_argument("--no-plots", action="store_true", help="write only the tables")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``lightning-green compare DIR [DIR ...]``: print the Markdown; write CSV, Markdown, plots.

    Exit status: 0 done, 1 no footprint found, 2 bad arguments (argparse's usage errors too).
    """
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    out = Path(args.out) if args.out else default_out_dir(args.paths)
    group_by = [k.strip() for item in args.group_by for k in item.split(",") if k.strip()] if args.group_by else None
    try:
        comparison = run_comparison(
            args.paths, out, metric=args.metric, by=args.by, baseline=args.baseline, metric_mode=args.metric_mode,
            plots=not args.no_plots, fmt=args.format, dpi=args.dpi, group_by=group_by,
            regions=parse_regions(args.regions), serving_metric=args.serving_metric, pairs=_pairs(args.pair))
    except ValueError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    if comparison is None:
        return 1
    print((out / MD_NAME).read_text(), end="")
    print(f"\nWritten to {out}: {CSV_NAME}, {MD_NAME}" + ("" if args.no_plots else " and the plots"))
    return 0
