"""The ``lightning-green`` command: ``sensors``, ``show``, ``watch`` and ``compare``.

``lightning-green`` alone prints this help and exits 0; ``--version`` prints the version.
Bad input (an unknown verb or option, a missing footprint, a non-positive interval) prints a
message naming it and exits non-zero: 2 for usage errors, 1 when a footprint cannot be read,
3 when ``watch`` times out.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SENSORS_SCHEMA = "lightning-green/sensors/1"
SENSOR_KEYS = ("component", "name", "device", "method", "measured", "scope", "kind", "uncertainty_rel",
               "uncertainty_w", "uncertainty_source", "update_period_s", "device_id")


def _version() -> str:
    from lightning_green import __version__

    return __version__


def sensors_dict(sensors: Sequence[Any], unavailable: Sequence[Any]) -> dict[str, Any]:
    """``lightning-green sensors --json``: every key of SENSOR_KEYS per sensor (None when the
    sensor does not say), and each unusable source with its reason."""
    records = []
    for sensor in sensors:
        record = sensor.describe()
        records.append({key: record.get(key, getattr(sensor, key, None)) for key in SENSOR_KEYS})
    return {"schema": SENSORS_SCHEMA, "version": _version(), "sensors": records,
            "unavailable": [item.describe() for item in unavailable]}


def _sensors(args: argparse.Namespace) -> int:
    if args.json:
        from lightning_green.sensors.detect import probe

        print(json.dumps(sensors_dict(*probe(all_gpus=True)), indent=2))
        return 0
    from lightning_green.sensors.detect import format_sensor_table

    print(format_sensor_table())
    return 0


def _show(args: argparse.Namespace) -> int:
    from lightning_green.outputs.footprint import ReportError, read_footprint
    from lightning_green.outputs.summary import summary_dict, summary_text

    status, records = 0, []
    for raw in args.paths:
        path = Path(raw)
        if path.is_dir():
            path = path / "footprint.json"
        try:
            report = read_footprint(path)
            fields = json.loads(path.read_text(encoding="utf-8"))
        except ReportError as err:  # its message names the file
            print(f"lightning-green show: {err}", file=sys.stderr)
            status = 1
            continue
        except (OSError, ValueError) as err:
            print(f"lightning-green show: {path}: {err}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            records.append({"path": str(path), **summary_dict(report, fields)})
        else:
            if records:
                print()
            records.append(path)
            print(summary_text(report, fields))
    if args.json:
        print(json.dumps(records, indent=2))
    return status


def _watch(args: argparse.Namespace) -> int:
    from lightning_green.watch import watch

    return watch(args.path, interval_s=args.interval, timeout_s=args.timeout, as_json=args.json)


def _positive(name: str) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be a number of seconds > 0, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightning-green",
        description="Energy and CO2 footprint of Lightning training runs.",
        epilog="Run 'lightning-green VERB --help' for a verb's options. Without a verb: this help (exit 0).",
    )
    parser.add_argument("--version", action="version", version=f"lightning-green {_version()}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sensors = sub.add_parser("sensors", help="list the sensors this machine offers, and why others are missing")
    sensors.add_argument("--json", action="store_true", help=f"machine-readable output ({SENSORS_SCHEMA})")
    show = sub.add_parser("show", help="summarise footprint.json files (or run folders)")
    show.add_argument("paths", nargs="+", metavar="PATH", help="footprint.json files or run folders")
    show.add_argument("--json", action="store_true",
                      help="machine-readable output: a JSON list, one object per footprint (lightning-green/show/1)")
    watch = sub.add_parser("watch", help="follow a running footprint: energy, power, emissions as they grow")
    watch.add_argument("path", metavar="DIR", help="the run folder (or its footprint.json)")
    watch.add_argument("--interval", type=_positive("--interval"), default=2.0,
                       help="seconds between reads (default 2)")
    watch.add_argument("--timeout", type=_positive("--timeout"), default=None,
                       help="stop after this many seconds even if the run goes on (exit 3)")
    watch.add_argument("--json", action="store_true", help="one JSON object per snapshot")
    sub.add_parser("compare", help="compare runs: lightning-green compare DIR [DIR ...] (see compare --help)",
                   add_help=False)
    return parser


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] == "compare":
        from lightning_green.compare.cli import main as compare_main

        return compare_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return 0
    return {"sensors": _sensors, "show": _show, "watch": _watch}[args.verb](args)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _dispatch(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:  # `lightning-green show --json ... | head`: the reader left; no traceback
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
