"""The Lambda functions: the planner (lists new results, queues copy jobs), the copier (one job each) and, at
deploy time, the raw tables' custom resource handler (``exportlake.handlers.tables``).

Each gets its own role and log group; the stack grants each role exactly what ``exportlake.iam``
lists for it.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from exportlake.domain.limits import COPIER_TIMEOUT_SECONDS, PLANNER_TIMEOUT_SECONDS
from exportlake.domain.metricnames import NAMESPACE, SERVICE
from infra import bundling
from infra.config import Config

PLANNER_HANDLER = "exportlake.handlers.planner.handler"
COPIER_HANDLER = "exportlake.handlers.copier.handler"
TABLES_HANDLER = "exportlake.handlers.tables.handler"
PLANNER_TIMEOUT = cdk.Duration.seconds(PLANNER_TIMEOUT_SECONDS)
PLANNER_MEMORY_MB = 512
COPIER_TIMEOUT = cdk.Duration.seconds(COPIER_TIMEOUT_SECONDS)
#: A few Glue calls per request, each bounded; the handler's watchdog answers FAILED 20 s before this.
TABLES_TIMEOUT = cdk.Duration.seconds(120)
TABLES_MEMORY_MB = 256
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


class Functions(Construct):
    """Planner and copier, with the same environment (the settings contract); the copier reads the queue. The
    tables function needs none of the settings: each request's properties name its database, table and bucket.

    ``environment`` is the runtime's settings (``exportlake.settings``) without the Powertools variables, which are
    added here.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        code: lambda_.Code,
        environment: dict[str, str],
        queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.log_groups: dict[str, logs.LogGroup] = {}
        self.environment = {
            **environment,
            "POWERTOOLS_SERVICE_NAME": SERVICE,
            "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
        self.planner = self._function(
            "Planner",
            code=code,
            handler=PLANNER_HANDLER,
            description="exportlake planner: lists new export results and queues one copy job per result",
            timeout=PLANNER_TIMEOUT,
            memory_mb=PLANNER_MEMORY_MB,
        )
        self.copier = self._function(
            "Copier",
            code=code,
            handler=COPIER_HANDLER,
            description="exportlake copier: copies one export result into the lake per message",
            timeout=COPIER_TIMEOUT,
            memory_mb=config.copier_memory_mb,
        )
        self.tables = self._function(
            "Tables",
            code=code,
            handler=TABLES_HANDLER,
            description="exportlake raw Glue tables (CloudFormation custom resource): create, merge columns, delete",
            timeout=TABLES_TIMEOUT,
            memory_mb=TABLES_MEMORY_MB,
            # No settings and no Powertools: it loads only the standard library and boto3 (handlers/tables.py).
            environment={},
            tracing=False,
            # CloudFormation invokes it asynchronously: no second run of a request already answered (or to be
            # answered by the resource's service timeout).
            retry_attempts=0,
        )
        # A plain mapping, not SqsEventSource: that one also grants sqs:ChangeMessageVisibility and GetQueueUrl,
        # which the poller does not use; the stack grants the three actions Lambda documents.
        self.copy_jobs_source = lambda_.EventSourceMapping(
            self,
            "CopierCopyJobs",
            target=self.copier,
            event_source_arn=queue.queue_arn,
            batch_size=1,
            report_batch_item_failures=True,
            max_concurrency=config.copy_concurrency,
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
        environment: dict[str, str] | None = None,
        tracing: bool = True,
        retry_attempts: int | None = None,
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            self, f"{name}Logs", retention=LOG_RETENTION, removal_policy=self._config.removal_policy
        )
        self.log_groups[name.lower()] = log_group
        # An own role instead of the AWS managed basic-execution policy: the stack grants it exactly what the
        # function uses (its own log group included).
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"exportlake {name.lower()} function",
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
            environment=self.environment if environment is None else environment,
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
            retry_attempts=retry_attempts,
        )
