"""LakeQuery against moto: only registered partitions show, read by column name, mirrored incrementally."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from exportlake.domain.errors import ValidationError
from exportlake.domain.schemas import EXPORT_TYPES, PARTITION_KEYS, latest_table_input
from exportlake.query.lake import ATHENA_MACROS, LakeQuery

REGION = "eu-west-1"
BUCKET = "lake-bucket"
DATABASE = "exportlake"


class Lake:
    """A moto-backed lake: Glue tables shaped like the real ones, Parquet parts written with pyarrow."""

    def __init__(self) -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.glue = boto3.client("glue", region_name=REGION)
        self.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.glue.create_database(DatabaseInput={"Name": DATABASE})
        self.get_object_calls = 0
        self.s3.meta.events.register("before-call.s3.GetObject", self._count_get)

    def _count_get(self, **_: Any) -> None:
        self.get_object_calls += 1

    @staticmethod
    def storage(columns: list[str], location: str) -> dict[str, Any]:
        return {
            "Columns": [{"Name": c, "Type": "string"} for c in columns],
            "Location": location,
            "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"},
        }

    def create_table(self, name: str, columns: list[str], database: str = DATABASE) -> None:
        self.glue.create_table(
            DatabaseName=database,
            TableInput={
                "Name": name,
                "TableType": "EXTERNAL_TABLE",
                "PartitionKeys": [{"Name": k, "Type": "string"} for k in PARTITION_KEYS],
                "StorageDescriptor": self.storage(columns, f"s3://{BUCKET}/lake/{name}/"),
            },
        )

    @staticmethod
    def prefix(table: str, values: tuple[str, str, str]) -> str:
        return "lake/{}/export_name={}/created_date={}/result_id={}/".format(table, *values)

    def put_part(self, table: str, values: tuple[str, str, str], part: int, rows: dict[str, list[str | None]]) -> str:
        buffer = io.BytesIO()
        pq.write_table(pa.table({k: pa.array(v, pa.string()) for k, v in rows.items()}), buffer)
        key = f"{self.prefix(table, values)}part-{part:05d}.parquet"
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
        return key

    def register(self, table: str, *values: tuple[str, str, str], database: str = DATABASE) -> None:
        columns = [
            c["Name"]
            for c in self.glue.get_table(DatabaseName=database, Name=table)["Table"]["StorageDescriptor"]["Columns"]
        ]
        response = self.glue.batch_create_partition(
            DatabaseName=database,
            TableName=table,
            PartitionInputList=[
                {
                    "Values": list(v),
                    "StorageDescriptor": self.storage(columns, f"s3://{BUCKET}/{self.prefix(table, v)}"),
                }
                for v in values
            ],
        )
        assert not response.get("Errors")


WIN = EXPORT_TYPES["win_info"]
GAME = EXPORT_TYPES["player_info_game_type"]
R1 = ("daily_wins", "2024-05-01", "r1")
R2 = ("daily_wins", "2024-05-02", "r2")
R_HALF = ("daily_wins", "2024-05-03", "r3")  # written but never registered: a copier that died mid-way
G1 = ("games", "2024-05-01", "g1")


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Lake]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    with mock_aws():
        lake = Lake()
        lake.create_table("win_info", list(WIN.columns))
        lake.create_table("player_info_game_type", list(GAME.columns))
        lake.create_table("campaign_info", list(EXPORT_TYPES["campaign_info"].columns))
        lake.put_part(
            "win_info",
            R1,
            0,
            {
                "userid": ["u1", "u2", " u3", "Zoë 🎲"],
                "stackid": ["s1", "s1", "s2", "s2"],
                "haswon": ["true", "false", "true", "false"],
                "participation_date": ["2024-05-01 10:00:00", "2024-05-01 11:00:00", "2024-05-01 12:00:00", None],
            },
        )
        # A later part without participation_date and with its columns in another order: read by name.
        lake.put_part("win_info", R1, 1, {"haswon": ["true", None], "stackid": ["s1", "s2"], "userid": ["u4", "u5"]})
        lake.put_part("win_info", R_HALF, 0, {"userid": ["ghost"], "stackid": ["s1"], "haswon": ["true"]})
        lake.put_part(
            "player_info_game_type",
            G1,
            0,
            {"stackinstanceid": ["i1", "i2"], "stackid": ["s1", "s2"], "game_type": ["wheel", "scratch"]},
        )
        lake.register("win_info", R1)
        lake.register("player_info_game_type", G1)
        lake.glue.create_table(DatabaseName=DATABASE, TableInput=latest_table_input(BUCKET))
        yield lake


@pytest.fixture
def lq(lake: Lake, tmp_path: Path) -> LakeQuery:
    return LakeQuery(lake.glue, lake.s3, DATABASE, tmp_path / "cache")


def test_refresh_counts_partitions_per_table(lq: LakeQuery) -> None:
    # The unpartitioned pointer table counts its location as its one partition.
    assert lq.refresh() == {"campaign_info": 0, "latest_results": 1, "player_info_game_type": 1, "win_info": 1}


def test_rows_values_and_partition_columns(lq: LakeQuery) -> None:
    lq.refresh()
    columns, rows = lq.query("SELECT * FROM win_info ORDER BY userid")
    assert columns == [*WIN.columns, *PARTITION_KEYS]
    assert rows == [
        (" u3", "s2", "true", "2024-05-01 12:00:00", *R1),
        ("Zoë 🎲", "s2", "false", None, *R1),
        ("u1", "s1", "true", "2024-05-01 10:00:00", *R1),
        ("u2", "s1", "false", "2024-05-01 11:00:00", *R1),
        # The part without participation_date yields NULL there; its NULL haswon stays NULL.
        ("u4", "s1", "true", None, *R1),
        ("u5", "s2", None, None, *R1),
    ]


def test_all_columns_are_varchar(lq: LakeQuery) -> None:
    lq.refresh()
    described = lq.connection.execute("DESCRIBE win_info").fetchall()
    assert [(name, kind) for name, kind, *_ in described] == [(c, "VARCHAR") for c in (*WIN.columns, *PARTITION_KEYS)]


def test_unregistered_prefix_is_invisible_and_not_mirrored(lake: Lake, lq: LakeQuery, tmp_path: Path) -> None:
    lq.refresh()
    assert lq.query("SELECT count(*) FROM win_info WHERE userid = 'ghost' OR result_id = 'r3'")[1] == [(0,)]
    assert not list((tmp_path / "cache").rglob("result_id=r3"))


def test_table_without_partitions_is_empty_view_with_columns(lq: LakeQuery) -> None:
    lq.refresh()
    columns, rows = lq.query("SELECT * FROM campaign_info")
    assert rows == []
    assert columns == [*EXPORT_TYPES["campaign_info"].columns, *PARTITION_KEYS]


def test_column_missing_from_every_part_is_null(lake: Lake, lq: LakeQuery) -> None:
    # Glue knows a column no part has yet (schema grew before any new result landed).
    table = lake.glue.get_table(DatabaseName=DATABASE, Name="player_info_game_type")["Table"]
    lake.glue.update_table(
        DatabaseName=DATABASE,
        TableInput={
            "Name": "player_info_game_type",
            "PartitionKeys": table["PartitionKeys"],
            "StorageDescriptor": lake.storage([*GAME.columns, "added_later"], table["StorageDescriptor"]["Location"]),
        },
    )
    lq.refresh()
    _, rows = lq.query("SELECT stackid, added_later FROM player_info_game_type ORDER BY stackid")
    assert rows == [("s1", None), ("s2", None)]


def test_refresh_picks_up_new_partition_without_redownloading(lake: Lake, lq: LakeQuery) -> None:
    lq.refresh()
    assert lake.get_object_calls == 3  # two win_info parts, one player_info_game_type part
    lake.put_part("win_info", R2, 0, {"userid": ["u6"], "stackid": ["s1"], "haswon": ["false"]})
    lake.register("win_info", R2)
    assert lq.refresh()["win_info"] == 2
    assert lake.get_object_calls == 4
    rows = lq.query("SELECT created_date, result_id, count(*) FROM win_info GROUP BY ALL ORDER BY ALL")[1]
    assert rows == [("2024-05-01", "r1", 6), ("2024-05-02", "r2", 1)]


def test_mirror_survives_a_new_instance(lake: Lake, tmp_path: Path) -> None:
    LakeQuery(lake.glue, lake.s3, DATABASE, tmp_path / "cache").refresh()
    calls = lake.get_object_calls
    again = LakeQuery(lake.glue, lake.s3, DATABASE, tmp_path / "cache")
    again.refresh()
    assert lake.get_object_calls == calls
    assert again.query("SELECT count(*) FROM win_info")[1] == [(6,)]


def test_changed_object_is_downloaded_again(lake: Lake, lq: LakeQuery) -> None:
    lq.refresh()
    calls = lake.get_object_calls
    lake.put_part("player_info_game_type", G1, 0, {"stackinstanceid": ["i9"], "stackid": ["s9"], "game_type": ["x"]})
    lq.refresh()
    assert lake.get_object_calls == calls + 1
    assert lq.query("SELECT stackid FROM player_info_game_type")[1] == [("s9",)]


def test_deregistered_partition_disappears_and_its_files_are_removed(lake: Lake, lq: LakeQuery, tmp_path: Path) -> None:
    lq.refresh()
    # Mirrored under the table and its Glue partition values: the layout DuckDB reads with hive_partitioning.
    mirrored = tmp_path / "cache" / "_tables" / Lake.prefix("player_info_game_type", G1).removeprefix("lake/")
    assert (mirrored / "part-00000.parquet").is_file()
    lake.glue.delete_partition(DatabaseName=DATABASE, TableName="player_info_game_type", PartitionValues=list(G1))
    assert lq.refresh()["player_info_game_type"] == 0
    assert lq.query("SELECT * FROM player_info_game_type")[1] == []
    assert not mirrored.exists()
    assert lq.query("SELECT count(*) FROM win_info")[1] == [(6,)]


def test_dropped_glue_table_drops_its_view(lake: Lake, lq: LakeQuery) -> None:
    lq.refresh()
    lake.glue.delete_table(DatabaseName=DATABASE, Name="campaign_info")
    lq.refresh()
    views = lq.query("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1")[1]
    # The raw tables left, and the registry's typed/latest views over them; campaign_info's derived views went too.
    assert views == [
        ("latest_results",),
        ("player_info_game_type",),
        ("player_info_game_type_latest",),
        ("player_info_game_type_typed",),
        ("win_info",),
        ("win_info_typed",),
    ]


def test_win_rate_per_game_type_join(lq: LakeQuery) -> None:
    lq.refresh()
    _, rows = lq.query(
        """
        SELECT g.game_type, count(*) AS plays, round(avg(CASE WHEN w.haswon = 'true' THEN 1.0 ELSE 0.0 END), 4)
        FROM win_info w JOIN player_info_game_type g ON w.stackid = g.stackid
        GROUP BY g.game_type ORDER BY g.game_type
        """
    )
    # s1 (wheel): u1 won, u2 lost, u4 won -> 2/3; s2 (scratch): u3 won, Zoë lost, u5 unknown -> 1/3.
    assert rows == [("scratch", 3, 0.3333), ("wheel", 3, 0.6667)]


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("win_info; drop table x", ["userid"]),
        ("Win_Info", ["userid"]),
        ("win_info", ['userid" , (SELECT 1) AS "x']),
        ("win_info", ["user id"]),
        ("win_info", ["__exportlake_file"]),
    ],
)
def test_malicious_names_in_glue_are_refused(lake: Lake, tmp_path: Path, table: str, columns: list[str]) -> None:
    lake.glue.create_database(DatabaseInput={"Name": "evil"})
    lake.create_table(table, columns, database="evil")
    with pytest.raises(ValidationError, match="unsafe"):
        LakeQuery(lake.glue, lake.s3, "evil", tmp_path / "cache").refresh()


def test_unsafe_s3_key_is_refused(lake: Lake, lq: LakeQuery) -> None:
    key = Lake.prefix("win_info", R1) + "x*.parquet"  # DuckDB would expand it as a glob
    lake.s3.put_object(Bucket=BUCKET, Key=key, Body=b"")
    with pytest.raises(ValidationError, match="unsafe as a local path"):
        lq.refresh()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("date_parse('2024-05-01 13:45:30', '%Y-%m-%d %H:%i:%s')", datetime(2024, 5, 1, 13, 45, 30)),
        ("date_parse('2024-05-01 13:45:30.250', '%Y-%m-%d %H:%i:%s.%f')", datetime(2024, 5, 1, 13, 45, 30, 250000)),
        ("date_parse('2024-05-01', '%Y-%m-%d')", datetime(2024, 5, 1)),
        ("date_parse('01/05/2024 01:02:03 PM', '%d/%m/%Y %h:%i:%s %p')", datetime(2024, 5, 1, 13, 2, 3)),
        ("from_iso8601_timestamp('2024-05-01T13:45:30+02:00')", datetime(2024, 5, 1, 11, 45, 30)),
        ("from_iso8601_timestamp('2024-05-01T13:45:30.5Z')", datetime(2024, 5, 1, 13, 45, 30, 500000)),
        ("regexp_like('campaign-2024', '\\d{4}$')", True),
        ("regexp_like('campaign', '^amp')", False),
        ("approx_distinct(v) FROM (VALUES ('a'), ('b'), ('a'), (NULL), ('c')) t(v)", 3),
        ("""json_extract_scalar('{"a": {"b": "Zoë"}}', '$.a.b')""", "Zoë"),
        ("""json_extract_scalar('{"n": 42, "t": true}', '$.n')""", "42"),
        ("""json_extract_scalar('{"a": {"b": 1}}', '$.a')""", None),
        ("""json_extract_scalar('{"a": null}', '$.a')""", None),
        ("""json_extract_scalar('{"a": 1}', '$.missing')""", None),
        ("json_extract_scalar('not json', '$.a')", None),
        ("date_format(TIMESTAMP '2024-05-01 13:45:30', '%Y-%m-%d %H:%i:%s')", "2024-05-01 13:45:30"),
        ("date_format(TIMESTAMP '2024-05-01 13:45:30', '%d/%m/%Y %T')", "01/05/2024 13:45:30"),
        ("date_format(date_parse('2024-05-01', '%Y-%m-%d'), '%M %e, %Y')", "May 1, 2024"),
    ],
)
def test_athena_macros(tmp_path: Path, sql: str, expected: object) -> None:
    # The macros need no AWS at all: the constructor reads nothing.
    lq = LakeQuery(None, None, DATABASE, tmp_path)
    assert lq.query(f"SELECT {sql}")[1] == [(expected,)]


def test_every_macro_is_defined(tmp_path: Path) -> None:
    lq = LakeQuery(None, None, DATABASE, tmp_path)
    names = {
        row[0] for row in lq.query("SELECT function_name FROM duckdb_functions() WHERE function_type = 'macro'")[1]
    }
    assert set(ATHENA_MACROS) <= names


def test_macros_work_on_lake_columns(lq: LakeQuery) -> None:
    lq.refresh()
    _, rows = lq.query(
        "SELECT max(date_parse(participation_date, '%Y-%m-%d %H:%i:%s')), approx_distinct(userid) FROM win_info"
    )
    assert rows == [(datetime(2024, 5, 1, 12, 0, 0), 6)]
