"""The latest-result pointer under the crash contract, its compare-and-swap on S3 and in memory, and field names
that collide with a partition key or ``bad_values`` (they land renamed, the table intact)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from exportlake.adapters.lakestore import S3LakeStore
from exportlake.domain import latest
from exportlake.domain.models import CopyJob
from exportlake.domain.schemas import column_for_field
from tests.fakes import MemoryStore
from tests.unit.test_copying import JOB, RID, Crash, World

KEY = "latest/win_info.win-info.json"


def pointer_of(world: World) -> dict[str, str]:
    return dict(json.loads(world.store.objects[KEY]))


def writes(world: World) -> int:
    return sum(1 for op, key in world.store.log if op == "put_if" and key == KEY)


def test_a_copy_points_the_export_at_its_result() -> None:
    world = World()
    world.service().copy(JOB)
    assert pointer_of(world) == {
        "table_name": "win_info",
        "export_name": "win-info",
        "created_date": "2026-11-20",
        "result_id": RID,
        "created_at": "2026-11-20T09:30:00+00:00",
    }


@pytest.mark.parametrize("kill_at", ["store.get_versioned", "store.put_if", "ledger.mark_copied"])
def test_a_kill_around_the_pointer_converges_on_the_next_attempt(kill_at: str) -> None:
    world = World()
    with pytest.raises(Crash):
        world.service(kill_at=kill_at).copy(JOB)
    if kill_at != "ledger.mark_copied":
        assert KEY not in world.store.objects  # the partition exists, the pointer not yet: the ledger says not copied
    world.later(120)  # the dead copier's lease lapses
    world.service().copy(JOB)
    world.assert_exact()
    assert pointer_of(world)["result_id"] == RID
    assert writes(world) == 1  # written once in all: an equal pointer is never rewritten


def test_an_older_result_copied_late_never_moves_the_pointer_back() -> None:
    world = World()
    newer = CopyJob("win-info", "b" * 25, JOB.created_at + timedelta(minutes=1), JOB.expires_at)
    world.gateway.documents["b" * 25] = world.gateway.documents[RID]
    world.service().copy(newer)
    world.service().copy(JOB)
    assert pointer_of(world)["result_id"] == "b" * 25
    assert writes(world) == 1


@pytest.fixture(params=["memory", "s3"])
def store(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return MemoryStore()
    request.getfixturevalue("aws")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lake-bucket")
    return S3LakeStore(s3, "lake-bucket")


def test_put_if_is_a_compare_and_swap(store: Any) -> None:
    assert store.get_versioned("latest/x.json") is None
    first = store.put_if("latest/x.json", b"1", "application/json", etag=None)
    assert first is not None
    assert store.put_if("latest/x.json", b"2", "application/json", etag=None) is None  # exists already
    body, etag = store.get_versioned("latest/x.json")
    assert (body, etag) == (b"1", first)  # the ETag a write returns is the one a read sees
    assert store.put_if("latest/x.json", b"3", "application/json", etag=etag) is not None
    assert store.put_if("latest/x.json", b"4", "application/json", etag=etag) is None  # changed since read
    assert store.get_versioned("latest/x.json")[0] == b"3"


def test_a_racing_writer_is_read_again_and_the_newest_wins(store: Any) -> None:
    base = datetime(2026, 3, 1, 10, tzinfo=UTC)
    older = latest.Pointer("win_info", "win-info", "a" * 25, base)
    newer = latest.Pointer("win_info", "win-info", "b" * 25, base + timedelta(seconds=1))

    class Racing:
        """The other copier writes the newer pointer between this one's read and its write."""

        def __init__(self) -> None:
            self.raced = False

        def get_versioned(self, key: str) -> tuple[bytes, str] | None:
            return store.get_versioned(key)  # type: ignore[no-any-return]

        def get(self, key: str) -> bytes | None:
            return store.get(key)  # type: ignore[no-any-return]

        def put_if(self, key: str, body: bytes, content_type: str, *, etag: str | None) -> str | None:
            if not self.raced:
                self.raced = True
                latest.advance(store, newer)
            return store.put_if(key, body, content_type, etag=etag)  # type: ignore[no-any-return]

    assert latest.advance(Racing(), older) is False  # lost the race, read again, found a newer one
    assert latest.Pointer.from_json(store.get_versioned(newer.key)[0]) == newer


def test_a_warm_copier_moves_its_pointer_with_one_request_per_result() -> None:
    """Consecutive results of one export in one copier: the known ETag saves the read; older ones cost nothing."""
    store = MemoryStore()
    known: latest.Known = {}
    base = datetime(2026, 3, 1, 10, tzinfo=UTC)
    pointers = [latest.Pointer("win_info", "win-info", f"{n:025d}", base + timedelta(hours=n)) for n in range(5)]
    latest.advance(store, pointers[0], known)  # cold: a read, a write
    before = len(store.log)
    for pointer in pointers[1:]:
        assert latest.advance(store, pointer, known) is True
    assert store.log[before:] == [("put_if", KEY)] * 4  # one conditional write each, no read
    assert latest.advance(store, pointers[2], known) is False and len(store.log) == before + 4  # older: nothing
    # Another copier moved it meanwhile: the known ETag fails, one read, and the newest still wins.
    latest.advance(store, latest.Pointer("win_info", "win-info", "z" * 25, base + timedelta(days=1)))
    late = latest.Pointer("win_info", "win-info", "y" * 25, base + timedelta(hours=10))
    assert latest.advance(store, late, known) is False
    assert latest.Pointer.from_json(store.objects[KEY]).result_id == "z" * 25


def collision_document() -> bytes:
    records = [
        {"userid": f"u{i}", "stackid": "s", "haswon": "1", "participation_date": "2026-11-19 10:00:00",
         "export_name": "theirs", "bad_values": "7", "field_result_id": "x", "result_id": "r"}
        for i in range(3)
    ]  # fmt: skip
    return json.dumps({"win_info": records}).encode()


def test_fields_named_like_partition_keys_or_bad_values_land_renamed() -> None:
    assert column_for_field("export_name") == "field_export_name"
    assert column_for_field("userid") == "userid"
    assert column_for_field("result_id", ["result_id", "field_result_id"]) == "field_field_result_id"
    world = World()
    world.gateway.documents[RID] = collision_document()
    outcome = world.service().copy(JOB)
    assert outcome is not None and outcome.rows == 3
    renamed = ["field_export_name", "field_bad_values", "field_result_id", "field_field_result_id"]
    assert world.catalog.tables["win_info"][-4:] == renamed
    (part,) = world.store.list_keys("lake/")
    table = pq.read_table(io.BytesIO(world.store.objects[part]))
    assert set(renamed) <= set(table.column_names)
    assert not {"export_name", "created_date", "result_id", "bad_values"} & set(table.column_names)
    assert table.column("field_export_name").to_pylist() == ["theirs"] * 3
    (changed,) = world.notifier.of("schema.changed")
    assert changed["added_fields"] == renamed  # announced under the names they land as


def test_a_document_key_cannot_take_the_pointer_tables_name() -> None:
    from exportlake.domain.errors import ValidationError
    from exportlake.domain.naming import validate_table_name

    with pytest.raises(ValidationError, match="latest-result table"):
        validate_table_name("latest_results")
    assert validate_table_name("latest_results_v2") == "latest_results_v2"
