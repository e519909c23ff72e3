"""A real S3 endpoint on 127.0.0.1: moto's server mode, talked to by s3fs over HTTP.

No network: the server listens on the loopback address only, and the credentials are dummy
values set in the environment for the test (botocore reads ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

#: What botocore / s3fs need to talk to the local server, and nothing from the real machine.
_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL_S3", "FSSPEC_S3")


@contextlib.contextmanager
def moto_s3(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[str]:
    """Start moto's S3 server on 127.0.0.1 (a free port), point botocore at it; yield its URL."""
    pytest.importorskip("s3fs", reason="s3fs is in the `test` extra: pip install -e '.[test]'")
    server_mod = pytest.importorskip("moto.server", reason="moto[server] is in the `test` extra")
    import s3fs

    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key in _CLEARED:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "lightning-green-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "lightning-green-test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    s3fs.S3FileSystem.clear_instance_cache()  # an instance from another test knows another port
    try:
        yield endpoint
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


def boto3_client(endpoint: str):
    """A plain boto3 client on the same server: checks what s3fs wrote without going through fsspec."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="lightning-green-test", aws_secret_access_key="lightning-green-test")
