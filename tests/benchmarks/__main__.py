"""Run the CPU benchmarks and print their tables: ``python -m tests.benchmarks [names] [--quick]``.

Names: overhead, hooks, accuracy, scale, throughput (default: all of them, in that order).
``nvml_check`` needs a GPU and runs only on its own: ``python -m tests.benchmarks.nvml_check``.
Each benchmark also runs alone with its own options: ``python -m tests.benchmarks.<name> -h``.
"""

from __future__ import annotations

import argparse
import importlib
import time

from tests.benchmarks._common import machine_line

BENCHMARKS = ("overhead", "hooks", "accuracy", "scale", "throughput")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], metavar="NAME",
                        help=f"benchmarks to run, of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="shrunk runs, to check that everything works")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for throughput (default: all cores; 1 on a busy shared machine)")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    print(f"Machine: {machine_line()}\n", flush=True)
    outputs = []
    for name in names:
        began = time.perf_counter()
        print(f"## {name}", flush=True)
        module = importlib.import_module(f"tests.benchmarks.{name}")
        options = ["--quick"] if args.quick else []
        if name == "throughput" and args.threads:
            options += ["--threads", str(args.threads)]
        outputs.append(module.main(options))
        print(f"({name}: {time.perf_counter() - began:.0f} s)\n", flush=True)
    print("=" * 80 + f"\nAll tables\n\nMachine: {machine_line()}\n")
    print("\n\n".join(outputs))


if __name__ == "__main__":
    main()
