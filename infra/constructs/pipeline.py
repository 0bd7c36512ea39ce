"""The pipeline: Scheduler → planner → SQS copy-jobs → copier, with least-privilege grants."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from exportlake.domain.limits import COPIER_TIMEOUT_SECONDS, MAX_RECEIVES, PLANNER_TIMEOUT_SECONDS
from exportlake.domain.schemas import MANIFESTS_PREFIX, RAW_PREFIX, TABLES_PREFIX
from infra import bundling
from infra.config import Config
from infra.constructs.lake import removal_policy

SERVICE = "exportlake"
PLANNER_HANDLER = "exportlake.handlers.planner.handler"
COPIER_HANDLER = "exportlake.handlers.copier.handler"
# The runtime's own limits: the copier reports result.failed on the last delivery, so the DLQ's
# maxReceiveCount must be the number it counts to; its lease outlives the timeout.
PLANNER_TIMEOUT = cdk.Duration.seconds(PLANNER_TIMEOUT_SECONDS)
PLANNER_MEMORY_MB = 512
COPIER_TIMEOUT = cdk.Duration.seconds(COPIER_TIMEOUT_SECONDS)
#: AWS guidance for an SQS event source: visibility timeout at least six times the function timeout.
VISIBILITY_TIMEOUT = cdk.Duration.minutes(COPIER_TIMEOUT.to_minutes() * 6)
MAX_RECEIVE_COUNT = MAX_RECEIVES
DLQ_RETENTION = cdk.Duration.days(14)
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
SCHEDULE_RETRY_ATTEMPTS = 3
SCHEDULE_MAX_EVENT_AGE = cdk.Duration.hours(1)
#: What the copier does to the lake bucket: list, read, write (multipart included) and delete objects.
S3_BUCKET_ACTIONS = ("s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:GetBucketLocation")
S3_OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)
COPIER_PREFIXES = (TABLES_PREFIX, RAW_PREFIX, MANIFESTS_PREFIX)
#: What the copier does to the catalog: read the database, create/update a table, register partitions.
GLUE_COPIER_ACTIONS = (
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:CreateTable",
    "glue:UpdateTable",
    "glue:GetPartition",
    "glue:GetPartitions",
    "glue:BatchCreatePartition",
    "glue:CreatePartition",
)


class Pipeline(Construct):
    """The two functions, the copy-jobs queue and its DLQ, and the schedule with its own DLQ."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        code: lambda_.Code,
        bucket: s3.IBucket,
        ledger: dynamodb.ITable,
        secret: secretsmanager.ISecret,
        secret_id: str,
        topic: sns.ITopic,
        glue_database: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        queue_common = {
            "encryption": sqs.QueueEncryption.SQS_MANAGED,
            "enforce_ssl": True,
            "removal_policy": cdk.RemovalPolicy.DESTROY,
        }
        self.copy_dlq = sqs.Queue(self, "CopyJobsDlq", retention_period=DLQ_RETENTION, **queue_common)  # type: ignore[arg-type]
        self.queue = sqs.Queue(
            self,
            "CopyJobs",
            visibility_timeout=VISIBILITY_TIMEOUT,
            retention_period=cdk.Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.copy_dlq, max_receive_count=MAX_RECEIVE_COUNT),
            **queue_common,  # type: ignore[arg-type]
        )
        self.schedule_dlq = sqs.Queue(self, "ScheduleDlq", retention_period=DLQ_RETENTION, **queue_common)  # type: ignore[arg-type]

        environment = {
            "EXPORTLAKE_GATEWAY_URL": config.gateway_url,
            "EXPORTLAKE_SECRET_ID": secret_id,
            "EXPORTLAKE_BUCKET": bucket.bucket_name,
            "EXPORTLAKE_GLUE_DATABASE": glue_database,
            "EXPORTLAKE_LEDGER_TABLE": ledger.table_name,
            "EXPORTLAKE_TOPIC_ARN": topic.topic_arn,
            "EXPORTLAKE_QUEUE_URL": self.queue.queue_url,
            "EXPORTLAKE_DOWNLOAD_HOSTS": ",".join(config.download_hosts),
            "POWERTOOLS_SERVICE_NAME": SERVICE,
            "POWERTOOLS_METRICS_NAMESPACE": SERVICE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        self.planner = self._function(
            "Planner",
            code=code,
            handler=PLANNER_HANDLER,
            description="exportlake planner: lists new export results and queues one copy job per result",
            timeout=PLANNER_TIMEOUT,
            memory_mb=PLANNER_MEMORY_MB,
            environment=environment,
            config=config,
        )
        self.copier = self._function(
            "Copier",
            code=code,
            handler=COPIER_HANDLER,
            description="exportlake copier: copies one export result into the lake per message",
            timeout=COPIER_TIMEOUT,
            memory_mb=config.copier_memory_mb,
            environment=environment,
            config=config,
        )
        self.copier.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=1,
                report_batch_item_failures=True,
                max_concurrency=config.copy_concurrency,
            )
        )

        # Grants: both functions read the secret, keep the ledger and notify; only the planner queues jobs; only
        # the copier touches the bucket and the catalog.
        for fn in (self.planner, self.copier):
            secret.grant_read(fn)
            ledger.grant_read_write_data(fn)
            topic.grant_publish(fn)
        self.queue.grant_send_messages(self.planner)
        # Explicit S3 actions (no s3:*Object* wildcards), on the prefixes the copier writes: never athena-results/.
        self.copier.add_to_role_policy(
            iam.PolicyStatement(
                sid="LakeBucket",
                actions=list(S3_BUCKET_ACTIONS),
                resources=[bucket.bucket_arn],
            )
        )
        self.copier.add_to_role_policy(
            iam.PolicyStatement(
                sid="LakeObjects",
                actions=list(S3_OBJECT_ACTIONS),
                resources=[bucket.arn_for_objects(f"{prefix}/*") for prefix in COPIER_PREFIXES],
            )
        )
        self.copier.add_to_role_policy(
            iam.PolicyStatement(
                sid="GlueCatalogOfTheLake",
                actions=list(GLUE_COPIER_ACTIONS),
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    stack.format_arn(service="glue", resource="database", resource_name=glue_database),
                    stack.format_arn(service="glue", resource="table", resource_name=f"{glue_database}/*"),
                ],
            )
        )

        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description="exportlake: run the planner",
            schedule=scheduler.ScheduleExpression.expression(config.schedule, cdk.TimeZone.of(config.time_zone)),
            target=targets.LambdaInvoke(
                self.planner,
                input=scheduler.ScheduleTargetInput.from_object({"source": "exportlake.schedule"}),
                dead_letter_queue=self.schedule_dlq,
                retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                max_event_age=SCHEDULE_MAX_EVENT_AGE,
            ),
        )

    def _function(
        self,
        name: str,
        *,
        code: lambda_.Code,
        handler: str,
        description: str,
        timeout: cdk.Duration,
        memory_mb: int,
        environment: dict[str, str],
        config: Config,
    ) -> lambda_.Function:
        log_group = logs.LogGroup(self, f"{name}Logs", retention=LOG_RETENTION, removal_policy=removal_policy(config))
        # An own role instead of the AWS managed basic-execution policy: logs go to this function's group only.
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"exportlake {name.lower()} function",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="OwnLogGroup",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        return lambda_.Function(
            self,
            name,
            code=code,
            handler=handler,
            runtime=bundling.RUNTIME,
            architecture=bundling.ARCHITECTURE,
            description=description,
            timeout=timeout,
            memory_size=memory_mb,
            environment=environment,
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
        )
