"""The Glue database with one table and its typed/latest views per export type; the Athena workgroup and queries.

Tables, views and saved queries all come from the schema registry (``exportlake.domain.schemas``) and the one SQL
text (``exportlake.domain.views``) the local engine and the tests run, so what is deployed is what is tested.
"""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from exportlake.adapters.catalog import declared_fingerprint
from exportlake.domain import views as queries
from exportlake.domain.schemas import (
    ATHENA_RESULTS_PREFIX,
    EXPORT_TYPES,
    PARQUET_INPUT,
    PARQUET_OUTPUT,
    PARQUET_SERDE,
    PARTITION_KEYS,
    RAW_COLUMN_TYPE,
    SERDE_PARAMETERS,
    TABLE_PARAMETERS,
    TABLE_TYPE,
    TABLES_PREFIX,
    ResultSemantics,
    latest_table_input,
)
from exportlake.domain.tableresource import RESOURCE_TYPE, RemovalPolicy, TableDeclaration
from infra.config import Config

__all__ = ["PARQUET_INPUT", "PARQUET_OUTPUT", "PARQUET_SERDE", "Catalog", "glue_database_name", "named_queries"]


def glue_database_name(stack_name: str) -> str:
    """A Glue database name derived from the stack name: lowercase letters, digits and underscores."""
    name = re.sub(r"[^a-z0-9]+", "_", stack_name.lower()).strip("_")
    return name or "exportlake"


def semantics_of(config: Config) -> dict[str, ResultSemantics]:
    """Per export type, snapshot or delta: the registry's defaults with the deployment's overrides."""
    return queries.effective_semantics(dict(config.result_semantics))


def named_queries(database: str, config: Config | None = None) -> dict[str, tuple[str, str]]:
    """The saved queries: name → (description, SQL), the very text ``exportlake query`` runs locally."""
    semantics = semantics_of(config) if config is not None else None
    return {q.name: (q.description, q.sql) for q in queries.saved_queries(database, semantics)}


