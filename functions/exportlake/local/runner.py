"""The local stand-in for the Lambda service: invokes the real handlers with real event shapes.

The planner gets an EventBridge Scheduler event; the copier gets SQS batches received from the (moto) queue,
and what it reports in ``batchItemFailures`` goes back on the queue, as the SQS event source mapping does.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exportlake import bootstrap
from exportlake.domain.limits import MAX_RECEIVES
from exportlake.domain.models import ResultState
from exportlake.settings import queue_name

MAX_ROUNDS = 10_000  # a bound on the drain loop, far above any real queue


@dataclass
class LocalContext:
    """What Powertools reads from a Lambda context object."""

    function_name: str
    memory_limit_in_mb: int = 1769
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "local"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


def scheduler_event() -> dict[str, Any]:
    """The event EventBridge Scheduler's Lambda target sends (its default input)."""
    return {}


def sqs_event(messages: list[dict[str, Any]], queue_url: str, region: str) -> dict[str, Any]:
    """The event an SQS event source mapping sends for ``messages`` (from ``receive_message``)."""
    arn = f"arn:aws:sqs:{region}:123456789012:{queue_name(queue_url)}"
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    k: {
                        "stringValue": v.get("StringValue"),
                        "binaryValue": None,
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": v.get("DataType", "String"),
                    }
                    for k, v in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


@dataclass
class SyncReport:
    """What one local sync did."""

    planned: dict[str, Any] = field(default_factory=dict)
    planner_error: str = ""
    invocations: int = 0
    copied: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    retried: int = 0

    @property
    def ok(self) -> bool:
        """True when everything copyable was copied."""
        return not self.failed and not self.planner_error


def run_planner(retry_failed: bool = False) -> dict[str, Any]:
    """Invoke the planner handler once."""
    from exportlake.handlers import planner

    event = scheduler_event()
    if retry_failed:
        event["retry_failed"] = True
    result: dict[str, Any] = planner.handler(event, LocalContext("exportlake-planner"))
    return result


def run_selected_planner(
    retry_failed: bool, only_exports: frozenset[str] | None, since: datetime | None, dry_run: bool
) -> dict[str, Any]:
    """The planner service itself, for a backfill or a dry run (filters the scheduled handler never gets)."""
    from exportlake.domain.errors import ExportlakeError
    from exportlake.domain.naming import now_utc
    from exportlake.domain.ports import NullMetrics

    report = bootstrap.planner(NullMetrics()).run(
        now_utc(), retry_failed=retry_failed, only_exports=only_exports, since=since, dry_run=dry_run
    )
    summary: dict[str, Any] = {
        "exports": report.exports,
        "enqueued": 0 if dry_run else len(report.enqueued),
        "expired": 0 if dry_run else len(report.expired),
        "errors": report.errors,
    }
    if dry_run:
        summary["would_copy"] = list(report.enqueued)
    if report.errors:
        raise ExportlakeError(f"planning failed for {len(report.errors)} export(s): {'; '.join(report.errors)}")
    return summary


def drain_queue(
    batch_size: int = 10, on_batch: Callable[[Sequence[tuple[str, str]]], None] | None = None
) -> tuple[int, int, set[tuple[str, str]]]:
    """Feed the copy-jobs queue to the copier handler until it is empty.

    Returns (invocations, retried messages, jobs seen). Failed messages are made visible again at once, so a job
    is retried up to the queue's ``maxReceiveCount`` and then lands in the dead-letter queue.
    """
    from exportlake.handlers import copier

    settings = bootstrap.settings()
    sqs = bootstrap.client("sqs")
    region = sqs.meta.region_name
    invocations = retried = 0
    seen: set[tuple[str, str]] = set()
    for _ in range(MAX_ROUNDS):
        messages = sqs.receive_message(
            QueueUrl=settings.queue_url,
            MaxNumberOfMessages=batch_size,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            break
        for m in messages:
            body = json.loads(m["Body"])
            seen.add((str(body.get("export_name")), str(body.get("result_id"))))
        try:
            response = copier.handler(
                sqs_event(messages, settings.queue_url, region), LocalContext("exportlake-copier")
            )
            failed_ids = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:  # a failed invocation returns the whole batch to the queue, as Lambda does
            failed_ids = {m["MessageId"] for m in messages}
        invocations += 1
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        if on_batch is not None:
            on_batch([(str(b.get("export_name")), str(b.get("result_id"))) for b in map(_body, done)])
        for i in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=settings.queue_url,
                Entries=[{"Id": str(j), "ReceiptHandle": m["ReceiptHandle"]} for j, m in enumerate(done[i : i + 10])],
            )
        for m in messages:
            if m["MessageId"] in failed_ids:
                retried += 1
                receives = int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
                if receives >= MAX_RECEIVES:
                    # What the redrive policy does on the next receive; done here so the loop ends at once.
                    _to_dead_letter(sqs, settings.queue_url, m)
                else:
                    sqs.change_message_visibility(
                        QueueUrl=settings.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
    return invocations, retried, seen


def _body(message: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(message["Body"])
    return body if isinstance(body, dict) else {}


def _to_dead_letter(sqs: Any, queue_url: str, message: dict[str, Any]) -> None:
    dlq_url = sqs.get_queue_url(QueueName=f"{queue_name(queue_url)}-dlq")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq_url, MessageBody=message["Body"])
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def sync(
    retry_failed: bool = False,
    *,
    only_exports: frozenset[str] | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
    on_planned: Callable[[dict[str, Any]], None] | None = None,
    on_batch: Callable[[Sequence[tuple[str, str]]], None] | None = None,
) -> SyncReport:
    """Plan, then run every copy job to completion, as the deployed pipeline would.

    ``only_exports``/``since`` limit the plan (a backfill); ``dry_run`` plans without writing or copying.
    ``on_planned`` and ``on_batch`` report progress (the plan's summary; each copier invocation's results).
    """
    report = SyncReport()
    try:
        if only_exports is None and since is None and not dry_run:
            report.planned = run_planner(retry_failed)
        else:
            report.planned = run_selected_planner(retry_failed, only_exports, since, dry_run)
    except Exception as exc:  # the planner plans every export it can before it raises; copy those anyway
        report.planner_error = str(exc)
    if dry_run:
        return report
    if on_planned is not None:
        on_planned(report.planned)
    report.invocations, report.retried, seen = drain_queue(on_batch=on_batch)
    ledger = bootstrap.ledger()
    for export_name, result_id in sorted(seen):
        entry = ledger.get(export_name, result_id)
        if entry is not None and entry.state == ResultState.COPIED:
            report.copied.append((export_name, result_id))
        else:
            state = entry.state.value if entry else "missing"
            report.failed.append((export_name, result_id, entry.error if entry and entry.error else state))
    return report
