"""Copier Lambda: an SQS batch of copy jobs, one result each, with partial batch failures."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from exportlake import bootstrap
from exportlake.domain import wording
from exportlake.domain.copying import CopyService
from exportlake.domain.errors import DocumentError, DownloadRefused, HeldElsewhere, ValidationError
from exportlake.domain.limits import MAX_RECEIVES
from exportlake.domain.models import CopyJob
from exportlake.handlers.common import PowertoolsMetrics, bound_waits, logger, metrics, tracer

# Errors no retry can fix: report them at once instead of after every redelivery.
PERMANENT = (DocumentError, ValidationError, DownloadRefused)

#: The copy service of the invocation being handled (the batch's records share it).
_invocation: dict[str, CopyService] = {}

# Report every failed message, even when all of a batch failed: the queue retries each on its own.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@tracer.capture_method
def copy_one(record: SQSRecord) -> None:
    """Copy the result named by one message; raise to hand the message back to the queue."""
    job = CopyJob.from_json(record.body)
    service = _invocation.get("service") or bootstrap.build_copy_service(PowertoolsMetrics(metrics))
    logger.append_keys(export=job.export_name, result_id=job.result_id)
    try:
        outcome = service.copy(job)
    except PERMANENT as exc:
        logger.error("copy failed for good", extra={"error": str(exc)})
        service.fail(job, wording.copy_failure(exc, job.export_name, job.result_id))
        return
    except HeldElsewhere as exc:  # another live copier is on it: try again later, never "failed"
        logger.info("copy held by another copier", extra={"error": str(exc)})
        raise
    except Exception as exc:
        receives = int(record.attributes.approximate_receive_count or 1)
        if receives >= MAX_RECEIVES:
            service.fail(job, wording.copy_failure(exc, job.export_name, job.result_id, attempts=receives))
        logger.warning("copy attempt failed", extra={"error": str(exc), "receives": receives})
        raise
    finally:
        logger.remove_keys(["export", "result_id"])
    if outcome is not None:
        logger.info("copied", extra={"rows": outcome.rows, "table": outcome.table, "location": outcome.location})


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process an SQS batch; failed messages come back as ``batchItemFailures``."""
    bound_waits(context)
    # One copy service per invocation: its table definitions are read once per table for the whole batch.
    _invocation["service"] = bootstrap.build_copy_service(PowertoolsMetrics(metrics), per_invocation=True)
    try:
        response = process_partial_response(event=event, record_handler=copy_one, processor=processor, context=context)
    finally:
        _invocation.clear()
    return dict(response)
