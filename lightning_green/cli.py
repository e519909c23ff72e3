"""The ``lightning-green`` command: ``sensors``, ``show`` and ``compare``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _sensors(args: argparse.Namespace) -> int:
    from lightning_green.sensors.detect import format_sensor_table

    print(format_sensor_table())
    return 0


def _show(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lightning_green.outputs.footprint import ReportError, read_footprint

    status = 0
    for raw in args.paths:
        path = Path(raw)
        if path.is_dir():
            path = path / "footprint.json"
        try:
            print(read_footprint(path).summary())
        except (OSError, ReportError) as err:
            print(f"lightning-green show: skipped {path}: {err}", file=sys.stderr)
            status = 1
    return status


def _compare(argv: Sequence[str]) -> int:
    from lightning_green.compare.cli import main as compare_main

    return compare_main(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        return _compare(argv[1:])
    parser = argparse.ArgumentParser(
        prog="lightning-green",
        description="Energy and CO2 footprint of Lightning training runs.",
    )
    sub = parser.add_subparsers(dest="verb", required=True)
    sub.add_parser("sensors", help="list the sensors this machine offers, and why others are missing")
    show = sub.add_parser("show", help="summarise footprint.json files (or run folders)")
    show.add_argument("paths", nargs="+")
    sub.add_parser("compare", help="compare runs: lightning-green compare DIR [DIR ...] (see --help)")
    args = parser.parse_args(argv)
    if args.verb == "sensors":
        return _sensors(args)
    return _show(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
