"""Custom resource Lambda: CloudFormation's Create/Update/Delete of one raw Glue table (merged, never a column lost).

Invoked by CloudFormation itself (asynchronously, no retries); always answers at the request's URL: SUCCESS, or
FAILED with the reason, also when its time runs out (the watchdog). See ``exportlake.domain.tableresource``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from exportlake import bootstrap
from exportlake.adapters.cfnresponse import Reply
from exportlake.domain import tableresource
from exportlake.handlers.common import logger

#: Seconds before the Lambda's timeout at which the watchdog answers FAILED (time for its PUT).
WATCHDOG_MARGIN_SECONDS = 20.0


@logger.inject_lambda_context  # never log_event: the ResponseURL is signed
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    """Answer one request; any failure becomes a FAILED response naming it (and the log stream to read)."""
    reply = Reply(event.get("ResponseURL"), log=logger.warning)
    logger.append_keys(request=event.get("RequestType"), resource=event.get("LogicalResourceId"))
    where = f" (log stream {context.log_stream_name})"

    def failed(reason: str) -> dict[str, Any]:
        physical = tableresource.failure_physical_id(event)
        return tableresource.response(event, ok=False, reason=reason[: 900 - len(where)] + where, physical=physical)

    limit = context.get_remaining_time_in_millis() / 1000 - WATCHDOG_MARGIN_SECONDS
    reply.watchdog(
        limit, lambda: failed(f"Glue did not answer within {limit:.0f} s; no column was dropped: deploy again")
    )
    try:
        outcome = tableresource.handle(event, bootstrap.table_catalog, bootstrap.latest_backfill)
    except Exception as exc:
        logger.exception("table request failed")
        reply.send(failed(f"{type(exc).__name__}: {exc}"))
    else:
        logger.info(outcome.summary, extra={"data": outcome.data})
        reply.send(
            tableresource.response(
                event, ok=True, reason=outcome.summary, physical=outcome.physical_id, data=outcome.data
            )
        )
    finally:
        reply.cancel()
