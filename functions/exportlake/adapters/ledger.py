"""The ledger: one DynamoDB item per export result, moved between states with conditional writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from exportlake.domain.models import CopyJob, ResultRef, ResultState
from exportlake.domain.ports import LedgerEntry

#: The partition-key prefix of the markers that make ``result.expiring`` go out once (never a valid export name).
EXPIRING_MARK = "#expiring#"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoLedger:
    """Ledger on a table keyed by ``export_name`` (hash) and ``result_id`` (range)."""

    def __init__(self, dynamodb_client: Any, table: str):
        self._db = dynamodb_client
        self._table = table

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
                if not item["export_name"]["S"].startswith(EXPIRING_MARK)  # markers are not results
            )
        return out

    # -- transitions ------------------------------------------------------------------------------------------
    def claim_queued(self, ref: ResultRef, *, retry_failed: bool = False, stale_before: str = "") -> bool:
        """Record ``ref`` as queued if nobody has; True if this call did (and so must enqueue it).

        With ``stale_before``, an entry stuck "queued"/"copying" since before then is claimed again; with
        ``retry_failed``, a failed one.
        """
        condition = "attribute_not_exists(result_id)"
        values: dict[str, Any] = {}
        if retry_failed:
            condition += " OR #s = :failed"
            values[":failed"] = {"S": ResultState.FAILED.value}
        if stale_before:
            condition += " OR (#s IN (:queued, :copying) AND updated_at < :stale)"
            values[":queued"] = {"S": ResultState.QUEUED.value}
            values[":copying"] = {"S": ResultState.COPYING.value}
            values[":stale"] = {"S": stale_before}
        item = {
            **self._key(ref.export_name, ref.result_id),
            "state": {"S": ResultState.QUEUED.value},
            "created_at": {"S": ref.created_at.isoformat()},
            "expires_at": {"S": "" if ref.expires_at is None else ref.expires_at.isoformat()},
            "updated_at": {"S": _now()},
            "attempts": {"N": "0"},
        }
        return self._put(item, condition, values)

    def release_queued(self, ref: ResultRef) -> None:
        """Undo ``claim_queued`` when the job could not be enqueued."""
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=self._key(ref.export_name, ref.result_id),
                ConditionExpression="#s = :q",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":q": {"S": ResultState.QUEUED.value}},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def mark_expired(self, ref: ResultRef, *, stale_before: str = "") -> bool:
        """Record that ``ref`` expired uncopied; True the first time only (also for a stale in-flight entry)."""
        item = {
            **self._key(ref.export_name, ref.result_id),
            "state": {"S": ResultState.EXPIRED.value},
            "notified": {"BOOL": False},
            "created_at": {"S": ref.created_at.isoformat()},
            "expires_at": {"S": "" if ref.expires_at is None else ref.expires_at.isoformat()},
            "updated_at": {"S": _now()},
        }
        condition = "attribute_not_exists(result_id) OR #s IN (:q, :f)"
        values = {":q": {"S": ResultState.QUEUED.value}, ":f": {"S": ResultState.FAILED.value}}
        if stale_before:
            condition += " OR (#s = :c AND updated_at < :stale)"
            values |= {":c": {"S": ResultState.COPYING.value}, ":stale": {"S": stale_before}}
        return self._put(item, condition, values)

    def start_copy(self, job: CopyJob, lease_seconds: int) -> LedgerEntry | None:
        """Take the copy lease on a result; ``None`` if another copier holds it.

        The lease keeps two copiers of a duplicated message from writing the same prefix at once; it lapses on
        its own if a copier dies. A result already copied is returned as it is (the caller then has nothing
        to write).
        """
        now = datetime.now(UTC)
        try:
            resp = self._db.update_item(
                TableName=self._table,
                Key=self._key(job.export_name, job.result_id),
                UpdateExpression=(
                    "SET #s = :copying, lease_until = :until, updated_at = :now, created_at = :created "
                    "ADD attempts :one"
                ),
                ConditionExpression="(attribute_not_exists(#s) OR #s <> :copied) AND "
                "(attribute_not_exists(lease_until) OR lease_until < :now)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={
                    ":copying": {"S": ResultState.COPYING.value},
                    ":copied": {"S": ResultState.COPIED.value},
                    ":until": {"S": (now + timedelta(seconds=lease_seconds)).isoformat(timespec="seconds")},
                    ":now": {"S": now.isoformat(timespec="seconds")},
                    ":created": {"S": job.created_at.isoformat()},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            current = self.get(job.export_name, job.result_id)
            return current if current is not None and current.state == ResultState.COPIED else None
        return self._entry(resp["Attributes"])

    def mark_copied(self, job: CopyJob, *, rows: int, size: int, table: str, location: str) -> bool:
        """Record the copy as done; True only for the call that made the transition."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(job.export_name, job.result_id),
                UpdateExpression="SET #s = :copied, #r = :rows, #b = :bytes, #t = :table, #l = :loc, "
                "notified = :false, updated_at = :now, copied_at = :now REMOVE lease_until, #e",
                ConditionExpression="attribute_not_exists(#s) OR #s <> :copied",
                ExpressionAttributeNames={
                    "#s": "state",
                    "#r": "rows",
                    "#b": "bytes",
                    "#t": "table",
                    "#l": "location",
                    "#e": "error",
                },
                ExpressionAttributeValues={
                    ":copied": {"S": ResultState.COPIED.value},
                    ":rows": {"N": str(rows)},
                    ":bytes": {"N": str(size)},
                    ":table": {"S": table},
                    ":loc": {"S": location},
                    ":false": {"BOOL": False},
                    ":now": {"S": _now()},
                },
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def claim_notification(
        self, export_name: str, result_id: str, lease_seconds: int, state: ResultState = ResultState.COPIED
    ) -> bool:
        """Take the right to send the notification of a result in ``state`` not yet notified; True if taken.

        A short lease, not a flag: two copiers (a duplicate message) never both publish, and if the one holding
        it dies before publishing, a retry after the lease may.
        """
        now = datetime.now(UTC)
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(export_name, result_id),
                UpdateExpression="SET notify_until = :until",
                ConditionExpression="#s = :state AND (attribute_not_exists(notified) OR notified = :false) "
                "AND (attribute_not_exists(notify_until) OR notify_until < :now)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={
                    ":state": {"S": state.value},
                    ":false": {"BOOL": False},
                    ":until": {"S": (now + timedelta(seconds=lease_seconds)).isoformat(timespec="seconds")},
                    ":now": {"S": now.isoformat(timespec="seconds")},
                },
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def release_notification(self, export_name: str, result_id: str) -> None:
        """Give the notification claim back (the publish failed), so the retry may send it at once."""
        self._db.update_item(
            TableName=self._table,
            Key=self._key(export_name, result_id),
            UpdateExpression="REMOVE notify_until",
        )

    def mark_notified(self, export_name: str, result_id: str) -> None:
        """Record that ``result.copied`` went out."""
        self._db.update_item(
            TableName=self._table,
            Key=self._key(export_name, result_id),
            UpdateExpression="SET notified = :true",
            ExpressionAttributeValues={":true": {"BOOL": True}},
        )

    def claim_expiring_notice(self, export_name: str, result_id: str) -> bool:
        """Take the one right to announce that a result expires soon; True if this call took it.

        A marker item of its own (partition ``#expiring#<export>``), not a flag on the result's item: the result's
        item is rewritten whole by some transitions (a re-queue), which would drop a flag and announce it again.
        """
        try:
            self._db.put_item(
                TableName=self._table,
                Item={**self._key(EXPIRING_MARK + export_name, result_id), "at": {"S": _now()}},
                ConditionExpression="attribute_not_exists(result_id)",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def release_expiring_notice(self, export_name: str, result_id: str) -> None:
        """Give the expiring-notice right back (its publish failed), so the next run sends it."""
        self._db.delete_item(TableName=self._table, Key=self._key(EXPIRING_MARK + export_name, result_id))

    def end_attempt(self, job: CopyJob, error: str) -> None:
        """Give the lease back after a failed attempt, so the retry need not wait for it to lapse."""
        self._db.update_item(
            TableName=self._table,
            Key=self._key(job.export_name, job.result_id),
            UpdateExpression="SET last_error = :e, updated_at = :now REMOVE lease_until",
            ExpressionAttributeValues={":e": {"S": error[:1000]}, ":now": {"S": _now()}},
        )

    def mark_failed(self, job: CopyJob, error: str) -> bool:
        """Record a final failure (retries exhausted); True only for the call that made the transition."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=self._key(job.export_name, job.result_id),
                UpdateExpression="SET #s = :failed, #e = :err, updated_at = :now, created_at = :created, "
                "notified = :false REMOVE lease_until, notify_until",
                # Not while another copier holds the lease: its copy may still succeed.
                ConditionExpression="(attribute_not_exists(#s) OR NOT #s IN (:copied, :failed)) "
                "AND (attribute_not_exists(lease_until) OR lease_until < :now)",
                ExpressionAttributeNames={"#s": "state", "#e": "error"},
                ExpressionAttributeValues={
                    ":failed": {"S": ResultState.FAILED.value},
                    ":copied": {"S": ResultState.COPIED.value},
                    ":err": {"S": error[:1000]},
                    ":now": {"S": _now()},
                    ":created": {"S": job.created_at.isoformat()},
                    ":false": {"BOOL": False},
                },
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    # -- helpers ----------------------------------------------------------------------------------------------
    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any]) -> bool:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": condition,
        }
        if "#s" in condition:
            kwargs["ExpressionAttributeNames"] = {"#s": "state"}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self._db.put_item(**kwargs)
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    @staticmethod
    def _key(export_name: str, result_id: str) -> dict[str, Any]:
        return {"export_name": {"S": export_name}, "result_id": {"S": result_id}}

    @staticmethod
    def _entry(item: dict[str, Any]) -> LedgerEntry:
        def s(name: str) -> str:
            return str(item.get(name, {}).get("S", ""))

        def n(name: str) -> int:
            return int(item.get(name, {}).get("N", "0"))

        return LedgerEntry(
            export_name=s("export_name"),
            result_id=s("result_id"),
            state=ResultState(s("state")),
            created_at=s("created_at"),
            expires_at=s("expires_at"),
            updated_at=s("updated_at"),
            rows=n("rows"),
            bytes=n("bytes"),
            table=s("table"),
            location=s("location"),
            notified=bool(item.get("notified", {}).get("BOOL", False)),
            error=s("error") or s("last_error"),
            attempts=n("attempts"),
        )
