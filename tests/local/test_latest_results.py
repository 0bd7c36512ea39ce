"""``<type>_latest`` is the newest result by full ``created_at`` and reads only that result's files.

A moto lake with one ``campaign_info`` export holding 100 results (several a day, ids in no particular order),
copied in shuffled order through the copier's own pointer logic (``domain.latest.advance``). DuckDB reads the lake
the way Athena does (hive partitions from the Glue values), so the files a query opens are what Trino's dynamic
filtering would leave: the test counts them.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from exportlake.adapters.catalog import GlueCatalog, declared_fingerprint
from exportlake.adapters.lakestore import S3LakeStore
from exportlake.domain import latest, tableresource
from exportlake.domain.manifest import Manifest, ManifestPart, RawOriginal
from exportlake.domain.naming import manifest_key, part_key, partition_prefix, partition_values
from exportlake.domain.schemas import EXPORT_TYPES, Field, ValueKind
from exportlake.domain.tableresource import RemovalPolicy, TableDeclaration
from exportlake.domain.timefmt import to_text
from exportlake.domain.views import typed_expression
from exportlake.emulator import motoglue
from exportlake.emulator.provision import backfill_latest
from exportlake.query.lake import LakeQuery

REGION = "eu-west-1"
BUCKET = "lake-bucket"
DATABASE = "exportlake"
TABLE = "campaign_info"
EXPORT = "campaigns"
START = datetime(2026, 3, 1, tzinfo=UTC)
COUNT_LATEST = 'SELECT count(*) FROM "exportlake"."campaign_info_latest"'
COUNT_MAX = 'SELECT count(*), max(result_id) FROM "exportlake"."campaign_info_latest"'
COUNT_MIN_MAX = 'SELECT count(*), min(result_id), max(result_id) FROM "exportlake"."campaign_info_latest"'
COUNT_TYPED = 'SELECT count(*) FROM "exportlake"."campaign_info_typed"'
COUNT_RAW_ON_DAY = 'SELECT count(*) FROM "exportlake"."campaign_info" WHERE created_date = \'?\''
TYPED_OF = "SELECT {} FROM (VALUES ('{}')) AS x (t)"


@dataclass(frozen=True)
class Result:
    result_id: str
    created_at: datetime
    rows: int


def results() -> list[Result]:
    """100 results, four to five a day at uneven minutes; ids random, so id order says nothing about time."""
    rng = random.Random(18)
    out = []
    for n in range(100):
        created = START + timedelta(hours=5 * n, minutes=rng.randrange(60), seconds=rng.randrange(60))
        out.append(Result("".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=25)), created, 10 + n))
    return out


class Lake:
    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.glue = boto3.client("glue", region_name=REGION)
        self.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.catalog = GlueCatalog(self.glue, DATABASE, BUCKET)
        self.catalog.ensure_database()
        self.catalog.ensure_table(TABLE, EXPORT_TYPES[TABLE].columns)
        self.catalog.ensure_latest_table()
        self.store = S3LakeStore(self.s3, BUCKET)

    def land(self, result: Result, *, pointer: bool = True) -> None:
        """What the copier leaves for one result: a Parquet part, a manifest, the partition, the pointer."""
        day = result.created_at.strftime("%Y-%m-%d")
        prefix = partition_prefix(TABLE, EXPORT, day, result.result_id)
        columns = EXPORT_TYPES[TABLE].columns
        rows = {c: [f"{c}-{result.result_id}-{i}" for i in range(result.rows)] for c in columns}
        buffer = io.BytesIO()
        pq.write_table(pa.table({c: pa.array(v, pa.string()) for c, v in rows.items()}), buffer)
        body = buffer.getvalue()
        self.s3.put_object(Bucket=BUCKET, Key=part_key(prefix, 0), Body=body)
        manifest = Manifest(
            export_name=EXPORT,
            result_id=result.result_id,
            created_at=result.created_at,
            table=TABLE,
            columns=columns,
            rows=result.rows,
            location=f"s3://{BUCKET}/{prefix}",
            raw=RawOriginal(key="", json_bytes=0, sha256="0" * 64, gzip_bytes=0),
            parts=(ManifestPart(part_key(prefix, 0), result.rows, len(body), columns),),
            copied_at=to_text(result.created_at),
        )
        self.store.put(manifest_key(EXPORT, result.result_id), manifest.to_json(), "application/json")
        values = partition_values(EXPORT, day, result.result_id)
        self.catalog.register_partition(TABLE, values, f"s3://{BUCKET}/{prefix}", list(columns))
        if pointer:
            latest.advance(self.store, latest.Pointer.of(manifest))

    def part_size(self, result: Result) -> int:
        day = result.created_at.strftime("%Y-%m-%d")
        key = part_key(partition_prefix(TABLE, EXPORT, day, result.result_id), 0)
        return int(self.s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"])


@pytest.fixture
def lake() -> Iterator[Lake]:
    motoglue.install()
    with mock_aws():
        yield Lake()


def engine(lake: Lake, tmp_path: Path) -> LakeQuery:
    lq = LakeQuery(lake.glue, lake.s3, DATABASE, tmp_path / "mirror")
    lq.refresh()
    return lq


def test_latest_view_of_100_results_reads_only_the_newest_results_files(lake: Lake, tmp_path: Path) -> None:
    history = results()
    newest = max(history, key=lambda r: r.created_at)
    # The newest is not the largest id of its day, and copies land in any order (retries, parallel copiers).
    same_day = [r for r in history if r.created_at.date() == newest.created_at.date()]
    assert len(same_day) > 1
    for result in random.Random(7).sample(history, len(history)):
        lake.land(result)
    lq = engine(lake, tmp_path)

    rows = lq.query(COUNT_MIN_MAX)[1]
    assert rows == [(newest.rows, newest.result_id, newest.result_id)]
    scan = lq.last_scan
    assert scan is not None
    # One Parquet part of the newest result, and the one pointer object: nothing of the other 99 results.
    assert scan.files == 2
    everything = sum(lake.part_size(r) for r in history)
    assert scan.bytes < lake.part_size(newest) * 3 < everything / 10

    lq.query(COUNT_TYPED)
    assert lq.last_scan is not None and lq.last_scan.files == 100  # the typed view reads every result


def test_two_results_of_one_day_the_newer_with_the_smaller_id_wins(lake: Lake, tmp_path: Path) -> None:
    """The issue's case: a minute apart on the same UTC day; the newer result has the smaller id."""
    older = Result("z" * 25, datetime(2026, 3, 1, 10, 0, tzinfo=UTC), 333)
    newer = Result("a" * 25, datetime(2026, 3, 1, 10, 1, tzinfo=UTC), 111)
    lake.land(newer)
    lake.land(older)  # copied late: must not move the pointer back
    rows = engine(lake, tmp_path).query(COUNT_MAX)[1]
    assert rows == [(111, newer.result_id)]


