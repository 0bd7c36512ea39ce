"""The one exportlake stack: lake, catalog, ledger, secret, alerts and pipeline wired together."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import bundling
from infra.config import Config
from infra.constructs.alerts import Alerts
from infra.constructs.catalog import Catalog
from infra.constructs.lake import Lake
from infra.constructs.ledger import Ledger
from infra.constructs.pipeline import Pipeline
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
        self.catalog = Catalog(self, "Catalog", config=config, bucket=self.lake.bucket)
        self.ledger = Ledger(self, "Ledger", config=config)
        self.secret = GatewaySecret(self, "GatewaySecret", config=config)
        self.alerts = Alerts(self, "Alerts", config=config)
        self.pipeline = Pipeline(
            self,
            "Pipeline",
            config=config,
            code=code or bundling.lambda_code(),
            bucket=self.lake.bucket,
            ledger=self.ledger.table,
            secret=self.secret.secret,
            secret_id=self.secret.secret_id,
            topic=self.alerts.topic,
            glue_database=self.catalog.database_name,
        )
        self.alerts.watch(
            planner=self.pipeline.planner,
            copier=self.pipeline.copier,
            copy_dlq=self.pipeline.copy_dlq,
            schedule_dlq=self.pipeline.schedule_dlq,
        )

        outputs = {
            "BucketName": (self.lake.bucket.bucket_name, "The lake bucket (lake/, raw/, manifests/, athena-results/)"),
            "SecretId": (self.secret.secret_id, "Put the gateway client_id/client_secret JSON here"),
            "TopicArn": (self.alerts.topic.topic_arn, "Notifications: subscribe, filter on event_type/export"),
            "AthenaWorkGroup": (self.catalog.workgroup.ref, "Athena workgroup to query the lake with"),
            "GlueDatabase": (self.catalog.database_name, "Glue database holding one table per export type"),
            "QueueUrl": (self.pipeline.queue.queue_url, "The copy-jobs queue"),
            "LedgerTable": (self.ledger.table.table_name, "The ledger (one item per export result)"),
            "DashboardName": (self.alerts.dashboard.dashboard_name, "CloudWatch dashboard"),
            "PlannerFunction": (self.pipeline.planner.function_name, "Invoke it to sync now instead of waiting"),
        }
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)
