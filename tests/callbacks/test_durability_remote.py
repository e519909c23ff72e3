"""Remote output folders end to end: a real fit writes to ``s3://`` on a real S3 endpoint
(moto's server mode on 127.0.0.1, s3fs over HTTP; tests/helpers/s3_server.py), read back
with boto3, not through fsspec. A URL whose filesystem is not installed fails when the
callback is built, naming the package to install."""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
import subprocess
import sys
import time

import pytest

from lightning_green import EnergyCallback
from lightning_green.outputs import files
from lightning_green.sensors import ConstantPowerSensor
from tests.helpers.models import SlowBoringModel
from tests.helpers.reliability_kit import AtStep, make_trainer
from tests.helpers.s3_server import boto3_client, moto_s3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POWER_W = 40.0
BUCKET = "lg-durable"


@pytest.fixture
def s3(monkeypatch, tmp_path):
    with moto_s3(monkeypatch, tmp_path) as endpoint:
        yield endpoint


def _keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def _json(client, key: str) -> dict:
    return json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _rows(client, key: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(client.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode())))


def test_a_fit_into_s3_leaves_footprint_emissions_steps_state_and_snapshots_there(s3, tmp_path, no_thread_leak):
    client = boto3_client(s3)
    url = f"s3://{BUCKET}/team/run-1"
    cb = EnergyCallback(sensors=[ConstantPowerSensor(POWER_W, name="fixed", component="gpu", measured=True)],
                        output_dir=url, sampling_interval_s=0.02, carbon_intensity_g_per_kwh=100.0,
                        snapshot_every_s=0.3)
    seen: list[dict] = []

    def look(step: int) -> None:  # while training runs: what is on the endpoint now
        if step % 5 == 0:
            keys = _keys(client)
            if "team/run-1/footprint.json" in keys:
                seen.append({"at": time.time(), "keys": keys, "footprint": _json(client, "team/run-1/footprint.json")})

    trainer = make_trainer(tmp_path, [cb, AtStep(look)], max_epochs=4, limit_train_batches=10)
    trainer.fit(SlowBoringModel(step_sleep_s=0.05))

    # snapshots reached S3 while the fit ran: footprint.json (running) and the state file
    running = [s for s in seen if s["footprint"]["status"] == "running"]
    assert len({s["footprint"]["snapshot_at"] for s in running}) >= 2, [s["footprint"]["status"] for s in seen]
    run_id = cb.report.run_id
    state_key = f"team/run-1/.lightning-green/{run_id}/rank-0.json"
    assert all(state_key in s["keys"] for s in running)
    energies = [s["footprint"]["energy_kwh"] for s in running]
    assert energies == sorted(energies) and energies[0] > 0  # the snapshots grow
    assert "team/run-1/steps.csv" not in running[0]["keys"]  # S3 has no append: written once, at the end

    # at the end: every file, each read back whole with boto3
    assert _keys(client) == sorted(["team/run-1/footprint.json", "team/run-1/emissions.csv",
                                    "team/run-1/steps.csv", state_key])
    report = _json(client, "team/run-1/footprint.json")
    assert report["status"] == "completed" and report["run_id"] == run_id and report["steps"] == 40
    assert report["energy_kwh"] == pytest.approx(cb.report.energy_kwh)
    assert report["energy_kwh"] * 3.6e6 == pytest.approx(POWER_W * report["duration_s"], rel=0.05)
    emissions = _rows(client, "team/run-1/emissions.csv")
    assert len(emissions) == 1 and float(emissions[0]["energy_consumed"]) == pytest.approx(report["facility_energy_kwh"])
    steps = _rows(client, "team/run-1/steps.csv")
    assert [int(r["step"]) for r in steps] == list(range(40))
    assert sum(float(r["energy_j"]) for r in steps) <= report["energy_kwh"] * 3.6e6
    state = _json(client, state_key)
    assert state["status"] == "completed" and state["totals"]["energy_j"] == pytest.approx(report["energy_kwh"] * 3.6e6)
    assert cb.output_dir == url

    # The round trip, for the README: a footprint written (one PUT) and read back (one GET).
    body = json.dumps(report).encode()
    puts, gets = [], []
    for i in range(10):
        t0 = time.perf_counter()
        files.write_bytes(f"{url}/probe-{i}.json", body)
        t1 = time.perf_counter()
        assert files.read_bytes(f"{url}/probe-{i}.json") == body
        puts.append(t1 - t0)
        gets.append(time.perf_counter() - t1)
    lags = [s["at"] - _unix(s["footprint"]["snapshot_at"]) for s in running]
    print(f"S3 (moto on 127.0.0.1): footprint.json of {len(body)} B, PUT median {statistics.median(puts) * 1e3:.1f} ms, "
          f"GET median {statistics.median(gets) * 1e3:.1f} ms; snapshot mark -> seen with boto3 by the training "
          f"thread: median {statistics.median(lags):.2f} s, max {max(lags):.2f} s (interval 0.3 s)")


def _unix(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso).timestamp()


def test_a_url_whose_filesystem_is_not_installed_fails_when_the_callback_is_built():
    """s3fs hidden from a fresh interpreter (``sys.modules['s3fs'] = None``: import finds nothing)."""
    code = ("import sys; sys.modules['s3fs'] = None\n"
            "from lightning_green import EnergyCallback\n"
            "try:\n"
            "    EnergyCallback(output_dir='s3://bucket/run')\n"
            "except ValueError as err:\n"
            "    print('ERR', err)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.stdout.strip() == ("ERR output_dir='s3://bucket/run' needs the fsspec filesystem for s3://, "
                                   "which is not installed: pip install s3fs"), proc.stderr[-2000:]
