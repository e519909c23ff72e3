"""Fine-tune once (dense) and once with half the attention heads removed, then serve both.

Runs the recipe's own command lines (``python train.py ...``) one after another, as a user
would, then reads every ``footprint.json`` and prints the serving table of examples/serving.md::

    python examples/serving.py                      # ~6 minutes on 2 CPU cores
    python examples/serving.py --out /tmp/serving --num-train 1000 --epochs 1 --rounds 1   # shorter

Each serving variant runs ``--rounds`` times, the variants interleaved, and the table shows the
least-disturbed round (the minimum), the median and the maximum: on a shared machine one run
can be several times slower than the next, and other processes only ever add time (and, with
the whole-machine CPU estimate, power). Everything lands in ``--out`` (default
``serving-example/``): one Hydra run folder per command, ``commands.json`` (wall time and load
of each command) and ``table.md``; ``--table-only`` rebuilds the table from them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: (run folder, overrides) of the serving runs; {dense} / {heads} become the checkpoints.
SERVING = [
    ("serve-fp32", ["ckpt_path={dense}", "precision=32"]),
    ("serve-bf16", ["ckpt_path={dense}", "precision=bf16"]),
    ("serve-int8", ["ckpt_path={dense}", "precision=32", "inference.quantization=dynamic_int8"]),
    ("serve-heads-fp32", ["ckpt_path={heads}", "precision=32"]),
    ("serve-heads-int8", ["ckpt_path={heads}", "precision=32", "inference.quantization=dynamic_int8"]),
]


LOADS: dict[str, float] = {}


def run(out: Path, name: str, overrides: list[str]) -> float:
    """``python train.py OVERRIDES hydra.run.dir=OUT/NAME``; returns its wall time in seconds.

    The machine's 1-minute load average when the command ends is kept in ``LOADS``: on a
    shared machine, other processes' load slows every run and inflates its energy.
    """
    cmd = [sys.executable, str(REPO / "train.py"), *overrides, f"hydra.run.dir={out / name}"]
    print("$ python train.py " + " ".join(overrides), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    wall_s = time.perf_counter() - start
    LOADS[name] = os.getloadavg()[0]
    if proc.returncode != 0:
        sys.exit(f"{name} failed:\n{proc.stderr[-3000:]}")
    print("\n".join(line for line in proc.stdout.splitlines() if line.startswith(("Serving:", "Validation:"))))
    print(f"  ({wall_s:.0f} s, load {LOADS[name]:.1f})\n", flush=True)
    return wall_s


def footprint(out: Path, name: str) -> dict:
    return json.loads((out / name / "footprint.json").read_text())


def tables(out: Path, walls: dict[str, float]) -> str:
    lines = ["Training (each fit measured once; the checkpoint's energy is what break-even pays back):", "",
             "| run | pruning | parameters | val/acc | train time (s) | energy (Wh) | of which estimated | command wall (s) | load |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in ("fit-dense", "fit-heads"):
        data = footprint(out, name)
        pruning = data["extra"]["pruning"]
        lines.append(f"| {name} | {pruning['method']} | {pruning['parameters_after']:,} | {data['metrics'].get('val/acc', 0):.3f} "
                     f"| {data['duration_s']:.0f} | {data['energy_kwh'] * 1000:.3f} "
                     f"| {data['energy_kwh_estimated'] / data['energy_kwh']:.0%} | {walls[name]:.0f} | {LOADS[name]:.1f} |")
    rounds = sorted({int(name.rsplit("-r", 1)[1]) for name in walls if "-r" in name})
    lines += ["", f"Serving the 1,000 demo test reviews, {len(rounds)} rounds per variant: min / median / max "
              "(predict phase only; energy estimated, see notes):", "",
              "| run | model | precision | quantization | state dict (MB) | predict/acc | predict (s) | predictions/s "
              "| J per 1,000 predictions | mJ per token | padding | warm-up (s) | command wall (s) | load |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, _ in SERVING:
        runs = [f"{name}-r{r}" for r in rounds]
        infs = [footprint(out, run)["extra"]["inference"] for run in runs]
        inf = infs[0]
        assert len({i["accuracy"] for i in infs}) == 1  # the same predictions every round

        def spread(key: str, scale: float = 1.0, fmt: str = ".1f") -> str:
            values = [i[key] * scale for i in infs]
            if len(values) == 1:
                return format(values[0], fmt)
            return " / ".join(format(v, fmt) for v in (min(values), statistics.median(values), max(values)))

        model = "heads pruned 50%" if inf["pruning"]["method"] == "heads" else "dense"
        lines.append(f"| {name} | {model} | {inf['precision']} | {inf['quantization']} | {inf['state_dict_mb']:.1f} "
                     f"| {inf['accuracy']:.3f} | {spread('predict_duration_s', fmt='.2f')} "
                     f"| {spread('predictions_per_s', fmt='.0f')} "
                     f"| {spread('energy_j_per_1000_predictions')} | {spread('energy_j_per_token', 1000, '.2f')} "
                     f"| {inf['padding_fraction']:.0%} | {spread('warmup_s', fmt='.2f')} "
                     f"| {statistics.median(walls[r] for r in runs):.0f} | {max(LOADS[r] for r in runs):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("serving-example"))
    parser.add_argument("--num-train", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each serving variant (interleaved)")
    parser.add_argument("--table-only", action="store_true", help="rebuild table.md from an earlier --out")
    args = parser.parse_args()
    out = args.out.resolve()
    if args.table_only:
        saved = json.loads((out / "commands.json").read_text())
        LOADS.update(saved["load"])
        return finish(out, saved["wall_s"])
    train = ["trainer.enable_checkpointing=true", f"data.num_train={args.num_train}", f"trainer.max_epochs={args.epochs}"]
    walls = {"fit-dense": run(out, "fit-dense", [*train, "pruning=none"]),
             "fit-heads": run(out, "fit-heads", [*train, "pruning=heads", "pruning.amount=0.5"])}
    checkpoints = {name: next((out / f"fit-{name}" / "checkpoints").glob("*.ckpt")) for name in ("dense", "heads")}
    for r in range(1, args.rounds + 1):
        for name, overrides in SERVING:
            walls[f"{name}-r{r}"] = run(out, f"{name}-r{r}", ["mode=predict", *(o.format(**checkpoints) for o in overrides)])
    out.joinpath("commands.json").write_text(json.dumps({"wall_s": walls, "load": LOADS}, indent=1))
    finish(out, walls)


def finish(out: Path, walls: dict[str, float]) -> None:
    text = tables(out, walls) + (f"\nTotal: {sum(walls.values()):.0f} s of commands. load: the machine's 1-minute "
                                 "load average when the command ended (the highest over the rounds; 2 cores: above 2, "
                                 "other processes competed).\n")
    (out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
