"""Custom resource Lambda: CloudFormation's Create/Update/Delete of one raw Glue table (merged, never a column lost).

Invoked by CloudFormation itself (asynchronously, no retries); always answers at the request's URL: SUCCESS, or
FAILED with the reason, also when its time runs out (the watchdog) and when its own code fails to import. See
``exportlake.domain.tableresource``.

It imports only what it needs, and at module level only the standard library and the stdlib-only answer to
CloudFormation: boto3, the Glue adapter and the domain are imported inside the request, so that a failure there is
answered like any other (a Create that is never answered, and then its rollback's Delete, would leave the stack in
ROLLBACK_FAILED). It never imports the composition root, Powertools or the copier's dependencies.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from exportlake.adapters import cfnresponse

#: Seconds before the Lambda's timeout at which the watchdog answers FAILED (time for its PUT).
WATCHDOG_MARGIN_SECONDS = 20.0
#: A refusal (AccessDenied) is retried this long: a grant made in the same deploy (a new table's name in the role's
#: policy, a Lake Formation grant) takes effect a few seconds after CloudFormation reports it created.
ACCESS_RETRY_SECONDS = 60.0
_FIRST_PAUSE_SECONDS = 1.0
_MAX_PAUSE_SECONDS = 10.0
_DENIED = frozenset({"AccessDenied", "AccessDeniedException"})

log = logging.getLogger("exportlake.tables")


def _json_lines() -> None:
    # One JSON object per line, as the other functions log (Powertools is not loaded here).
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter('{"level":"%(levelname)s","message":%(message)s}'))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


_json_lines()


def _info(message: str, **data: Any) -> None:
    log.info(json.dumps(message if not data else f"{message} {json.dumps(data, default=str)}"))


def _warning(message: str) -> None:
    log.warning(json.dumps(message))


#: Deploy time: every Glue call bounded (a stack waits on it), few retries; the watchdog bounds the rest.
_CLIENT_CONFIG = {"connect_timeout": 5, "read_timeout": 15, "retries": {"mode": "standard", "max_attempts": 3}}


@functools.cache
def _glue() -> Any:
    import boto3  # noqa: PLC0415 - inside the request: an import failure is answered
    from botocore.config import Config  # noqa: PLC0415

    return boto3.session.Session().client("glue", config=Config(**_CLIENT_CONFIG))


def table_catalog(database: str, bucket: str) -> Any:
    """The catalog of ``database`` as the resource uses it (tables located in ``bucket``)."""
    from exportlake.adapters.catalog import GlueCatalog  # noqa: PLC0415 - inside the request, as boto3

    return GlueCatalog(_glue(), database, bucket)


def latest_backfill(database: str, bucket: str) -> Callable[[str], int]:
    """Table → latest-result pointers backfilled (``domain.latest``): the upgrade deploy writes missing ones."""
    import boto3  # noqa: PLC0415 - inside the request, as above
    from botocore.config import Config  # noqa: PLC0415

    from exportlake.adapters.lakestore import S3LakeStore  # noqa: PLC0415
    from exportlake.domain import latest  # noqa: PLC0415

    catalog = table_catalog(database, bucket)
    store = S3LakeStore(boto3.session.Session().client("s3", config=Config(**_CLIENT_CONFIG)), bucket)
    return lambda table: len(latest.backfill_table(store, table, catalog.partition_values(table)))


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, Mapping) else ""


def in_words(exc: BaseException) -> str:
    """A failure as one line for the stack's events: the error's own message, never its class name."""
    code = _error_code(exc)
    if code:
        operation = getattr(exc, "operation_name", "") or "the call"
        message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")).strip()
        return f"Glue refused {operation} ({code}): {message}" if message else f"Glue refused {operation} ({code})"
    text = str(exc).strip().splitlines()
    return text[0] if text else "unexpected failure"


#: Time, as the retry reads it (tests replace them).
_clock: Callable[[], float] = time.monotonic
_sleep: Callable[[float], None] = time.sleep


def handle_retrying(run: Callable[[], Any], *, budget: float) -> Any:
    """``run()`` again while it is refused (AccessDenied) and ``budget`` seconds are not spent; the request is
    idempotent (create-or-merge, a delete of a missing table is done), so running it again is safe."""
    start = _clock()
    pause = _FIRST_PAUSE_SECONDS
    while True:
        try:
            return run()
        except Exception as exc:
            waited = _clock() - start
            if _error_code(exc) not in _DENIED or waited + pause > budget:
                raise
            _warning(f"access denied, retrying in {pause:.0f} s (grants take a few seconds to apply): {exc}")
            _sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE_SECONDS)


def _denied_fix(exc: BaseException, seconds: float) -> str:
    return (
        f"{in_words(exc)}; still refused after {seconds:.0f} s: if the account governs its Data Catalog with Lake "
        "Formation, deploy with lakeFormation=true (docs/deploy.md#2-lake-formation)"
    )


def handler(event: dict[str, Any], context: Any) -> None:
    """Answer one request; any failure (an import included) becomes a FAILED response naming it and the log stream.
    A Delete the code cannot even load for leaves its table in place and says so: the stack can always roll back."""
    try:
        reply = cfnresponse.Reply(event.get("ResponseURL"), log=_warning)
    except cfnresponse.ResponseUrlError as exc:
        _warning(f"request not answered: {exc}")
        return
    where = f" (log stream {getattr(context, 'log_stream_name', '?')})"

    def failed(reason: str) -> dict[str, Any]:
        physical = cfnresponse.failure_physical_id(event)
        text = reason[: cfnresponse.MAX_REASON - len(where)] + where
        return cfnresponse.body(event, ok=False, reason=text, physical=physical)

    remaining = context.get_remaining_time_in_millis() / 1000 - WATCHDOG_MARGIN_SECONDS
    reply.watchdog(
        remaining, lambda: failed(f"Glue did not answer within {remaining:.0f} s; no column was dropped: deploy again")
    )
    _info("request", request=event.get("RequestType"), resource=event.get("LogicalResourceId"))
    try:
        budget = min(ACCESS_RETRY_SECONDS, max(remaining - 15.0, 0.0))
        try:
            from exportlake.domain import tableresource  # noqa: PLC0415 - inside the request, as boto3

            outcome = handle_retrying(
                lambda: tableresource.handle(event, table_catalog, latest_backfill), budget=budget
            )
        except ImportError as exc:  # the code cannot load (here or inside the request): answer anyway
            log.exception(json.dumps("the table resource's code failed to import"))
            reply.send(_unloadable(event, exc, where))
        except Exception as exc:
            log.exception(json.dumps("table request failed"))
            reason = _denied_fix(exc, budget) if _error_code(exc) in _DENIED else in_words(exc)
            reply.send(failed(reason))
        else:
            _info(outcome.summary, data=outcome.data)
            reply.send(
                cfnresponse.body(
                    event, ok=True, reason=outcome.summary, physical=outcome.physical_id, data=outcome.data
                )
            )
    finally:
        reply.cancel()


def _unloadable(event: Mapping[str, Any], exc: BaseException, where: str) -> dict[str, Any]:
    why = f"the table function's code failed to load ({exc})"
    if event.get("RequestType") == "Delete":
        physical = str(event.get("PhysicalResourceId") or "")
        reason = f"{why}; left the table {physical} in place (delete it in Glue if it should go){where}"
        return cfnresponse.body(event, ok=True, reason=reason, physical=physical)
    reason = f"{why}: redeploy; report it if it persists{where}"
    return cfnresponse.body(event, ok=False, reason=reason, physical=cfnresponse.failure_physical_id(event))
