"""The export types of the Automated Exports API, as data: one registry for the runtime and the CDK app.

Besides the tables' raw columns (every value a string, exactly as the API sent it) the registry declares what each
value *means*: its kind (text, flag, number, timestamp), which gives the column's type in the ``<type>_typed``
view, and whether a result of the type is a full snapshot or a delta. The Glue table definition (SerDe, formats,
parameters, partition keys) lives here too, so the runtime's catalog adapter and the CDK stack cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

#: Partition keys of every export table, in order. Each result is its own partition, so registering the
#: partition is the single step that makes a whole result visible to Athena (and never half of it).
PARTITION_KEYS: tuple[str, ...] = ("export_name", "created_date", "result_id")

#: The companion column of every typed view: how many of the row's values did not parse.
BAD_VALUES_COLUMN = "bad_values"
#: Names a record field cannot take as a column (a partition key would be a duplicate column that Glue and Athena
#: refuse; ``bad_values`` is the typed views' own). Such a field lands renamed: see ``column_for_field``.
RESERVED_COLUMNS: tuple[str, ...] = (*PARTITION_KEYS, BAD_VALUES_COLUMN)
#: What a reserved field name is prefixed with (again while the name is taken).
RENAMED_FIELD_PREFIX = "field_"

#: S3 layout, relative to the lake bucket. Only ``TABLES_PREFIX`` holds data Athena reads; raw originals and
#: manifests sit beside it so a table location never sees them.
TABLES_PREFIX = "lake"
RAW_PREFIX = "raw"
MANIFESTS_PREFIX = "manifests"
ATHENA_RESULTS_PREFIX = "athena-results"
#: The newest result of each export (``exportlake.domain.latest``): one small JSON object per table and export.
LATEST_PREFIX = "latest"

#: The Glue table definition every export table shares (runtime adapter and CDK stack both read these).
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
SERDE_PARAMETERS: dict[str, str] = {"serialization.format": "1"}
TABLE_PARAMETERS: dict[str, str] = {"classification": "parquet", "parquet.compression": "ZSTD", "EXTERNAL": "TRUE"}
TABLE_TYPE = "EXTERNAL_TABLE"
#: Raw columns and partition keys are strings: the table keeps the exact record; the typed view interprets it.
RAW_COLUMN_TYPE = "string"
#: The Glue partition index every raw table gets, and the parameter that makes Athena use it: a query filtering on
#: ``created_date`` then fetches only the matching partitions from Glue instead of listing them all.
PARTITION_INDEX_NAME = "by_created_date"
PARTITION_INDEX_KEYS: tuple[str, ...] = ("created_date",)
PARTITION_FILTERING_PARAMETER = "partition_filtering.enabled"
#: The raw tables' parameters: the shared ones plus partition filtering (``TABLE_PARAMETERS`` alone is what the
#: legacy ``AWS::Glue::Table`` resources declared, kept as they were for the two-step upgrade).
RAW_TABLE_PARAMETERS: dict[str, str] = {**TABLE_PARAMETERS, PARTITION_FILTERING_PARAMETER: "true"}

#: The pointer table: one row per table and export naming its newest result (no partitions, JSON Lines).
LATEST_TABLE = "latest_results"
LATEST_COLUMNS: tuple[str, ...] = ("table_name", "export_name", "created_date", "result_id", "created_at")
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"


def latest_table_input(bucket: str) -> dict[str, Any]:
    """The Glue ``TableInput`` of ``latest_results`` (the stack declares the same; nothing ever adds a column)."""
    return {
        "Name": LATEST_TABLE,
        "Description": "exportlake: the newest result of each export, per table (read by the <type>_latest views)",
        "TableType": TABLE_TYPE,
        "Parameters": {"classification": "json", "EXTERNAL": "TRUE"},
        "PartitionKeys": [],
        "StorageDescriptor": {
            "Columns": [{"Name": c, "Type": RAW_COLUMN_TYPE} for c in LATEST_COLUMNS],
            "Location": f"s3://{bucket}/{LATEST_PREFIX}/",
            "InputFormat": TEXT_INPUT,
            "OutputFormat": TEXT_OUTPUT,
            "SerdeInfo": {"SerializationLibrary": JSON_SERDE, "Parameters": {"serialization.format": "1"}},
        },
    }


_NAME = re.compile(r"^[a-z][a-z0-9_]{0,127}$")


class ValueKind(StrEnum):
    """What a raw string value means, and so its type in the typed view."""

    #: Kept exactly (leading spaces included); empty string and null stay apart.
    TEXT = "text"
    #: "1" → true, "0" → false; anything else non-empty is a bad value.
    FLAG = "flag"
    #: A decimal number ("10000", "12.50") → double.
    NUMBER = "number"
    #: ``YYYY-MM-DD HH:MM:SS``, ``YYYY-MM-DD HH:MM:SS.fff`` (no zone: taken as UTC) or ISO 8601 with an offset
    #: (``2024-06-20T09:35:57+00:00``, converted to UTC) → timestamp (UTC, no zone).
    TIMESTAMP = "timestamp"

    @property
    def sql_type(self) -> str:
        """The column's type in the typed view, as Athena (Trino) and DuckDB name it."""
        return _VIEW_TYPES[self][0]

    @property
    def glue_type(self) -> str:
        """The column's type in the Glue view definition (Hive spelling)."""
        return _VIEW_TYPES[self][1]


_VIEW_TYPES = {
    ValueKind.TEXT: ("varchar", "string"),
    ValueKind.FLAG: ("boolean", "boolean"),
    ValueKind.NUMBER: ("double", "double"),
    ValueKind.TIMESTAMP: ("timestamp", "timestamp"),
}


