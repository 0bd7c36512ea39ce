"""The copy-jobs queue (one message per export result) and its dead-letter queue."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from exportlake.domain.limits import MAX_RECEIVES, VISIBILITY_TIMEOUT_SECONDS

#: The runtime's own limits: the copier reports result.failed on the last delivery, so the DLQ's maxReceiveCount
#: must be the number it counts to. The visibility timeout is explained where it is defined (domain/limits.py):
#: at least the copier's timeout, not six times it, so a killed copier's job comes back within minutes.
VISIBILITY_TIMEOUT = cdk.Duration.seconds(VISIBILITY_TIMEOUT_SECONDS)
MAX_RECEIVE_COUNT = MAX_RECEIVES
RETENTION = cdk.Duration.days(4)
DLQ_RETENTION = cdk.Duration.days(14)


def private_queue(scope: Construct, construct_id: str, **props: object) -> sqs.Queue:
    """An SQS queue with SSE (SQS-managed keys) that refuses non-TLS requests; queues hold no data worth keeping."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        removal_policy=cdk.RemovalPolicy.DESTROY,
        **props,  # type: ignore[arg-type]
    )


class CopyQueue(Construct):
    """SQS copy-jobs and its DLQ: after ``MAX_RECEIVES`` deliveries a job waits in the DLQ (alarmed)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.dlq = private_queue(self, "Dlq", retention_period=DLQ_RETENTION)
        self.queue = private_queue(
            self,
            "Queue",
            visibility_timeout=VISIBILITY_TIMEOUT,
            retention_period=RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=MAX_RECEIVE_COUNT),
        )
