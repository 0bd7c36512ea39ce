"""Every notification exportlake sends, in one place: event types, subjects, payloads and the once-only rule.

Subscribers filter on the ``event_type`` message attribute; the payloads below are the documented contract
(README, "Notifications"). Stdlib only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from exportlake.domain.models import ResultRef, ResultState
from exportlake.domain.timefmt import to_text

if TYPE_CHECKING:
    from exportlake.domain.ports import Ledger, Notifier

RESULT_COPIED = "result.copied"
RESULT_FAILED = "result.failed"
RESULT_EXPIRED = "result.expired"
RESULT_EXPIRING = "result.expiring"
SCHEMA_CHANGED = "schema.changed"
SYNC_FAILED = "sync.failed"
EXPORT_INVALID = "export.invalid"
RESULT_INVALID = "result.invalid"
PERSON_ERASED = "person.erased"
RESULTS_RETIRED = "results.retired"

#: Every event type, in the order the README documents them.
EVENT_TYPES: tuple[str, ...] = (
    RESULT_COPIED,
    RESULT_FAILED,
    RESULT_EXPIRED,
    RESULT_EXPIRING,
    SCHEMA_CHANGED,
    SYNC_FAILED,
    EXPORT_INVALID,
    RESULT_INVALID,
    PERSON_ERASED,
    RESULTS_RETIRED,
)

#: How long a claim to send one notification lasts (a sender that dies lets a retry send it after this, or at
#: once when the sender is provably dead: see ``domain.lease``).
NOTIFY_LEASE_SECONDS = 60


def notify_once(
    ledger: Ledger,
    export_name: str,
    result_id: str,
    state: ResultState,
    send: Callable[[], None],
    *,
    owner: str = "",
    take_over: str = "",
) -> bool:
    """Send a result's notification unless it was sent or is being sent; True if this call sent it.

    Claim (a conditional lease in the ledger), send, then record it as sent; a failed send gives the claim back
    so the next attempt sends it. ``take_over`` names a dead claimant whose claim may be replaced at once.
    """
    if not ledger.claim_notification(
        export_name, result_id, NOTIFY_LEASE_SECONDS, state, owner=owner, take_over=take_over
    ):
        return False
    try:
        send()
    except BaseException:
        ledger.release_notification(export_name, result_id)
        raise
    ledger.mark_notified(export_name, result_id)
    return True


def result_copied(
    notifier: Notifier,
    *,
    export_name: str,
    result_id: str,
    rows: int,
    size: int,
    created_at: str,
    location: str,
    athena_table: str,
    manifest: str,
) -> None:
    """``result.copied``: a result's rows are in the lake and registered (sent at least once per result)."""
    notifier.publish(
        RESULT_COPIED,
        export_name,
        f"exportlake: {rows} rows of {export_name} landed in {athena_table.rsplit('.', 1)[-1]}",
        {
            "export": export_name,
            "result_id": result_id,
            "rows": rows,
            "bytes": size,
            "created_at": created_at,
            "s3_location": location,
            "athena_table": athena_table,
            "manifest": manifest,
        },
    )


def result_failed(notifier: Notifier, export_name: str, result_id: str, error: str) -> None:
    """``result.failed``: copying the result failed for good (retries exhausted, or an error no retry fixes)."""
    notifier.publish(
        RESULT_FAILED,
        export_name,
        f"exportlake: copying result {result_id} of {export_name} failed",
        {"export": export_name, "result_id": result_id, "error": error[:1000]},
    )


def result_expired(notifier: Notifier, export_name: str, result_id: str, created_at: str, expires_at: str) -> None:
    """``result.expired``: the result expired on the gateway before it could be copied."""
    notifier.publish(
        RESULT_EXPIRED,
        export_name,
        f"exportlake: result {result_id} of {export_name} expired before it was copied",
        {"export": export_name, "result_id": result_id, "created_at": created_at, "expires_at": expires_at or None},
    )


def result_expiring(notifier: Notifier, ref: ResultRef, state: str, now: datetime) -> None:
    """``result.expiring``: a result not copied yet expires soon (sent once per result)."""
    expires = ref.expires_at or now
    notifier.publish(
        RESULT_EXPIRING,
        ref.export_name,
        f"exportlake: result {ref.result_id} of {ref.export_name} expires before it is copied",
        {
            "export": ref.export_name,
            "result_id": ref.result_id,
            "created_at": to_text(ref.created_at),
            "expires_at": to_text(expires),
            "hours_left": round((expires - now).total_seconds() / 3600, 1),
            "state": state,
        },
    )


def schema_changed(
    notifier: Notifier,
    *,
    export_name: str,
    result_id: str,
    athena_table: str,
    added: Sequence[str],
    missing: Sequence[str],
    columns: Sequence[str],
) -> None:
    """``schema.changed``: a result's fields differ from its table's columns (sent before the table changes)."""
    notifier.publish(
        SCHEMA_CHANGED,
        export_name,
        f"exportlake: the fields of {export_name} differ from table {athena_table.rsplit('.', 1)[-1]}",
        {
            "export": export_name,
            "result_id": result_id,
            "athena_table": athena_table,
            "added_fields": list(added),
            "missing_fields": list(missing),
            "table_columns": list(columns),
        },
    )


def sync_failed(notifier: Notifier, cause: str, error: str, fix: str) -> None:
    """``sync.failed``: a whole run failed (credentials, secret, gateway down); sent once per cause."""
    notifier.publish(
        SYNC_FAILED,
        "",
        f"exportlake: sync failed: {cause}",
        {"cause": cause, "error": error[:1000], "fix": fix},
    )


def item_invalid(notifier: Notifier, event_type: str, export_name: str, item: str, error: str) -> None:
    """``export.invalid`` / ``result.invalid``: one item from the API failed validation and was skipped."""
    what = "an export" if event_type == EXPORT_INVALID else f"a result of {export_name}"
    notifier.publish(
        event_type,
        export_name,
        f"exportlake: skipped {what}: it failed validation",
        {"export": export_name or None, "item": item[:500], "error": error[:1000]},
    )


#: The fields of ``person.erased``: counts and result ids only (no id, no person key: a hash is personal data too).
PERSON_ERASED_FIELDS = (
    "request_id",
    "persons",
    "results",
    "rows_removed",
    "objects_deleted",
    "versions_deleted",
    "suppressed_added",
    "at",
)


def person_erased(notifier: Notifier, record: Mapping[str, Any]) -> None:
    """``person.erased``: an erasure request removed persons from every result, copy and version (once)."""
    rows = record.get("rows_removed") or {}
    total = sum(rows.values()) if isinstance(rows, Mapping) else 0
    results = record.get("results") or []
    notifier.publish(
        PERSON_ERASED,
        "",
        f"exportlake: erasure {record.get('request_id')} removed {total} records from {len(results)} results",
        {k: record.get(k) for k in PERSON_ERASED_FIELDS},
    )


def results_retired(notifier: Notifier, record: Mapping[str, Any]) -> None:
    """``results.retired``: a retention run removed results older than ``lakeRetentionDays`` (whole, every version)."""
    notifier.publish(
        RESULTS_RETIRED,
        "",
        f"exportlake: {record.get('results')} results created before {record.get('created_before')} were removed",
        dict(record),
    )
