"""MultipartSink on moto: small objects by put, big ones by parts, nothing visible until close, abort cleans up."""

from __future__ import annotations

import gzip
import os
import time
import tracemalloc

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from exportlake.adapters.s3sink import MIN_PART_SIZE, MultipartSink
from exportlake.convert.parquet import write_parquet
from exportlake.convert.rawarchive import gzip_writer

BUCKET = "lake"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


def _keys(s3) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def _pending(s3) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]


def test_small_object_is_one_put_with_type_and_metadata(s3):
    sink = MultipartSink(s3, BUCKET, "a/b.json", content_type="application/json", metadata={"result-id": "r1"})
    assert sink.writable() and not sink.readable()
    sink.write(b"{}")
    sink.write(memoryview(b"\n"))
    assert sink.tell() == 3 and _keys(s3) == []
    sink.close()
    head = s3.head_object(Bucket=BUCKET, Key="a/b.json")
    assert head["ContentType"] == "application/json" and head["Metadata"] == {"result-id": "r1"}
    assert s3.get_object(Bucket=BUCKET, Key="a/b.json")["Body"].read() == b"{}\n"
    assert sink.size == 3 and sink.etag == head["ETag"] and sink.closed
    sink.close()  # idempotent
    sink.abort()  # after completion: nothing to undo
    assert _keys(s3) == ["a/b.json"]


def test_multipart_parts_and_visibility_only_at_close(s3):
    data = os.urandom(3 * MIN_PART_SIZE + 12345)
    with MultipartSink(s3, BUCKET, "big.bin", part_size=MIN_PART_SIZE, metadata={"k": "v"}) as sink:
        for i in range(0, len(data), 1_000_003):
            sink.write(data[i : i + 1_000_003])
        assert _keys(s3) == [] and _pending(s3) == ["big.bin"]
    assert s3.get_object(Bucket=BUCKET, Key="big.bin")["Body"].read() == data
    assert s3.head_object(Bucket=BUCKET, Key="big.bin")["Metadata"] == {"k": "v"}
    assert sink.etag.strip('"').endswith("-4")  # four parts
    assert sink.size == len(data) and _pending(s3) == []


def test_exception_in_with_block_aborts(s3):
    with pytest.raises(RuntimeError), MultipartSink(s3, BUCKET, "gone.bin", part_size=MIN_PART_SIZE) as sink:
        sink.write(os.urandom(2 * MIN_PART_SIZE + 1))
        raise RuntimeError("boom")
    assert _keys(s3) == [] and _pending(s3) == []
    sink.abort()
    sink.close()  # after abort: a no-op, never a half object
    assert _keys(s3) == []
    with pytest.raises(ValueError):
        sink.write(b"x")


def test_small_object_aborted_never_appears(s3):
    sink = MultipartSink(s3, BUCKET, "tiny.bin")
    sink.write(b"abc")
    sink.abort()
    sink.close()
    assert _keys(s3) == [] and _pending(s3) == []


def test_failed_part_upload_aborts_and_raises(s3):
    class Flaky:
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def upload_part(self, **kw):
            if kw["PartNumber"] == 2:
                raise OSError("network down")
            return self.real.upload_part(**kw)

    sink = MultipartSink(Flaky(s3), BUCKET, "flaky.bin", part_size=MIN_PART_SIZE, max_in_flight=1)
    with pytest.raises(OSError, match="network down"):
        sink.write(os.urandom(3 * MIN_PART_SIZE))
        sink.close()
    sink.abort()
    assert _keys(s3) == [] and _pending(s3) == []


def test_part_size_below_s3_minimum_is_refused(s3):
    with pytest.raises(ValueError):
        MultipartSink(s3, BUCKET, "x", part_size=1024)


def test_parquet_and_gzip_write_through_the_sink(s3):
    table = pa.table({"a": [str(i) for i in range(100_000)]})
    parts = write_parquet(
        table.to_batches(max_chunksize=10_000),
        lambda i: MultipartSink(s3, BUCKET, f"t/part-{i}.parquet", part_size=MIN_PART_SIZE),
    )
    body = s3.get_object(Bucket=BUCKET, Key="t/part-0.parquet")["Body"].read()
    assert parts[0].bytes == len(body)
    assert pq.read_table(pa.BufferReader(body)).equals(table)

    sink = MultipartSink(s3, BUCKET, "raw.json.gz", part_size=MIN_PART_SIZE, content_type="application/gzip")
    raw = gzip_writer(sink)
    payload = os.urandom(6 * 1024 * 1024)
    raw.write(payload)
    raw.close()
    sink.close()
    assert gzip.decompress(s3.get_object(Bucket=BUCKET, Key="raw.json.gz")["Body"].read()) == payload


class _SlowS3:
    """Just enough of S3 for the sink, with uploads slower than the writer: the sink's memory bound is reached."""

    def __init__(self):
        self.parts: dict[int, int] = {}  # part number -> size: uploads in flight finish in any order

    @property
    def sizes(self) -> list[int]:
        return [self.parts[n] for n in sorted(self.parts)]

    def create_multipart_upload(self, **kw):
        return {"UploadId": "u1"}

    def upload_part(self, **kw):
        time.sleep(0.02)
        self.parts[kw["PartNumber"]] = len(kw["Body"])
        return {"ETag": f'"{kw["PartNumber"]}"'}

    def complete_multipart_upload(self, **kw):
        assert [p["PartNumber"] for p in kw["MultipartUpload"]["Parts"]] == list(range(1, len(self.sizes) + 1))
        return {"ETag": '"done-n"'}


@pytest.mark.parametrize("max_in_flight", [1, 2])
def test_memory_is_the_parts_in_flight_plus_the_one_being_filled(max_in_flight):
    client, write = _SlowS3(), 1 << 20
    data = os.urandom(write)
    tracemalloc.start()
    try:
        with MultipartSink(client, BUCKET, "big.bin", part_size=MIN_PART_SIZE, max_in_flight=max_in_flight) as sink:
            for _ in range(10 * MIN_PART_SIZE // write + 1):
                sink.write(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert client.sizes == [MIN_PART_SIZE] * 10 + [write] and sink.size == 10 * MIN_PART_SIZE + write
    # The cut of a part waits for an upload slot: never max_in_flight parts uploading *and* a new copy besides the
    # fill buffer. Allowance: one write beyond a part in the fill buffer, and 1 MiB for everything else.
    assert peak <= (max_in_flight + 1) * MIN_PART_SIZE + write + (1 << 20)
