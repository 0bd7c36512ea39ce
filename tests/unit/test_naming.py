"""Nothing from the API becomes a key, a name or SQL without validation."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from exportlake.domain.errors import ValidationError
from exportlake.domain.models import CopyJob, Export, ResultRef
from exportlake.domain.naming import (
    manifest_key,
    parse_timestamp,
    part_key,
    partition_prefix,
    raw_key,
    validate_column_name,
    validate_export_name,
    validate_result_id,
    validate_table_name,
)
from exportlake.domain.schemas import EXPORT_TYPES, MANIFESTS_PREFIX, RAW_PREFIX, TABLES_PREFIX

RID = "jlitk6w3fzow15k9bvrpu4p62"


@pytest.mark.parametrize("bad", ["", "../etc", "win info", "Win-Info", "a/b", "x" * 200, None, 5, "win-info\n"])
def test_export_name_rejects_unsafe(bad: object) -> None:
    with pytest.raises(ValidationError):
        validate_export_name(bad)


@pytest.mark.parametrize("bad", ["", "../x", "a b", "id'; --", "x" * 65, None])
def test_result_id_rejects_unsafe(bad: object) -> None:
    with pytest.raises(ValidationError):
        validate_result_id(bad)


@pytest.mark.parametrize("bad", ["Win_Info", "1abc", "a-b", 'x"; drop table', "", None])
def test_table_and_column_names(bad: object) -> None:
    with pytest.raises(ValidationError):
        validate_table_name(bad)
    with pytest.raises(ValidationError):
        validate_column_name(bad)


def test_registry_names_are_valid() -> None:
    assert len(EXPORT_TYPES) == 10
    for t in EXPORT_TYPES.values():
        assert validate_table_name(t.table_name) == t.key
        assert all(validate_column_name(c) == c for c in t.columns)


def test_layout_keeps_raw_and_manifests_outside_tables() -> None:
    prefix = partition_prefix("win_info", "win-info", "2024-06-20", RID)
    assert prefix == f"{TABLES_PREFIX}/win_info/export_name=win-info/created_date=2024-06-20/result_id={RID}/"
    assert part_key(prefix, 3) == prefix + "part-00003.parquet"
    assert raw_key("win-info", RID) == f"{RAW_PREFIX}/win-info/{RID}.json.gz"
    assert manifest_key("win-info", RID) == f"{MANIFESTS_PREFIX}/win-info/{RID}.json"
    assert not raw_key("win-info", RID).startswith(TABLES_PREFIX + "/")


def test_timestamps() -> None:
    assert parse_timestamp("2024-06-20T09:35:57+00:00") == datetime(2024, 6, 20, 9, 35, 57, tzinfo=UTC)
    assert parse_timestamp("2024-06-20T11:35:57+02:00").astimezone(UTC).hour == 9
    assert parse_timestamp("2024-06-20 09:35:57").tzinfo is UTC
    with pytest.raises(ValidationError):
        parse_timestamp("yesterday")


def test_result_ref_and_created_date_in_utc() -> None:
    ref = ResultRef.from_api(
        "win-info", {"id": RID, "created_at": "2024-06-21T01:00:00+03:00", "expires_at": "2123-06-20T09:35:21+00:00"}
    )
    assert ref.created_date == "2024-06-20"
    assert not ref.is_expired(datetime.now(UTC))
    assert ref.is_expired(datetime(2124, 1, 1, tzinfo=timezone(timedelta(hours=1))))


def test_export_from_api_with_null_last_run() -> None:
    export = Export.from_api({"id": "x", "system_name": "win-info", "last_run": None})
    assert export.last_run is None
    with pytest.raises(ValidationError):
        Export.from_api({"id": "x", "system_name": "../../evil", "last_run": None})
    with pytest.raises(ValidationError):
        Export.from_api(["not", "an", "object"])


def test_copy_job_round_trip_and_validation() -> None:
    ref = ResultRef.from_api("win-info", {"id": RID, "created_at": "2024-06-20T09:35:57+00:00", "expires_at": None})
    job = CopyJob.for_result(ref)
    assert CopyJob.from_json(job.to_json()) == job
    with pytest.raises(ValidationError):
        CopyJob.from_json('{"export_name": "win-info", "result_id": "../../x", "created_at": "2024-06-20"}')
    with pytest.raises(ValidationError):
        CopyJob.from_json("not json")
