"""s3:// inputs against a real S3-compatible server (moto's) on loopback: globs and prefixes,
CSV and Parquet, events exactly once, unchanged objects skipped, a missing bucket reported."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from .conftest import Nights
from .helpers import assert_received_once, canonical, expected, requests_made

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Bucket:
    client: Any
    bucket: str

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Bucket:
    """An empty bucket, named after the test, on the loopback server; AWS_* set to reach it."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    bucket = Bucket(boto3.client("s3"), request.node.name.replace("_", "-")[:50].strip("-"))
    bucket.client.create_bucket(Bucket=bucket.bucket)
    return bucket


def _csv(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    return buf.getvalue()


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_s3_glob_then_prefix_then_nothing_new(night: Nights, s3: Bucket) -> None:
    jan1 = canonical(20, seed=81, prefix="s3-a")
    jan2 = canonical(15, seed=82, prefix="s3-b")
    jan3 = canonical(12, seed=83, prefix="s3-c")
    notes = canonical(8, seed=84, prefix="s3-d")
    s3.put("plays/2026-01-01.csv", _csv(jan1))
    s3.put("plays/2026-01-02.csv", _csv(jan2))
    s3.put("plays/2026-01-03.parquet", _parquet(jan3))
    s3.put("plays/extra/notes.csv", _csv(notes))

    # A glob: only the two CSV files it names.
    r = night.run(inputs=f"s3://{s3.bucket}/plays/2026-*.csv")
    assert r.code == 0, r.err
    assert_received_once(night.sim, expected(jan1, jan2))
    assert night.summary()["files_read"] == 2
    night.sim.client.reset()

    # The whole prefix (recursively): the Parquet object and the one in a sub-folder are new; the
    # CSV objects imported by the glob run are the same objects, skipped unread.
    r = night.run(inputs=f"s3://{s3.bucket}/plays/")
    assert r.code == 0, r.err
    assert_received_once(night.sim, expected(jan3, notes))
    s = night.summary()
    assert (s["files_read"], s["files_skipped_unchanged"]) == (2, 2)
    night.sim.client.reset()

    # Nothing new: nothing sent, every object skipped.
    r = night.run(inputs=f"s3://{s3.bucket}/plays/")
    assert r.code == 0, r.err
    assert requests_made(night.sim) == 0
    s = night.summary()
    assert (s["files_read"], s["files_skipped_unchanged"]) == (0, 4)

    # An object replaced by a longer one (rows appended) is read again: only its new rows go.
    more = canonical(6, seed=85, prefix="s3-a-more")
    s3.put("plays/2026-01-01.csv", _csv(jan1) + _csv(more).split(b"\n", 1)[1])
    r = night.run(inputs=f"s3://{s3.bucket}/plays/")
    assert r.code == 0, r.err
    assert_received_once(night.sim, expected(more))
    assert night.summary()["files_read"] == 1


def test_s3_glob_star_stays_within_one_folder_like_local_globs(night: Nights, s3: Bucket) -> None:
    jan1 = canonical(5, seed=86, prefix="s3-a")
    old = canonical(5, seed=87, prefix="s3-old")
    s3.put("plays/2026-01-01.csv", _csv(jan1))
    s3.put("plays/2026-archive/old.csv", _csv(old))
    r = night.run(inputs=f"s3://{s3.bucket}/plays/2026-*.csv")
    assert r.code == 0, r.err
    assert_received_once(night.sim, expected(jan1))


def test_s3_missing_bucket_is_a_clear_input_error(night: Nights, s3: Bucket) -> None:
    r = night.run(inputs="s3://no-such-bucket-here/plays/2026-*.csv")
    assert r.code == 2
    assert "s3://no-such-bucket-here/plays/2026-*.csv: cannot list it" in r.err
    assert "bucket does not exist" in r.err
    assert "hint:" in r.err
    assert requests_made(night.sim) == 0


def test_s3_prefix_with_no_object_is_an_input_error(night: Nights, s3: Bucket) -> None:
    r = night.run(inputs=f"s3://{s3.bucket}/nothing-here/")
    assert r.code == 2
    assert f"s3://{s3.bucket}/nothing-here/" in r.err
    assert requests_made(night.sim) == 0
