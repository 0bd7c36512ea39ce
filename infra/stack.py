"""The one exportlake stack: lake, catalog, ledger, secret, queue, functions, schedule and alerts wired together.

The functions' IAM grants are made here, in one place, from ``exportlake.iam``.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IConstruct

from exportlake import iam as permissions
from exportlake.adapters.ledgerindex import UNFINISHED_INDEX
from exportlake.domain.schemas import TABLES_PREFIX
from infra import bundling
from infra.config import Config
from infra.constructs.alerts import Alerts
from infra.constructs.catalog import Catalog, glue_database_name
from infra.constructs.functions import Functions
from infra.constructs.governance import Governance
from infra.constructs.lake import Lake
from infra.constructs.ledger import Ledger
from infra.constructs.privacy import Eraser, PrivacySalt
from infra.constructs.queue import CopyQueue
from infra.constructs.schedule import Schedule
from infra.constructs.secret import GatewaySecret


class ExportLakeStack(cdk.Stack):
    """Everything ``cdk deploy`` provisions. All names are generated except the Glue database and workgroup,
    which need one and derive it from the stack name."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        code: lambda_.Code | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.lake = Lake(self, "Lake", config=config)
        self.ledger = Ledger(self, "Ledger", config=config)
        self.secret = GatewaySecret(self, "GatewaySecret", config=config)
        self.alerts = Alerts(self, "Alerts", config=config)
        self.copy_jobs = CopyQueue(self, "CopyJobs")
        self.salt = PrivacySalt(self, "PrivacySalt", config=config)
        # The runtime's settings contract (exportlake.settings).
        environment = {
            "EXPORTLAKE_GATEWAY_URL": config.gateway_url,
            "EXPORTLAKE_SECRET_ID": self.secret.secret_id,
            "EXPORTLAKE_BUCKET": self.lake.bucket.bucket_name,
            "EXPORTLAKE_GLUE_DATABASE": glue_database_name(self.stack_name),
            "EXPORTLAKE_LEDGER_TABLE": self.ledger.table.table_name,
            "EXPORTLAKE_TOPIC_ARN": self.alerts.topic.topic_arn,
            "EXPORTLAKE_QUEUE_URL": self.copy_jobs.queue.queue_url,
            "EXPORTLAKE_DLQ_URL": self.copy_jobs.dlq.queue_url,
            "EXPORTLAKE_DOWNLOAD_HOSTS": ",".join(config.download_hosts),
            "EXPORTLAKE_GATEWAY_MAX_RPS": f"{config.gateway_max_rps:g}",
            "EXPORTLAKE_EXPIRY_WARNING_HOURS": str(config.expiry_warning_hours),
            "EXPORTLAKE_RECONCILE_HOURS": str(config.reconcile_hours),
            "EXPORTLAKE_RAW_ARCHIVE": "on" if config.raw_archive else "off",
            "EXPORTLAKE_PRIVACY_SALT_ID": self.salt.secret.secret_arn,
            "EXPORTLAKE_LAKE_RETENTION_DAYS": str(config.lake_retention_days),
        }
        code = code or bundling.lambda_code()
        self.functions = Functions(
            self,
            "Functions",
            config=config,
            code=code,
            environment=environment,
            queue=self.copy_jobs.queue,
        )
        # The catalog's raw tables are custom resources served by the tables function.
        self.catalog = Catalog(
            self, "Catalog", config=config, bucket=self.lake.bucket, table_handler=self.functions.tables
        )
        self.schedule = Schedule(self, "Schedule", config=config, planner=self.functions.planner)
        self.eraser = Eraser(self, "Eraser", config=config, code=code, environment=environment)
        self.functions.log_groups[permissions.ERASER] = self.eraser.log_group
        for name, fn in (
            (permissions.PLANNER, self.functions.planner),
            (permissions.COPIER, self.functions.copier),
            (permissions.TABLES, self.functions.tables),
            (permissions.ERASER, self.eraser.function),
        ):
            self._grant(name, fn)
        self.alerts.watch_queue("EraseDlqAlarm", self.eraser.dlq, "erase jobs failed every retry (see the erase DLQ)")
        self.governance = self._lake_formation(config) if config.lake_formation else None
        self._order_after_grants()
        self.alerts.watch(
            planner=self.functions.planner,
            copier=self.functions.copier,
            copy_dlq=self.copy_jobs.dlq,
            schedule_dlq=self.schedule.dlq,
            failed_runs=self.schedule.failed_runs,
        )

        outputs = {
            "BucketName": (self.lake.bucket.bucket_name, "The lake bucket (lake/, raw/, manifests/, athena-results/)"),
            "SecretId": (self.secret.secret_id, "Put the gateway client_id/client_secret JSON here"),
            "TopicArn": (self.alerts.topic.topic_arn, "Notifications: subscribe, filter on event_type/export"),
            "AthenaWorkGroup": (self.catalog.workgroup.ref, "Athena workgroup to query the lake with"),
            "GlueDatabase": (self.catalog.database_name, "Glue database holding one table per export type"),
            "QueueUrl": (self.copy_jobs.queue.queue_url, "The copy-jobs queue"),
            "LedgerTable": (self.ledger.table.table_name, "The ledger (one item per export result)"),
            "DashboardName": (self.alerts.dashboard.dashboard_name, "CloudWatch dashboard"),
            "PlannerFunction": (self.functions.planner.function_name, "Invoke it to sync now instead of waiting"),
            "EraserFunction": (self.eraser.function.function_name, "exportlake erase --deployed invokes it"),
            # What `exportlake doctor --stack` compares with the account (docs/deploy.md's checklist).
            "LakeFormation": ("on" if config.lake_formation else "off", "Lake Formation grants (lakeFormation)"),
        }
        if config.existing_secret_kms_key_arn:
            outputs["SecretKeyArn"] = (config.existing_secret_kms_key_arn, "The KMS key the functions may decrypt with")
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)

    def resources_of(self, function: str, grant: permissions.Grant) -> list[str]:
        """The ARNs a grant's symbolic resource stands for in this stack."""
        bucket = self.lake.bucket
        database = self.catalog.database_name
        ledger_arn = self.ledger.table.table_arn
        arns: dict[str, list[str]] = {
            permissions.SECRET: [self.secret.policy_arn],
            # The table and its index of unfinished results (the planner Queries it), by name: no wildcard.
            permissions.LEDGER: [ledger_arn, f"{ledger_arn}/index/{UNFINISHED_INDEX}"],
            permissions.COPY_QUEUE: [self.copy_jobs.queue.queue_arn],
            permissions.COPY_DLQ: [self.copy_jobs.dlq.queue_arn],
            permissions.PLANNER_FAILURES: [self.schedule.failed_runs.queue_arn],
            permissions.TOPIC: [self.alerts.topic.topic_arn],
            permissions.TOPIC_KEY: [self.alerts.key.key_arn],
            permissions.BUCKET: [bucket.bucket_arn],
            permissions.OBJECTS: [bucket.arn_for_objects(f"{prefix}/*") for prefix in grant.prefixes],
            permissions.DECLARED_TABLES: [
                self.format_arn(service="glue", resource="catalog"),
                self.format_arn(service="glue", resource="database", resource_name=database),
                *(
                    self.format_arn(service="glue", resource="table", resource_name=f"{database}/{table}")
                    for table in self.catalog.tables
                ),
            ],
            permissions.GLUE: [
                self.format_arn(service="glue", resource="catalog"),
                self.format_arn(service="glue", resource="database", resource_name=database),
                self.format_arn(service="glue", resource="table", resource_name=f"{database}/*"),
            ],
            permissions.LOG_GROUP: [self.functions.log_groups[function].log_group_arn],
            permissions.PRIVACY_SALT: [self.salt.secret.secret_arn],
            permissions.ERASE_QUEUE: [self.eraser.queue.queue_arn],
            # No key configured: no statement (the stack's own secret uses Secrets Manager's AWS managed key).
            permissions.SECRET_KEY: [k for k in (self.config.existing_secret_kms_key_arn,) if k],
            permissions.ANY: ["*"],
        }
        return arns[grant.resource]

    def _grant(self, function: str, fn: lambda_.Function) -> None:
        grants = permissions.GRANTS[function] + permissions.LAMBDA_GRANTS[function]
        for grant in grants:
            if grant == permissions.TRACING:
                continue  # CDK adds it for Tracing.ACTIVE
            resources = self.resources_of(function, grant)
            if not resources:
                continue
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    sid=grant.sid,
                    actions=list(grant.actions),
                    resources=resources,
                    conditions=self._via(grant),
                )
            )

    def _via(self, grant: permissions.Grant) -> dict[str, Any] | None:
        """A KMS key used only through ``grant.via`` (``kms:ViaService``), for this stack's secret only."""
        if not grant.via:
            return None
        conditions: dict[str, Any] = {"StringEquals": {"kms:ViaService": f"{grant.via}.{self.region}.amazonaws.com"}}
        if grant.via == "secretsmanager":
            # Secrets Manager encrypts each version with the secret's ARN in the encryption context.
            conditions["StringLike"] = {"kms:EncryptionContext:SecretARN": self.secret.policy_arn}
        return conditions

    def _lake_formation(self, config: Config) -> Governance:
        """Lake Formation grants; the database gets the lake's location, so tables created under it need no data
        location permission where the account registers the bucket with Lake Formation."""
        self.catalog.database.add_property_override(
            "DatabaseInput.LocationUri", f"s3://{self.lake.bucket.bucket_name}/{TABLES_PREFIX}/"
        )
        functions = {
            permissions.PLANNER: self.functions.planner,
            permissions.COPIER: self.functions.copier,
            permissions.TABLES: self.functions.tables,
            permissions.ERASER: self.eraser.function,
        }
        governance = Governance(
            self,
            "LakeFormationGrants",
            database=self.catalog.database,
            database_name=self.catalog.database_name,
            roles={name: fn.role for name, fn in functions.items() if fn.role is not None},
            readers=config.lake_formation_readers,
        )
        # The copier may run as soon as its queue mapping exists: not before its grants.
        for grant in governance.grants[permissions.COPIER]:
            self.functions.copy_jobs_source.node.add_dependency(grant)
        for grant in governance.grants[permissions.ERASER]:  # the eraser likewise, for its erase-jobs mapping
            self.eraser.jobs_source.node.add_dependency(grant)
        return governance

    def _order_after_grants(self) -> None:
        """CloudFormation's order where the template's references do not give it (IAM is eventually consistent, so
        the tables function also retries a refusal for a while: see exportlake.handlers.tables)."""
        tables_policy = self._default_policy(self.functions.tables)
        for table in self.catalog.tables.values():
            table.node.add_dependency(tables_policy)
            if self.governance is not None:
                for grant in self.governance.grants[permissions.TABLES]:
                    table.node.add_dependency(grant)
        # Lambda checks the on-failure destination against the planner's role when the invoke config is created.
        self.schedule.async_config.node.add_dependency(self._default_policy(self.functions.planner))

    @staticmethod
    def _default_policy(fn: lambda_.Function) -> IConstruct:
        policy = fn.role.node.try_find_child("DefaultPolicy") if fn.role is not None else None
        if policy is None:
            raise RuntimeError(f"{fn.node.path} has no role policy to order after")
        return policy