def test_identical_instants_tie_break_on_the_result_id(lake: Lake, tmp_path: Path) -> None:
    moment = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
    for rid, rows in (("b" * 25, 2), ("c" * 25, 3), ("a" * 25, 1)):
        lake.land(Result(rid, moment, rows))
    assert engine(lake, tmp_path).query(COUNT_LATEST)[1] == [(3,)]


def test_an_upgraded_lake_reads_nothing_until_backfilled_then_the_newest(lake: Lake, tmp_path: Path) -> None:
    """Results copied before pointers existed: no pointer, no rows (never a wrong answer); the backfill that
    ``exportlake provision`` runs writes the newest by the manifests' full time, and a second run writes nothing."""
    history = results()[:12]
    for result in history:
        lake.land(result, pointer=False)
    assert engine(lake, tmp_path).query(COUNT_LATEST)[1] == [(0,)]
    assert backfill_latest(lake.catalog, lake.store) == 1
    assert backfill_latest(lake.catalog, lake.store) == 0
    newest = max(history, key=lambda r: r.created_at)
    rows = engine(lake, tmp_path / "again").query(COUNT_MAX)
    assert rows[1] == [(newest.rows, newest.result_id)]


def test_a_constant_partition_filter_reads_only_that_days_files(lake: Lake, tmp_path: Path) -> None:
    history = results()[:20]
    for result in history:
        lake.land(result)
    day = history[5].created_at.strftime("%Y-%m-%d")
    lq = engine(lake, tmp_path)
    rows = lq.query(COUNT_RAW_ON_DAY.replace("?", day))[1]
    on_day = [r for r in history if r.created_at.strftime("%Y-%m-%d") == day]
    assert rows == [(sum(r.rows for r in on_day),)]
    assert lq.last_scan is not None and lq.last_scan.files == len(on_day) < len(history)


