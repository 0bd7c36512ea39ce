"""The lake store's contract, on S3 (moto) and on the in-memory fake the unit tests use."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from exportlake.adapters.lakestore import S3LakeStore
from tests.fakes import MemoryStore

BUCKET = "lake-bucket"


@pytest.fixture(params=["s3", "memory"])
def store(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return MemoryStore(BUCKET)
    request.getfixturevalue("aws")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return S3LakeStore(s3, BUCKET)


def test_objects_appear_whole_only_when_closed(store: Any) -> None:
    sink = store.open_object("lake/t/p/part-00000.parquet", "application/vnd.apache.parquet")
    sink.write(b"x" * (6 << 20))  # more than one part
    sink.write(b"y")
    assert store.list_keys("lake/") == []
    sink.close()
    assert store.list_keys("lake/") == ["lake/t/p/part-00000.parquet"]
    assert store.get("lake/t/p/part-00000.parquet") == b"x" * (6 << 20) + b"y"


def test_an_aborted_object_never_appears(store: Any) -> None:
    sink = store.open_object("lake/t/p/part-00000.parquet", "application/octet-stream")
    sink.write(b"x" * (6 << 20))
    sink.abort()
    assert store.list_keys("lake/") == [] and store.get("lake/t/p/part-00000.parquet") is None


def test_put_get_list_delete(store: Any) -> None:
    assert store.get("manifests/e/r.json") is None
    store.put("manifests/e/r.json", b"{}", "application/json")
    store.put("lake/t/p/a", b"1", "application/octet-stream")
    store.put("lake/t/q/b", b"2", "application/octet-stream")
    assert store.get("manifests/e/r.json") == b"{}"
    assert store.list_keys("lake/t/p/") == ["lake/t/p/a"]
    store.delete(["lake/t/p/a", "lake/t/missing"])
    assert store.list_keys("lake/") == ["lake/t/q/b"]


def test_open_uploads_left_by_a_killed_writer_are_aborted_by_prefix(store: Any) -> None:
    left = store.open_object("lake/t/p/part-00001.parquet", "application/octet-stream")
    left.write(b"x" * (6 << 20))  # a multipart upload is open now; its writer "dies" (never closes)
    other = store.open_object("lake/t/q/part-00000.parquet", "application/octet-stream")
    other.write(b"x" * (6 << 20))
    assert store.abort_uploads("lake/t/p/") == 1
    assert store.abort_uploads("lake/t/p/") == 0
    assert store.abort_uploads("lake/t/") == 1
    assert store.list_keys("lake/") == []
