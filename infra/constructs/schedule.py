"""What runs the planner and what catches a run that did not happen or failed.

EventBridge Scheduler invokes the planner asynchronously: a refused invoke goes to the schedule's DLQ, and an
invocation that still fails after Lambda's async retries goes to the planner's on-failure queue (both alarmed).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from constructs import Construct

from infra.config import Config
from infra.constructs.queue import DLQ_RETENTION, private_queue

SCHEDULE_RETRY_ATTEMPTS = 3
#: A run that could not start within the hour is dropped: the next scheduled one does the same work.
MAX_EVENT_AGE = cdk.Duration.hours(1)
#: Lambda's async retries of a failed planner run (its default, stated): the run is idempotent.
PLANNER_ASYNC_RETRIES = 2


class Schedule(Construct):
    """The schedule, its DLQ, and the planner's async-invoke configuration with its on-failure queue."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config, planner: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        self.dlq = private_queue(self, "Dlq", retention_period=DLQ_RETENTION)
        self.failed_runs = private_queue(self, "FailedRuns", retention_period=DLQ_RETENTION)
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description="exportlake: run the planner",
            schedule=scheduler.ScheduleExpression.expression(config.schedule, cdk.TimeZone.of(config.time_zone)),
            target=targets.LambdaInvoke(
                planner,
                input=scheduler.ScheduleTargetInput.from_object({"source": "exportlake.schedule"}),
                dead_letter_queue=self.dlq,
                retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
            ),
        )
        # The L1, not EventInvokeConfig + SqsDestination: that destination also grants GetQueueAttributes and
        # GetQueueUrl; the stack grants the planner's role sqs:SendMessage on this queue only. It references the
        # function, which depends on its role's policy: Lambda checks the permission when this is created.
        self.async_config = lambda_.CfnEventInvokeConfig(
            self,
            "PlannerAsyncInvoke",
            function_name=planner.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=PLANNER_ASYNC_RETRIES,
            maximum_event_age_in_seconds=int(MAX_EVENT_AGE.to_seconds()),
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(destination=self.failed_runs.queue_arn)
            ),
        )