class Catalog(Construct):
    """Glue database, tables (custom resources that merge, see below) and views declared from the schema registry;
    an enforced, encrypted Athena workgroup."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        bucket: s3.IBucket,
        table_handler: lambda_.IFunction,
    ) -> None:
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
        # The database goes with the stack even with retainData: a new deployment makes a new bucket and ledger
        # (generated names) and needs a new database of the same, stack-derived name; a kept one would block it.
        # The raw tables are not AWS::Glue::Table resources: CloudFormation would write the declared column list
        # back on any change of a table's definition and hide the columns the runtime added for new fields. One
        # custom resource per table (exportlake.domain.tableresource says why per table) creates a missing table
        # or merges the declaration into it, never dropping a column; its properties carry the fingerprint of the
        # declared definition, so a registry change (or one of the SerDe, formats, keys the runtime writes) is an
        # Update of exactly the tables it touches, and a redeploy with no change sends nothing.
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        self.tables: dict[str, Construct] = {}
        for export_type in EXPORT_TYPES.values():
            name = export_type.table_name
            if config.upgrade_from_glue_tables:
                self.tables[name] = self._legacy_table(name, bucket)
                continue
            declaration = TableDeclaration(
                database=self.database_name,
                table=name,
                bucket=bucket.bucket_name,
                columns=export_type.columns,
                description=export_type.description,
                fingerprint=declared_fingerprint(name, export_type.columns, export_type.description),
                removal=removal,
            )
            table = cdk.CustomResource(
                self,
                f"RawTable-{name}",  # not "Table-…": that was the AWS::Glue::Table's id, a type CFN cannot change
                service_token=table_handler.function_arn,
                resource_type=RESOURCE_TYPE,
                properties=declaration.properties(),
                # Bounds CloudFormation's wait even if the function never answers (it answers FAILED itself on
                # time): the function's 120 s, its one start, and margin.
                service_timeout=cdk.Duration.seconds(300),
            )
            table.node.add_dependency(self.database)  # `DatabaseName` is a plain name, not a Ref
            self.tables[name] = table

        # The newest result of each export (exportlake.domain.latest): the copier writes one small object per table and
        # export; the <type>_latest views and two saved queries join it. Its columns are ours alone (nothing adds one),
        # so a plain AWS::Glue::Table owned by CloudFormation hides nothing.
        pointers = latest_table_input(bucket.bucket_name)
        storage = pointers["StorageDescriptor"]
        self.latest_table = glue.CfnTable(
            self,
            "LatestResults",
            catalog_id=stack.account,
            database_name=self.database.ref,
            table_input=glue.CfnTable.TableInputProperty(
                name=pointers["Name"],
                description=pointers["Description"],
                table_type=pointers["TableType"],
                parameters=dict(pointers["Parameters"]),
                partition_keys=[],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=c["Name"], type=c["Type"]) for c in storage["Columns"]],
                    location=storage["Location"],
                    input_format=storage["InputFormat"],
                    output_format=storage["OutputFormat"],
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=storage["SerdeInfo"]["SerializationLibrary"],
                        parameters=dict(storage["SerdeInfo"]["Parameters"]),
                    ),
                ),
            ),
        )

        # Glue views in the format Athena's CREATE VIEW writes (see docs/analytics.md for why not a custom
        # resource): declared, diffed and deleted by CloudFormation, no deploy-time query. Their columns are the
        # registry's only, so CloudFormation owning them hides nothing.
        self.views: dict[str, glue.CfnTable] = {}
        for view in queries.views(self.database_name, semantics_of(config)):
            source = view.name.removesuffix("_typed").removesuffix("_latest")
            glue_view = glue.CfnTable(
                self,
                f"View-{view.name}",
                catalog_id=stack.account,
                database_name=self.database.ref,
                table_input=glue.CfnTable.TableInputProperty(
                    name=view.name,
                    description=f"exportlake: {source} with typed values"
                    + (", newest result of each export only" if view.name.endswith("_latest") else ""),
                    table_type="VIRTUAL_VIEW",
                    parameters={"presto_view": "true", "comment": "Presto View"},
                    view_original_text=queries.glue_view_text(view),
                    view_expanded_text="/* Presto View */",
                    partition_keys=[],
                    storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                        columns=[glue.CfnTable.ColumnProperty(name=c.name, type=c.glue_type) for c in view.columns],
                        serde_info=glue.CfnTable.SerdeInfoProperty(),
                    ),
                ),
            )
            # A view reads its table: created after it, deleted before it (the dependency is not in the properties).
            glue_view.node.add_dependency(self.tables[source])
            if view.name.endswith("_latest"):
                glue_view.node.add_dependency(self.latest_table)
            self.views[view.name] = glue_view

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
        for query_id, (description, sql) in named_queries(self.database_name, config).items():
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
            for glue_view in self.views.values():
                query.node.add_dependency(glue_view)

    def _legacy_table(self, name: str, bucket: s3.IBucket) -> glue.CfnTable:
        """The raw table exactly as versions before the merging resource declared it (same id, same properties, so
        CloudFormation changes nothing but its deletion policy): Retain, so that the next deploy, which drops it
        from the template, leaves the table and its partitions to the custom resource that adopts them."""
        stack = cdk.Stack.of(self)
        export_type = EXPORT_TYPES[name]
        table = glue.CfnTable(
            self,
            f"Table-{name}",
            catalog_id=stack.account,
            database_name=self.database.ref,
            table_input=glue.CfnTable.TableInputProperty(
                name=name,
                description=export_type.description,
                table_type=TABLE_TYPE,
                parameters=dict(TABLE_PARAMETERS),
                partition_keys=[glue.CfnTable.ColumnProperty(name=k, type=RAW_COLUMN_TYPE) for k in PARTITION_KEYS],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=c, type=RAW_COLUMN_TYPE) for c in export_type.columns],
                    location=f"s3://{bucket.bucket_name}/{TABLES_PREFIX}/{name}/",
                    input_format=PARQUET_INPUT,
                    output_format=PARQUET_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=PARQUET_SERDE, parameters=dict(SERDE_PARAMETERS)
                    ),
                    compressed=True,
                ),
            ),
        )
        table.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        return table
