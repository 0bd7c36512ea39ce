"""Planner Lambda: invoked by EventBridge Scheduler; enqueues one copy job per new result."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from exportlake import bootstrap
from exportlake.domain.errors import ExportlakeError
from exportlake.domain.planning import PlanRequest
from exportlake.domain.timefmt import utc_now
from exportlake.handlers.common import PowertoolsMetrics, bound_waits, logger, metrics, tracer


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Plan every export; fail the invocation (after planning the others) if any export failed."""
    bound_waits(context)
    request = PlanRequest.from_event(event)  # {} from the schedule; retry / backfill keys when sent by hand
    report = bootstrap.build_planner(PowertoolsMetrics(metrics)).run(
        utc_now(),
        retry_failed=request.retry_failed,
        only_exports=request.only_exports,
        since=request.since,
        remaining=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    summary = {
        "exports": report.exports,
        "enqueued": len(report.enqueued),
        "expired": len(report.expired),
        "errors": report.errors,
        "invalid": len(report.invalid),
        "deferred": len(report.deferred),
    }
    logger.info("planned", extra=summary)
    # What was skipped, by name (for the CLI's summary; already logged one by one and told once each by SNS).
    summary["invalid_items"] = [list(i) for i in report.invalid[:MAX_INVALID_LISTED]]
    if report.errors:
        raise PlanningFailed(f"planning failed for {len(report.errors)} export(s): {'; '.join(report.errors)}", summary)
    return summary


#: Invalid items named in a planner's summary at most (the rest are counted).
MAX_INVALID_LISTED = 50


class PlanningFailed(ExportlakeError):
    """Some exports could not be planned (the others were): the invocation fails, the summary stays known."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message)
        self.summary = summary