def test_typed_timestamps_have_milliseconds_on_both_engines(tmp_path: Path) -> None:
    lq = LakeQuery(None, None, DATABASE, tmp_path)
    field = Field("t", ValueKind.TIMESTAMP)
    values = ("2024-06-20 09:35:57.123456", "2024-06-20T09:35:57.987654+02:00", "2024-06-20 09:35:57.5")
    got: list[Any] = [lq.query(TYPED_OF.format(typed_expression(field), v))[1][0][0] for v in values]
    assert got == [
        datetime(2024, 6, 20, 9, 35, 57, 123000),
        datetime(2024, 6, 20, 7, 35, 57, 987000),
        datetime(2024, 6, 20, 9, 35, 57, 500000),
    ]


def test_the_deploy_time_table_resource_backfills_pointers_and_never_fails_for_it(lake: Lake, tmp_path: Path) -> None:
    """The upgrade deploy sends every raw table an Update (its fingerprint changed): it backfills the pointers."""
    history = results()[:8]
    for result in history:
        lake.land(result, pointer=False)
    event = {
        "RequestType": "Update",
        "PhysicalResourceId": f"{DATABASE}/{TABLE}",
        "ResourceProperties": TableDeclaration(
            DATABASE, TABLE, BUCKET, EXPORT_TYPES[TABLE].columns, "d",
            declared_fingerprint(TABLE, EXPORT_TYPES[TABLE].columns, "d"), RemovalPolicy.RETAIN,
        ).properties(),
    }  # fmt: skip

    def backfill_for(database: str, bucket: str) -> Any:
        return lambda table: len(latest.backfill_table(lake.store, table, lake.catalog.partition_values(table)))

    outcome = tableresource.handle(event, lambda database, bucket: lake.catalog, backfill_for)
    assert "1 latest-result pointers backfilled" in outcome.summary and outcome.data["PointersBackfilled"] == "1"
    assert "partition index present" in outcome.summary
    newest = max(history, key=lambda r: r.created_at)
    rows = engine(lake, tmp_path).query(COUNT_MAX)[1]
    assert rows == [(newest.rows, newest.result_id)]

    def broken(database: str, bucket: str) -> Any:
        raise PermissionError("AccessDenied on latest/")

    outcome = tableresource.handle(event, lambda database, bucket: lake.catalog, broken)
    assert "latest-result backfill skipped (PermissionError: AccessDenied on latest/)" in outcome.summary


def test_a_statement_on_no_lake_table_reads_nothing(tmp_path: Path) -> None:
    lq = LakeQuery(None, None, DATABASE, tmp_path)
    for statement in ("SET threads = 1", "CREATE TABLE t AS SELECT 1 AS x", "INSERT INTO t VALUES (2)"):
        lq.query(statement)
        assert lq.last_scan is not None and (lq.last_scan.files, lq.last_scan.bytes) == (0, 0)
