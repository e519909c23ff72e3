"""outputs/files.py: local folders and fsspec URLs, against real files, fsspec's memory
filesystem and a real S3 endpoint on 127.0.0.1 (moto's server mode, s3fs over HTTP)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from lightning_green.outputs import files
from lightning_green.outputs.footprint import FootprintReport, append_emissions_csv, read_footprint, write_footprint
from tests.helpers.s3_server import boto3_client, moto_s3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _report(run_id: str = "r1", energy_kwh: float = 0.25) -> FootprintReport:
    return FootprintReport(run_id=run_id, status="completed", duration_s=12.5, energy_kwh=energy_kwh,
                           energy_kwh_by_component={"gpu": energy_kwh}, energy_kwh_by_host={"node-a": energy_kwh},
                           started_at="2026-11-30T10:00:00+00:00", ended_at="2026-11-30T10:00:12.5+00:00",
                           metrics={"val/acc": 0.75}).with_carbon(1.2, 50.0)


def _probes(names) -> list[str]:
    return [n for n in names if files.PROBE_PREFIX in n]


# ---- local folders ---------------------------------------------------------------------------

def test_local_folder_is_created_normalised_and_left_without_probe(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got = files.check_output_dir("runs/a/../b")
    assert got == str(tmp_path / "runs" / "b") and os.path.isdir(got)
    assert os.listdir(got) == []
    assert files.check_output_dir(f"file://{tmp_path}/c") == str(tmp_path / "c")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert files.check_output_dir("~/runs") == str(tmp_path / "home" / "runs")
    assert files.check_output_dir(tmp_path / "p") == str(tmp_path / "p")  # os.PathLike


@pytest.mark.parametrize("value", [None, 3, True, "", "  ", b"/tmp/x"])
def test_not_a_path_names_output_dir_and_the_value(value):
    with pytest.raises(ValueError, match=r"output_dir must be") as err:
        files.check_output_dir(value)
    assert repr(value) in str(err.value)


def test_existing_file_is_refused(tmp_path):
    target = tmp_path / "footprint.json"
    target.write_text("{}")
    with pytest.raises(ValueError, match=r"output_dir='.*footprint\.json' is an existing file, not a folder"):
        files.check_output_dir(target)
    with pytest.raises(ValueError, match=r"output_dir='.*footprint\.json/run' cannot be written"):
        files.check_output_dir(target / "run")  # a file on the way
    with pytest.raises(ValueError, match=r"^energy\.output_dir="):
        files.check_output_dir(target, name="energy.output_dir")


def test_read_only_place_is_refused(tmp_path):
    """A read-only tmpfs in a private mount namespace (root ignores permission bits)."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) to make a read-only mount")
    mnt = tmp_path / "ro"
    mnt.mkdir()
    script = tmp_path / "check.py"
    script.write_text(textwrap.dedent(f"""
        from lightning_green.outputs.files import check_output_dir
        try:
            check_output_dir({str(mnt / 'run')!r})
        except ValueError as err:
            print("ERR", err)
    """))
    proc = subprocess.run(
        ["unshare", "--mount", "sh", "-c",
         f"mount -t tmpfs -o ro tmpfs {mnt} || exit 77; exec {sys.executable} {script}"],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
    if proc.returncode == 77 or (proc.returncode != 0 and proc.stderr.startswith("unshare:")):
        pytest.skip(f"mount namespaces refused here: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"ERR output_dir='{mnt / 'run'}' cannot be written: Read-only file system"


def test_local_writes_are_atomic_replace(tmp_path, monkeypatch):
    target = tmp_path / "out" / "footprint.json"
    assert files.write_text(target, "old") == target  # parents created, a Path back
    assert files.read_bytes(target) == b"old" and files.exists(target) and files.is_dir(tmp_path / "out")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        files.write_text(target, "new content that never lands")
    assert target.read_text() == "old"  # readers still see the whole old file
    assert os.listdir(target.parent) == ["footprint.json"]  # no temporary file left


def test_join():
    assert files.join("s3://bucket/runs/", "footprint.json") == "s3://bucket/runs/footprint.json"
    assert files.join("memory://x", "/a.csv") == "memory://x/a.csv"
    assert files.join("/tmp/runs", "footprint.json") == os.path.join("/tmp/runs", "footprint.json")
    assert files.is_remote("s3://b/k") and files.is_remote("memory://x")
    assert not files.is_remote("/tmp/x") and not files.is_remote("file:///tmp/x")


def test_importing_files_loads_no_fsspec_or_lightning():
    code = ("import sys, lightning_green.outputs.files as f; f.check_output_dir(sys.argv[1]); "
            "print(sorted(m for m in ('fsspec', 'lightning', 'torch') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, "/tmp/lightning-green-import-check"], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert proc.stdout.strip() == "[]", proc.stderr


# ---- URLs without their package, unknown protocols --------------------------------------------

def test_url_whose_filesystem_package_is_missing_names_the_package(monkeypatch):
    from fsspec.registry import known_implementations

    monkeypatch.setitem(known_implementations, "lgtestfs", {
        "class": "lightning_green_no_such_fs_pkg.FileSystem", "err": "Install lightning_green_no_such_fs_pkg"})
    with pytest.raises(ValueError) as err:
        files.check_output_dir("lgtestfs://bucket/run")
    assert str(err.value) == ("output_dir='lgtestfs://bucket/run' needs the fsspec filesystem for lgtestfs://, "
                              "which is not installed: pip install lightning_green_no_such_fs_pkg")
    with pytest.raises(ValueError, match="pip install lightning_green_no_such_fs_pkg"):
        files.write_text("simplecache::lgtestfs://bucket/run/x.json", "{}")
    assert files.missing_package("lgtestfs://b") == ("lgtestfs", "lightning_green_no_such_fs_pkg")
    assert files.missing_package("memory://b") is None


def test_gcs_without_gcsfs_says_pip_install_gcsfs():
    import importlib.util

    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    with pytest.raises(ValueError, match=r"gs://bucket/run.*not installed: pip install gcsfs$"):
        files.check_output_dir("gs://bucket/run")


def test_unknown_protocol():
    with pytest.raises(ValueError, match=r"output_dir='nosuchproto://x': no fsspec filesystem .*Protocol not known"):
        files.check_output_dir("nosuchproto://x")


# ---- memory:// -------------------------------------------------------------------------------

def test_memory_url_footprint_and_emissions_round_trip():
    import fsspec

    base = files.check_output_dir("memory://lightning-green-test/run-1/")
    assert base == "memory://lightning-green-test/run-1"
    fs = fsspec.filesystem("memory")
    assert _probes(fs.find("/lightning-green-test")) == []
    report = _report()
    assert write_footprint(report, base) == "memory://lightning-green-test/run-1/footprint.json"
    assert read_footprint(base) == report  # the folder
    assert read_footprint(files.join(base, "footprint.json")) == report
    append_emissions_csv(report, base)
    append_emissions_csv(_report("r2", 0.5), base)
    rows = list(csv.DictReader(io.StringIO(files.read_bytes(files.join(base, "emissions.csv")).decode())))
    assert [r["run_id"] for r in rows] == ["r1", "r2"]
    assert float(rows[1]["energy_consumed"]) == pytest.approx(0.5 * 1.2)


# ---- a real S3 endpoint on 127.0.0.1 ---------------------------------------------------------

@pytest.fixture
def s3(monkeypatch, tmp_path):
    with moto_s3(monkeypatch, tmp_path) as endpoint:
        yield endpoint


def _keys(client, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_s3_check_creates_the_bucket_and_leaves_no_probe(s3):
    client = boto3_client(s3)
    assert files.check_output_dir("s3://lg-runs/team/run-1/") == "s3://lg-runs/team/run-1"
    assert "lg-runs" in [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert _keys(client, "lg-runs") == []


def test_s3_footprint_emissions_land_as_objects(s3):
    client = boto3_client(s3)
    base = files.check_output_dir("s3://lg-runs/run-2")
    report = _report()
    assert write_footprint(report, base) == "s3://lg-runs/run-2/footprint.json"
    append_emissions_csv(report, base)
    append_emissions_csv(_report("r2", 0.5), base)
    assert _keys(client, "lg-runs") == ["run-2/emissions.csv", "run-2/footprint.json"]
    # read back without fsspec: what is on the endpoint is the report, whole
    body = client.get_object(Bucket="lg-runs", Key="run-2/footprint.json")["Body"].read()
    assert FootprintReport.from_dict(json.loads(body)) == report
    rows = list(csv.DictReader(io.StringIO(
        client.get_object(Bucket="lg-runs", Key="run-2/emissions.csv")["Body"].read().decode())))
    assert [r["run_id"] for r in rows] == ["r1", "r2"]
    # and through fsspec, a folder URL and a file URL
    assert read_footprint("s3://lg-runs/run-2") == report
    assert read_footprint("s3://lg-runs/run-2/footprint.json") == report
    # an overwrite is one new object, read back whole
    write_footprint(_report("r1", 1.5), base)
    assert read_footprint(base).energy_kwh == 1.5
    assert files.exists("s3://lg-runs/run-2/footprint.json") and not files.exists("s3://lg-runs/run-2/nothing.json")
    with pytest.raises(FileNotFoundError):
        files.read_bytes("s3://lg-runs/run-2/nothing.json")


def test_s3_write_into_a_missing_bucket_creates_it(s3):
    assert files.write_text("s3://lg-new-bucket/run/x.json", "{}") == "s3://lg-new-bucket/run/x.json"
    body = boto3_client(s3).get_object(Bucket="lg-new-bucket", Key="run/x.json")["Body"].read()
    assert body == b"{}"


def test_s3_object_in_place_of_the_folder_is_refused(s3):
    client = boto3_client(s3)
    client.create_bucket(Bucket="lg-runs")
    client.put_object(Bucket="lg-runs", Key="run-3", Body=b"not a folder")
    with pytest.raises(ValueError, match=r"output_dir='s3://lg-runs/run-3' is an existing file \(object\), not a folder"):
        files.check_output_dir("s3://lg-runs/run-3")


def test_s3_unwritable_endpoint_fails_at_check_time(s3, monkeypatch):
    """A bucket name S3 refuses (the same path as missing rights): a ValueError naming output_dir."""
    with pytest.raises(ValueError, match=r"output_dir='s3://x/run' cannot be written: \w+"):
        files.check_output_dir("s3://x/run")  # bucket names need 3-63 characters