class ResultSemantics(StrEnum):
    """Whether one result of an export holds the whole data set or only what changed since the previous one."""

    #: Each result is the complete state: only the newest result counts (see the ``<type>_latest`` view).
    SNAPSHOT = "snapshot"
    #: Each result holds new rows only: all results together are the data set.
    DELTA = "delta"


@dataclass(frozen=True)
class Field:
    """One record field: its name, what its value means, and the value format as documented."""

    name: str
    kind: ValueKind = ValueKind.TEXT
    format: str = "string"


def _id(name: str) -> Field:
    return Field(name, ValueKind.TEXT, "25 lowercase alphanumerics")


def _flag(name: str) -> Field:
    return Field(name, ValueKind.FLAG, '"0" / "1"')


def _ts(name: str, fmt: str = "YYYY-MM-DD HH:MM:SS[.fff] (UTC)") -> Field:
    return Field(name, ValueKind.TIMESTAMP, fmt)


@dataclass(frozen=True)
class ExportType:
    """One documented export type: the document's top-level key, its record fields in order, its semantics.

    ``semantics`` is the default for exports of this type; a deployment may override it per export
    (``resultSemantics`` in ``cdk.json``). The vendor page says nothing about it for any type, so the default is a
    judgement: catalogue-like types (campaigns, games per stack, prizes, user links) are read as snapshots; event
    types (participations, wins, coupons, challenge progress, prizes won) as deltas.
    """

    key: str
    fields: tuple[Field, ...]
    description: str
    semantics: ResultSemantics = ResultSemantics.DELTA

    @property
    def table_name(self) -> str:
        """The Glue/Athena table of this type (the document key, already a valid name)."""
        return self.key

    @property
    def columns(self) -> tuple[str, ...]:
        """The raw columns, in document order."""
        return tuple(f.name for f in self.fields)

    @property
    def typed_view(self) -> str:
        """The view with every value typed (``<type>_typed``)."""
        return f"{self.key}_typed"

    @property
    def latest_view(self) -> str:
        """The view with only the newest result of each export (``<type>_latest``)."""
        return f"{self.key}_latest"


_SNAP = ResultSemantics.SNAPSHOT
_DELTA = ResultSemantics.DELTA

EXPORT_TYPES: dict[str, ExportType] = {
    t.key: t
    for t in (
        ExportType(
            "campaign_info",
            (
                Field("campaign_name"),
                _id("campaign_code"),
                _ts("campaign_start", "ISO 8601 with offset, e.g. 2024-06-20T00:00:00+00:00 (→ UTC)"),
                _ts("campaign_end", "ISO 8601 with offset, e.g. 2024-06-20T00:00:00+00:00 (→ UTC)"),
            ),
            "Basic campaign details",
            _SNAP,
        ),
        ExportType(
            "user_base_connections",
            (_id("userid"), Field("client_id", format="the user's id on the third-party service")),
            "User base from third-party registration",
            _SNAP,
        ),
        ExportType(
            "player_info_user_id",
            (
                _id("userid"),
                _id("stackinstanceid"),
                Field("value", ValueKind.NUMBER, 'decimal number in a string ("10000", "12.50")'),
                _ts("participation_date"),
            ),
            "Player participation",
            _DELTA,
        ),
        ExportType(
            "player_info_game_type",
            (_id("stackinstanceid"), _id("stackid"), Field("game_type", format="e.g. gamification, lottery")),
            "Game of each stack instance",
            _SNAP,
        ),
        ExportType(
            "win_info",
            (_id("userid"), _id("stackid"), _flag("haswon"), _ts("participation_date")),
            "Wins per user and campaign",
            _DELTA,
        ),
        ExportType(
            "all_coupons",
            (
                _id("userid"),
                Field("coupon_name", format="string; leading spaces are part of the name"),
                _ts("received_date"),
            ),
            "Coupons created for users",
            _DELTA,
        ),
        ExportType(
            "challenges_user_id",
            (_id("userid"), _id("stackinstanceid"), _flag("hascompleted"), _ts("participation_date")),
            "User progress in challenges",
            _DELTA,
        ),
        ExportType(
            "challenges_game_type",
            (_id("stackinstanceid"), _id("stackid"), Field("game_type", format="e.g. lottery, quiz")),
            "Game of each challenge",
            _SNAP,
        ),
        ExportType(
            "gamification_prize_user_id",
            (
                _id("userid"),
                _id("game_id"),
                Field("game_name"),
                _id("prizeid"),
                _ts("claimed_date", "YYYY-MM-DD HH:MM:SS[.fff] (UTC); null = not claimed"),
            ),
            "Prizes won by users",
            _DELTA,
        ),
        ExportType(
            "gamification_prize_prize_type",
            (_id("prizeid"), _id("game_id"), Field("prize_name"), Field("prize_type", format="e.g. voucher")),
            "Prize catalogue",
            _SNAP,
        ),
    )
}


def column_for_field(name: str, fields: tuple[str, ...] | list[str] = ()) -> str:
    """The column a record field lands in: its own name, or for a reserved name ``field_<name>``.

    One rule for every table: a field named like a partition key or ``bad_values`` would be a duplicate column
    that Glue and Athena refuse, so it is prefixed with ``field_`` (again, while the result's other ``fields`` or
    the reserved names already hold that name). ``schema.changed`` reports the renamed column.
    """
    if name not in RESERVED_COLUMNS:
        return name
    column = RENAMED_FIELD_PREFIX + name
    while column in RESERVED_COLUMNS or column in fields:
        column = RENAMED_FIELD_PREFIX + column
    return column


def is_valid_name(name: str) -> bool:
    """True if ``name`` is safe as a Glue table or column name (lowercase, letters, digits, underscores)."""
    return bool(_NAME.fullmatch(name))
