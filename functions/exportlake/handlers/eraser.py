"""Eraser Lambda: takes an erasure request (invoked by ``exportlake erase --deployed``) and works its jobs.

A request is validated and hashed at once (the clear ids live only in this invocation), its persons are put on the
suppression list, and one ``find`` job per export goes to the erase-jobs queue. A ``find`` job looks its export's
results up in their id indexes and sends one ``erase`` job per result that holds a person; an ``erase`` job
rewrites that one result. So a large lake is worked in parallel by the queue's event source, never in one long
invocation. The job that settles the request's last open job writes the audit record and announces it.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from exportlake import bootstrap
from exportlake.domain.erasure import MAX_IDS, validate_person_id
from exportlake.domain.errors import HeldElsewhere, ValidationError
from exportlake.domain.timefmt import utc_now
from exportlake.handlers.common import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _ids(event: dict[str, Any], name: str) -> list[str]:
    values = event.get(name, [])
    if not isinstance(values, list):
        raise ValidationError(f"{name} must be a list of ids")
    return [validate_person_id(v, name) for v in values]


def intake(event: dict[str, Any]) -> dict[str, Any]:
    """Validate a request, suppress its persons, queue one find job per export; answer the request id.

    ``{"action": "retire"}`` (the daily schedule, with ``lakeRetentionDays`` set) queues one retire job per result
    older than the retention period instead.
    """
    if event.get("action") == "retire":
        return bootstrap.erase_jobs().retire(bootstrap.settings().lake_retention_days, utc_now())
    users, clients = _ids(event, "user_ids"), _ids(event, "client_ids")
    if (not users and not clients) or len(users) + len(clients) > MAX_IDS:
        raise ValidationError(f"an erasure request names 1 to {MAX_IDS} ids")
    jobs = bootstrap.erase_jobs()
    if event.get("dry_run"):
        return jobs.dry_run(users, clients)
    return jobs.open(users, clients)


@tracer.capture_method
def work_one(record: SQSRecord) -> None:
    """One ``find`` or ``erase`` job; raise to hand it back to the queue (a result still being copied)."""
    job = json.loads(record.body)
    done = bootstrap.erase_jobs().work(job)
    if not done:
        raise HeldElsewhere(f"result {job.get('export')}/{job.get('result_id')} is being copied or erased")


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """An SQS batch of erase jobs, or a request invoked directly."""
    if "Records" in event:
        return dict(
            process_partial_response(event=event, record_handler=work_one, processor=processor, context=context)
        )
    return intake(event)
