"""Erasure, deployed: the salt of person keys, the erase-jobs queue and the eraser function that works it.

A request reaches the eraser by a direct invoke (``exportlake erase --deployed``); its ``find`` and ``erase`` jobs go
through the queue, so a large lake is erased by many invocations in parallel (``copyConcurrency`` at most), each
bounded by the function's timeout.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from exportlake.domain.erasure import SALT_BYTES
from exportlake.domain.metricnames import NAMESPACE, SERVICE
from infra import bundling
from infra.config import Config
from infra.constructs.queue import DLQ_RETENTION, RETENTION, private_queue

ERASER_HANDLER = "exportlake.handlers.eraser.handler"
ERASER_TIMEOUT = cdk.Duration.seconds(900)
ERASER_MEMORY_MB = 1769
#: Deliveries of one erase job (a result still being copied comes back each time) before it waits in the DLQ.
ERASE_RECEIVES = 10


class PrivacySalt(Construct):
    """The secret holding the salt of person keys: generated at deploy time, never in code, kept with the data."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            description="exportlake: salt of person keys (erasure, suppression); never change it",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                exclude_punctuation=True, password_length=2 * SALT_BYTES
            ),
            removal_policy=config.removal_policy,
        )


class Eraser(Construct):
    """The erase-jobs queue (with its DLQ) and the eraser function consuming it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        code: lambda_.Code,
        environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.dlq = private_queue(self, "Dlq", retention_period=DLQ_RETENTION)
        self.queue = private_queue(
            self,
            "Queue",
            visibility_timeout=ERASER_TIMEOUT,
            retention_period=RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=ERASE_RECEIVES),
        )
        self.log_group = logs.LogGroup(
            self, "EraserLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=config.removal_policy
        )
        role = iam.Role(
            self,
            "EraserRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="exportlake eraser function",
        )
        self.function = lambda_.Function(
            self,
            "Eraser",
            code=code,
            handler=ERASER_HANDLER,
            runtime=bundling.RUNTIME,
            architecture=bundling.ARCHITECTURE,
            description="exportlake eraser: takes erasure requests and rewrites one result per erase job",
            timeout=ERASER_TIMEOUT,
            memory_size=ERASER_MEMORY_MB,
            environment={
                **environment,
                "EXPORTLAKE_ERASE_QUEUE_URL": self.queue.queue_url,
                "POWERTOOLS_SERVICE_NAME": SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
            role=role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
        )
        self.jobs_source = lambda_.EventSourceMapping(
            self,
            "EraserEraseJobs",
            target=self.function,
            event_source_arn=self.queue.queue_arn,
            batch_size=1,
            report_batch_item_failures=True,
            max_concurrency=max(2, config.copy_concurrency),
        )
        if config.lake_retention_days:
            # Daily: the eraser queues one retire job per result older than lakeRetentionDays.
            self.retention = events.Rule(
                self,
                "Retention",
                description="exportlake: remove results older than lakeRetentionDays",
                schedule=events.Schedule.rate(cdk.Duration.days(1)),
                targets=[
                    targets.LambdaFunction(
                        self.function, event=events.RuleTargetInput.from_object({"action": "retire"}), retry_attempts=2
                    )
                ],
            )
