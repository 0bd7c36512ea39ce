"""The Glue database with one table per export type, and the Athena workgroup with saved queries."""

from __future__ import annotations

import re
from string import Template

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_s3 as s3
from constructs import Construct

from exportlake.domain.schemas import (
    ATHENA_RESULTS_PREFIX,
    EXPORT_TYPES,
    PARTITION_KEYS,
    TABLES_PREFIX,
    is_valid_name,
)
from infra.config import Config

PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"


def glue_database_name(stack_name: str) -> str:
    """A Glue database name derived from the stack name: lowercase letters, digits and underscores."""
    name = re.sub(r"[^a-z0-9]+", "_", stack_name.lower()).strip("_")
    return name or "exportlake"


_WIN_RATE = """WITH game_types AS (
  SELECT DISTINCT stackid, game_type FROM "$db"."player_info_game_type"
  UNION
  SELECT DISTINCT stackid, game_type FROM "$db"."challenges_game_type"
)
SELECT g.game_type,
       count(*) AS participations,
       sum(CASE WHEN w.haswon = '1' THEN 1 ELSE 0 END) AS wins,
       round(avg(CASE WHEN w.haswon = '1' THEN 1.0 ELSE 0.0 END), 4) AS win_rate
FROM "$db"."win_info" w
JOIN game_types g ON g.stackid = w.stackid
GROUP BY g.game_type
ORDER BY participations DESC;"""

_LATEST_ONE = """SELECT '$table' AS table_name, export_name, max(created_date) AS latest_created_date,
       count(DISTINCT result_id) AS results, count(*) AS row_count
FROM "$db"."$table"
GROUP BY export_name"""

_ROWS_PER_RESULT = """SELECT export_name, created_date, result_id, count(*) AS row_count
FROM "$db"."win_info"
GROUP BY export_name, created_date, result_id
ORDER BY created_date DESC
LIMIT 100;"""

_QUERY_TABLES = ("win_info", "player_info_game_type", "challenges_game_type")


def named_queries(database: str) -> dict[str, tuple[str, str]]:
    """The saved queries: id → (description, SQL).

    SQL is built from the schema registry and the derived database name only, both checked here: never API input.
    """
    if not all(is_valid_name(n) for n in (database, *EXPORT_TYPES)):
        raise ValueError(f"unsafe name in named queries: database {database!r} or a registry table")
    missing = set(_QUERY_TABLES) - EXPORT_TYPES.keys()
    if missing:
        raise KeyError(f"named queries use tables missing from the schema registry: {sorted(missing)}")
    latest = "\nUNION ALL\n".join(
        Template(_LATEST_ONE).substitute(db=database, table=t.table_name) for t in EXPORT_TYPES.values()
    )
    return {
        "WinRatePerGameType": (
            "Share of participations won, per game type (win_info joined with the game of each stack)",
            Template(_WIN_RATE).substitute(db=database),
        ),
        "LatestResultPerExport": (
            "Per export: the newest copied result date, how many results and rows the lake holds",
            latest + "\nORDER BY table_name, export_name;",
        ),
        "RowsPerResult": (
            "Rows per copied result of win_info (replace the table to look at another export type)",
            Template(_ROWS_PER_RESULT).substitute(db=database),
        ),
    }


class Catalog(Construct):
    """Glue database and tables declared from the schema registry; an enforced, encrypted Athena workgroup."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.database_name = glue_database_name(stack.stack_name)
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name,
                description="exportlake: NeoDay Automated Exports, one table per export type",
            ),
        )
        self.tables: dict[str, glue.CfnTable] = {}
        for export_type in EXPORT_TYPES.values():
            name = export_type.table_name
            table = glue.CfnTable(
                self,
                f"Table-{name}",
                catalog_id=stack.account,
                database_name=self.database.ref,  # the Ref is the name: CloudFormation orders them
                table_input=glue.CfnTable.TableInputProperty(
                    name=name,
                    description=export_type.description,
                    table_type="EXTERNAL_TABLE",
                    # The same TableInput the runtime's catalog adapter writes (it may add columns to it later).
                    parameters={"classification": "parquet", "parquet.compression": "ZSTD", "EXTERNAL": "TRUE"},
                    partition_keys=[glue.CfnTable.ColumnProperty(name=k, type="string") for k in PARTITION_KEYS],
                    storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                        columns=[glue.CfnTable.ColumnProperty(name=c, type="string") for c in export_type.columns],
                        location=f"s3://{bucket.bucket_name}/{TABLES_PREFIX}/{name}/",
                        input_format=PARQUET_INPUT,
                        output_format=PARQUET_OUTPUT,
                        serde_info=glue.CfnTable.SerdeInfoProperty(
                            serialization_library=PARQUET_SERDE, parameters={"serialization.format": "1"}
                        ),
                        compressed=True,
                    ),
                ),
            )
            self.tables[name] = table

        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=f"{stack.stack_name}-workgroup",
            description="exportlake: query the lake; results encrypted in the lake bucket, bytes scanned capped",
            state="ENABLED",
            # The workgroup holds only saved queries and history: the data lives in S3 and the catalog.
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=config.bytes_scanned_cutoff_mb * 1024 * 1024,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version="AUTO"),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{bucket.bucket_name}/{ATHENA_RESULTS_PREFIX}/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                    expected_bucket_owner=stack.account,
                ),
            ),
        )
        for query_id, (description, sql) in named_queries(self.database_name).items():
            query = athena.CfnNamedQuery(
                self,
                query_id,
                name=query_id,
                description=description,
                database=self.database_name,
                query_string=sql,
                work_group=self.workgroup.ref,
            )
            query.node.add_dependency(self.database)  # `database` is a plain name, not a Ref
