"""The ledger: one DynamoDB item per export result, moved between states with conditional writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from exportlake.adapters.ledgerindex import EXPIRING_MARK, UNFINISHED, LedgerIndex, entry_of
from exportlake.domain.errors import LeaseLost
from exportlake.domain.models import CopyJob, ResultRef, ResultState
from exportlake.domain.ports import ExportState, LedgerEntry
from exportlake.domain.timefmt import now_text, to_text, utc_now


def _s(state: ResultState) -> dict[str, str]:
    return {"S": state.value}


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _names_values(condition: str, values: dict[str, Any]) -> dict[str, Any]:
    """The expression names and values a put's condition uses (DynamoDB refuses unused ones)."""
    out: dict[str, Any] = {}
    if "#s" in condition:
        out["ExpressionAttributeNames"] = {"#s": "state"}
    if values:
        out["ExpressionAttributeValues"] = values
    return out


class DynamoLedger:
    """Ledger on a table keyed by ``export_name`` (hash) and ``result_id`` (range)."""

    def __init__(self, dynamodb_client: Any, table: str):
        self._db = dynamodb_client
        self._table = table
        # Its calls are its own (listed under LedgerIndex in exportlake.iam), made on this same client.
        self._index = LedgerIndex(self._db, table)

    # -- reads that do not grow with history (adapters.ledgerindex) ------------------------------------------
    def open_entries(self, export_name: str) -> dict[str, LedgerEntry]:
        """The export's unfinished entries (the sparse index)."""
        return self._index.open_entries(export_name)

    def adopt(self, export_name: str) -> int:
        """Index the export's unfinished entries written before the index existed."""
        return self._index.adopt(export_name)

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LedgerEntry]:
        """The existing entries of ``keys``, read in batches."""
        return self._index.get_many(keys)

    def export_states(self) -> dict[str, ExportState]:
        """Every export's watermark and reconciliation cursor."""
        return self._index.export_states()

    def save_export_state(self, state: ExportState) -> None:
        """Write one export's watermark and reconciliation cursor."""
        self._index.save_export_state(state)

    # -- reads ------------------------------------------------------------------------------------------------
    def entries(self, export_name: str) -> dict[str, LedgerEntry]:
        """Every ledger entry of one export, by result id."""
        out: dict[str, LedgerEntry] = {}
        paginator = self._db.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="export_name = :e",
            ExpressionAttributeValues={":e": {"S": export_name}},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                entry = self._entry(item)
                out[entry.result_id] = entry
        return out

    def get(self, export_name: str, result_id: str) -> LedgerEntry | None:
        """One entry, or ``None``."""
        resp = self._db.get_item(TableName=self._table, Key=self._key(export_name, result_id), ConsistentRead=True)
        item = resp.get("Item")
        return None if item is None else self._entry(item)

    def all_entries(self) -> list[LedgerEntry]:
        """Every entry (for ``exportlake status``; the ledger is small: one item per result)."""
        out: list[LedgerEntry] = []
        for page in self._db.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
            out.extend(
                self._entry(item)
                for item in page.get("Items", [])
                # alerts and markers are not results
                if "state" in item and not item["export_name"]["S"].startswith(EXPIRING_MARK)
            )
        return out

    # -- transitions ------------------------------------------------------------------------------------------
    def claim_queued(
        self,
        ref: ResultRef,
        *,
        retry_failed: bool = False,
        unsent_before: str = "",
        queued_before: str = "",
        now: str = "",
    ) -> bool:
        """Record ``ref`` as queued if nobody has; True if this call did (and so must enqueue it).

        Claimed again as well: with ``retry_failed`` a failed entry; with ``unsent_before`` a queued entry whose
        job never went out (the planner died between claim and send) or a copying one with no lease, older than
        that; with ``queued_before`` any queued entry older than that (its job was lost); with ``now`` a copying
        entry whose lease lapsed (its copier died).
        """
        item = {
            **self._key(ref.export_name, ref.result_id),
            "state": _s(ResultState.QUEUED),
            "created_at": {"S": to_text(ref.created_at)},
            "expires_at": {"S": "" if ref.expires_at is None else to_text(ref.expires_at)},
            "updated_at": {"S": now_text()},
            "attempts": {"N": "0"},
            "enqueued": {"BOOL": False},
            UNFINISHED: {"S": ref.export_name},
            # A result this version created: ``starts`` counts every copy attempt it ever had (a first copy has
            # nothing to recover, see ``LedgerEntry.first_attempt``).
            "v": {"N": "2"},
            "starts": {"N": "0"},
        }
        if self._conditional(self._db.put_item, Item=item, ConditionExpression="attribute_not_exists(result_id)"):
            return True
        condition = ""
        values: dict[str, Any] = {}
        if retry_failed:
            condition += " OR #s = :failed"
            values[":failed"] = _s(ResultState.FAILED)
        if unsent_before:
            condition += (
                " OR (#s = :queued AND (attribute_not_exists(enqueued) OR enqueued = :false) AND updated_at < :unsent)"
                " OR (#s = :copying AND attribute_not_exists(lease_until) AND updated_at < :unsent)"
            )
            values |= {":queued": _s(ResultState.QUEUED), ":copying": _s(ResultState.COPYING)}
            values |= {":false": {"BOOL": False}, ":unsent": {"S": unsent_before}}
        if queued_before:
            condition += " OR (#s = :queued AND updated_at < :qbefore)"
            values |= {":queued": _s(ResultState.QUEUED), ":qbefore": {"S": queued_before}}
        if now:
            condition += " OR (#s = :copying AND lease_until < :now)"
            values |= {":copying": _s(ResultState.COPYING), ":now": {"S": now}}
        if not condition:
            return False
        # Claimed again: the item is rewritten as a fresh claim, but keeps ``v`` and ``starts`` (its history).
        values |= {
            ":q": _s(ResultState.QUEUED),
            ":created": item["created_at"],
            ":expires": item["expires_at"],
            ":upd": item["updated_at"],
            ":zero": {"N": "0"},
            ":no": {"BOOL": False},
            ":e": {"S": ref.export_name},
        }
        return self._conditional(
            self._db.update_item,
            Key=self._key(ref.export_name, ref.result_id),
            UpdateExpression="SET #s = :q, created_at = :created, expires_at = :expires, updated_at = :upd, "
            "attempts = :zero, enqueued = :no, #u = :e REMOVE lease_owner, lease_until, notify_owner, notify_until, "
            "#err, last_error, #r, #b, #t, #l, notified, copied_at",
            ConditionExpression=condition.removeprefix(" OR "),
            ExpressionAttributeNames={
                "#s": "state",
                "#u": UNFINISHED,
                "#err": "error",
                "#r": "rows",
                "#b": "bytes",
                "#t": "table",
                "#l": "location",
            },
            ExpressionAttributeValues=values,
        )

    def mark_enqueued(self, ref: ResultRef) -> None:
        """Record that the job of a queued entry went out (so it is not re-sent as a job that never left)."""
        self._conditional(
            self._db.update_item,
            Key=self._key(ref.export_name, ref.result_id),
            UpdateExpression="SET enqueued = :true",
            ConditionExpression="#s = :queued",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":true": {"BOOL": True}, ":queued": _s(ResultState.QUEUED)},
        )

    def release_queued(self, ref: ResultRef) -> None:
        """Undo ``claim_queued`` when the job could not be enqueued."""
        self._conditional(
            self._db.delete_item,
            Key=self._key(ref.export_name, ref.result_id),
            ConditionExpression="#s = :q",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":q": _s(ResultState.QUEUED)},
        )

    def mark_expired(self, ref: ResultRef, *, now: str = "") -> bool:
        """Record that ``ref`` expired uncopied; True the first time only (also for an entry nobody copies)."""
        item = {
            **self._key(ref.export_name, ref.result_id),
            "state": _s(ResultState.EXPIRED),
            "notified": {"BOOL": False},
            UNFINISHED: {"S": ref.export_name},
            "created_at": {"S": to_text(ref.created_at)},
            "expires_at": {"S": "" if ref.expires_at is None else to_text(ref.expires_at)},
            "updated_at": {"S": now_text()},
        }
        condition = "attribute_not_exists(result_id) OR #s IN (:q, :f)"
        values = {":q": _s(ResultState.QUEUED), ":f": _s(ResultState.FAILED)}
        # A copying entry only when no live copier holds it: its copy may still land.
        condition += " OR (#s = :c AND (attribute_not_exists(lease_until) OR lease_until < :now))"
        values |= {":c": _s(ResultState.COPYING), ":now": {"S": now or now_text()}}
        return self._conditional(
            self._db.put_item, Item=item, ConditionExpression=condition, **_names_values(condition, values)
        )

    def start_copy(self, job: CopyJob, owner: str, lease_seconds: float, *, take_over: str = "") -> LedgerEntry | None:
        """Take the copy lease on a result; ``None`` if another live copier holds it.

        A result already copied or expired is returned as it is (the caller then has nothing to write).
        ``take_over`` names a holder known to be dead whose unexpired lease may be replaced.
        """
        now = utc_now()
        free = "attribute_not_exists(lease_until) OR lease_until < :now"
        values: dict[str, Any] = {
            ":copying": _s(ResultState.COPYING),
            ":copied": _s(ResultState.COPIED),
            ":expired": _s(ResultState.EXPIRED),
            ":owner": {"S": owner},
            ":until": {"S": to_text(now + timedelta(seconds=lease_seconds))},
            ":now": {"S": to_text(now)},
            ":created": {"S": to_text(job.created_at)},
            ":expires": {"S": "" if job.expires_at is None else to_text(job.expires_at)},
            ":one": {"N": "1"},
            ":e": {"S": job.export_name},
        }
        if take_over:
            free += " OR lease_owner = :dead"
            values[":dead"] = {"S": take_over}
        try:
            resp = self._db.update_item(
                TableName=self._table,
                Key=self._key(job.export_name, job.result_id),
                UpdateExpression=(
                    "SET #s = :copying, lease_owner = :owner, lease_until = :until, updated_at = :now, "
                    "created_at = :created, expires_at = :expires, #u = :e ADD attempts :one, starts :one"
                ),
                ConditionExpression=f"(attribute_not_exists(#s) OR NOT #s IN (:copied, :expired)) AND ({free})",
                ExpressionAttributeNames={"#s": "state", "#u": UNFINISHED},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            current = self.get(job.export_name, job.result_id)
            done = (ResultState.COPIED, ResultState.EXPIRED)
            return current if current is not None and current.state in done else None
        return self._entry(resp["Attributes"])

    def renew_lease(self, job: CopyJob, owner: str, lease_seconds: float) -> bool:
        """Extend ``owner``'s lease; False if it no longer holds it (lapsed and taken, or released)."""
        now = utc_now()
        return self._conditional(
            self._db.update_item,
            Key=self._key(job.export_name, job.result_id),
            UpdateExpression="SET lease_until = :until",
            ConditionExpression="lease_owner = :owner AND #s = :copying",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={
                ":owner": {"S": owner},
                ":copying": _s(ResultState.COPYING),
                ":until": {"S": to_text(now + timedelta(seconds=lease_seconds))},
            },
        )

    def mark_copied(
        self,
        job: CopyJob,
        owner: str,
        *,
        rows: int,
        size: int,
        table: str,
        location: str,
        notify_seconds: float = 0.0,
    ) -> bool:
        """Record the copy as done; True only for the call that made the transition.

        Only the lease holder may: raise ``LeaseLost`` if ``owner`` no longer holds it and nobody copied it.
        With ``notify_seconds`` the same write gives ``owner`` the claim to send the ``result.copied`` notice for
        that long (as ``claim_notification`` would, one call less).
        """
        claim = ", notify_owner = :owner, notify_until = :nuntil" if notify_seconds > 0 else ""
        done = self._conditional(
            self._db.update_item,
            Key=self._key(job.export_name, job.result_id),
            UpdateExpression="SET #s = :copied, #r = :rows, #b = :bytes, #t = :table, #l = :loc, "
            f"notified = :false, updated_at = :now, copied_at = :now{claim} REMOVE lease_until, lease_owner, #e",
            ConditionExpression="(attribute_not_exists(#s) OR #s <> :copied) AND lease_owner = :owner",
            ExpressionAttributeNames={
                "#s": "state",
                "#r": "rows",
                "#b": "bytes",
                "#t": "table",
                "#l": "location",
                "#e": "error",
            },
            ExpressionAttributeValues={
                ":copied": _s(ResultState.COPIED),
                ":rows": {"N": str(rows)},
                ":bytes": {"N": str(size)},
                ":table": {"S": table},
                ":loc": {"S": location},
                ":false": {"BOOL": False},
                ":now": {"S": now_text()},
                ":owner": {"S": owner},
                **({":nuntil": {"S": to_text(utc_now() + timedelta(seconds=notify_seconds))}} if claim else {}),
            },
        )
        if done:
            return True
        current = self.get(job.export_name, job.result_id)
        if current is not None and current.state == ResultState.COPIED:
            return False
        raise LeaseLost(f"result {job.result_id}: the copy lease was lost before the ledger step")

    def claim_notification(
        self,
        export_name: str,
        result_id: str,
        lease_seconds: float,
        state: ResultState = ResultState.COPIED,
        *,
        owner: str = "",
        take_over: str = "",
    ) -> bool:
        """Take the right to send the notification of a result in ``state`` not yet notified; True if taken.

        A short lease, not a flag: two senders never both publish, and if the one holding it dies before
        publishing, a retry after the lease (or at once, for a provably dead ``take_over``) may.
        """
        now = utc_now()
        free = "attribute_not_exists(notify_until) OR notify_until < :now"
        values: dict[str, Any] = {
            ":state": _s(state),
            ":false": {"BOOL": False},
            ":until": {"S": to_text(now + timedelta(seconds=lease_seconds))},
            ":now": {"S": to_text(now)},
            ":owner": {"S": owner or "-"},
        }
        if take_over:
            free += " OR notify_owner = :dead"
            values[":dead"] = {"S": take_over}
        return self._conditional(
            self._db.update_item,
            Key=self._key(export_name, result_id),
            UpdateExpression="SET notify_until = :until, notify_owner = :owner",
            ConditionExpression=f"#s = :state AND (attribute_not_exists(notified) OR notified = :false) AND ({free})",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=values,
        )

    def release_notification(self, export_name: str, result_id: str) -> None:
        """Give the notification claim back (the publish failed), so the retry may send it at once."""
        self._db.update_item(
            TableName=self._table,
            Key=self._key(export_name, result_id),
            UpdateExpression="REMOVE notify_until, notify_owner",
        )

    def mark_notified(self, export_name: str, result_id: str) -> None:
        """Record that the notification went out (a copied or expired result then leaves the unfinished index)."""
        if self._conditional(
            self._db.update_item,
            Key=self._key(export_name, result_id),
            UpdateExpression="SET notified = :true REMOVE notify_until, notify_owner, #u",
            ConditionExpression="#s IN (:copied, :expired)",
            ExpressionAttributeNames={"#s": "state", "#u": UNFINISHED},
            ExpressionAttributeValues={
                ":true": {"BOOL": True},
                ":copied": _s(ResultState.COPIED),
                ":expired": _s(ResultState.EXPIRED),
            },
        ):
            return
        # A failed result stays unfinished (``--retry-failed`` finds it there).
        self._db.update_item(
            TableName=self._table,
            Key=self._key(export_name, result_id),
            UpdateExpression="SET notified = :true REMOVE notify_until, notify_owner",
            ExpressionAttributeValues={":true": {"BOOL": True}},
        )

    def end_attempt(self, job: CopyJob, owner: str, error: str) -> None:
        """Give ``owner``'s lease back after a failed attempt, so the retry need not wait for it to lapse."""
        self._conditional(
            self._db.update_item,
            Key=self._key(job.export_name, job.result_id),
            UpdateExpression="SET last_error = :e, updated_at = :now REMOVE lease_until, lease_owner",
            ConditionExpression="lease_owner = :owner",
            ExpressionAttributeValues={":e": {"S": error[:1000]}, ":now": {"S": now_text()}, ":owner": {"S": owner}},
        )

    def mark_failed(self, job: CopyJob, error: str, *, owner: str = "") -> bool:
        """Record a final failure (retries exhausted); True only for the call that made the transition."""
        free = "attribute_not_exists(lease_until) OR lease_until < :now"
        values: dict[str, Any] = {
            ":failed": _s(ResultState.FAILED),
            ":copied": _s(ResultState.COPIED),
            ":expired": _s(ResultState.EXPIRED),
            ":err": {"S": error[:1000]},
            ":now": {"S": now_text()},
            ":created": {"S": to_text(job.created_at)},
            ":false": {"BOOL": False},
            ":en": {"S": job.export_name},
        }
        if owner:
            free += " OR lease_owner = :owner"
            values[":owner"] = {"S": owner}
        return self._conditional(
            self._db.update_item,
            Key=self._key(job.export_name, job.result_id),
            UpdateExpression="SET #s = :failed, #e = :err, updated_at = :now, created_at = :created, "
            "notified = :false, #u = :en REMOVE lease_until, lease_owner, notify_until, notify_owner",
            # Not while another copier holds the lease: its copy may still succeed.
            ConditionExpression=f"(attribute_not_exists(#s) OR NOT #s IN (:copied, :failed, :expired)) AND ({free})",
            ExpressionAttributeNames={"#s": "state", "#e": "error", "#u": UNFINISHED},
            ExpressionAttributeValues=values,
        )

    # -- alerts, the planner's cursor, expiring-notice markers (adapters.ledgerindex) -------------------------
    def claim_alert(self, key: str, fingerprint: str, resend_before: str) -> bool:
        """True if the alert ``key`` should go out: never sent, its cause changed, or last sent before then."""
        return self._index.claim_alert(key, fingerprint, resend_before)

    def release_alert(self, key: str) -> None:
        """Forget alert ``key`` (its cause is gone, or its publish failed and must be retried)."""
        self._index.release_alert(key)

    def alerts(self) -> dict[str, str]:
        """Alert key → fingerprint of every alert on record."""
        return self._index.alerts()

    def cursor(self) -> str:
        """The export after which the next planner run starts ("" for the first)."""
        return self._index.cursor()

    def save_cursor(self, export_name: str) -> None:
        """Remember where a planner run that ran out of time stopped ("" to start from the first again)."""
        self._index.save_cursor(export_name)

    def claim_expiring_notice(self, export_name: str, result_id: str) -> bool:
        """Take the one right to announce that a result expires soon; True if this call took it."""
        return self._index.claim_expiring_notice(export_name, result_id)

    def release_expiring_notice(self, export_name: str, result_id: str) -> None:
        """Give the expiring-notice right back (its publish failed), so the next run sends it."""
        self._index.release_expiring_notice(export_name, result_id)

    # -- helpers ----------------------------------------------------------------------------------------------
    def _conditional(self, call: Any, **kwargs: Any) -> bool:
        """Run one conditional write; False (not an error) when its condition does not hold."""
        try:
            call(TableName=self._table, **kwargs)
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    @staticmethod
    def _key(export_name: str, result_id: str) -> dict[str, Any]:
        return {"export_name": {"S": export_name}, "result_id": {"S": result_id}}

    _entry = staticmethod(entry_of)
