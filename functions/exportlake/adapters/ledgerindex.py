"""The ledger's items beside the per-result transitions, and its reads that do not grow with history: the sparse
index of unfinished results, the export states, reads by key in batches, alerts, the planner's cursor and the
expiring-notice markers. Used by ``adapters.ledger.DynamoLedger``, which owns the result transitions.

The index: every transition writes ``unfinished`` (the export name) while a result is queued, copying, failed or
not yet announced, and removes it otherwise; the global secondary index ``unfinished`` (partition key
``unfinished``, sort key ``result_id``, all attributes) therefore holds only those items. Items written before the
index existed are tagged by ``adopt`` (the planner's first run per export after the upgrade).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from exportlake.domain.models import ResultState
from exportlake.domain.ports import ExportState, LedgerEntry
from exportlake.domain.timefmt import now_text

log = logging.getLogger(__name__)

#: The attribute (and index) of unfinished results.
UNFINISHED = "unfinished"
UNFINISHED_INDEX = "unfinished"
#: The partition holding one state item per export (not a valid export name: no clash).
EXPORTS = "_exports"
#: The partition of the ledger that holds alerts instead of results (not a valid export name: no clash).
ALERTS = "_alerts"
CURSOR = "planner-cursor"
#: The partition-key prefix of the markers that make ``result.expiring`` go out once (never a valid export name).
EXPIRING_MARK = "#expiring#"
_BATCH_GET = 100  # keys per BatchGetItem

#: The index as ``CreateTable``/``UpdateTable`` take it (the CDK construct declares the same).
INDEX_ATTRIBUTES = [{"AttributeName": UNFINISHED, "AttributeType": "S"}]
INDEX_DEFINITION: dict[str, Any] = {
    "IndexName": UNFINISHED_INDEX,
    "KeySchema": [
        {"AttributeName": UNFINISHED, "KeyType": "HASH"},
        {"AttributeName": "result_id", "KeyType": "RANGE"},
    ],
    "Projection": {"ProjectionType": "ALL"},
}
_UNPROCESSED_ROUNDS = 8


def is_open(item: dict[str, Any]) -> bool:
    """True for a result item that belongs in the index (queued, copying, failed, or not yet announced)."""
    state = item.get("state", {}).get("S", "")
    if not state:
        return False
    if state in (ResultState.QUEUED, ResultState.COPYING, ResultState.FAILED):
        return True
    return not item.get("notified", {}).get("BOOL", False)


def _n(item: dict[str, Any], name: str) -> int:
    return int(item.get(name, {}).get("N", "0"))


def _s(item: dict[str, Any], name: str) -> str:
    return str(item.get(name, {}).get("S", ""))


def entry_of(item: dict[str, Any]) -> LedgerEntry:
    """The entry a result item holds."""

    def s(name: str) -> str:
        return str(item.get(name, {}).get("S", ""))

    def n(name: str) -> int:
        return int(item.get(name, {}).get("N", "0"))

    return LedgerEntry(
        lease_owner=s("lease_owner"),
        lease_until=s("lease_until"),
        notify_owner=s("notify_owner"),
        notify_until=s("notify_until"),
        enqueued=bool(item.get("enqueued", {}).get("BOOL", False)),
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
        starts=n("starts"),
        version=n("v"),
    )


class LedgerIndex:
    """Index queries, export states and batched reads on the ledger table."""

    def __init__(self, dynamodb_client: Any, table: str):
        self._db = dynamodb_client
        self._table = table
        self._entry = entry_of

    def open_entries(self, export_name: str) -> dict[str, LedgerEntry]:
        """The export's unfinished entries, from the index (eventually consistent: decisions taken on them are
        conditional writes). While the index is missing or still being built, from the export's partition."""
        out: dict[str, LedgerEntry] = {}
        try:
            for page in self._db.get_paginator("query").paginate(
                TableName=self._table,
                IndexName=UNFINISHED_INDEX,
                KeyConditionExpression="#u = :e",
                ExpressionAttributeNames={"#u": UNFINISHED},
                ExpressionAttributeValues={":e": {"S": export_name}},
            ):
                for item in page.get("Items", []):
                    out[_s(item, "result_id")] = self._entry(item)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("ValidationException", "ResourceNotFoundException"):
                raise
            log.warning("the ledger's index of unfinished results is not usable yet (%s); reading the export", exc)
            out = {_s(i, "result_id"): self._entry(i) for i in self._partition(export_name) if is_open(i)}
        return out

    def adopt(self, export_name: str) -> int:
        """Tag the export's unfinished items that lack ``unfinished`` (written before the index); how many."""
        tagged = 0
        for item in self._partition(export_name):
            if is_open(item) and UNFINISHED not in item:
                try:
                    self._db.update_item(
                        TableName=self._table,
                        Key={"export_name": item["export_name"], "result_id": item["result_id"]},
                        UpdateExpression="SET #u = :e",
                        ConditionExpression="attribute_exists(result_id)",
                        ExpressionAttributeNames={"#u": UNFINISHED},
                        ExpressionAttributeValues={":e": {"S": export_name}},
                    )
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                        raise
                    continue
                tagged += 1
        return tagged

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LedgerEntry]:
        """The existing entries of ``keys`` (BatchGetItem, consistent, unprocessed keys retried)."""
        out: dict[tuple[str, str], LedgerEntry] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), _BATCH_GET):
            request: dict[str, Any] = {
                self._table: {
                    "Keys": [{"export_name": {"S": e}, "result_id": {"S": r}} for e, r in unique[i : i + _BATCH_GET]],
                    "ConsistentRead": True,
                }
            }
            for _ in range(_UNPROCESSED_ROUNDS):
                resp = self._db.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self._table, []):
                    if "state" in item:
                        entry = self._entry(item)
                        out[(entry.export_name, entry.result_id)] = entry
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise RuntimeError("the ledger left keys unprocessed after retries; try again")
        return out

    def export_states(self) -> dict[str, ExportState]:
        """Every export's state item, by export name (one Query of the ``_exports`` partition)."""
        out: dict[str, ExportState] = {}
        for item in self._partition(EXPORTS):
            name = _s(item, "result_id")
            out[name] = ExportState(
                export_name=name,
                newest_id=_s(item, "newest_id"),
                newest_created=_s(item, "newest_created"),
                total=_n(item, "total") if "total" in item else -1,
                order=_s(item, "order"),
                page_size=_n(item, "page_size"),
                recon_at=_s(item, "recon_at"),
                recon_page=_n(item, "recon_page"),
                recon_from=_s(item, "recon_from"),
                recon_last=_s(item, "recon_last"),
            )
        return out

    def save_export_state(self, state: ExportState) -> None:
        """Write one export's state (last writer wins: two planners compute it from the same listing)."""
        item: dict[str, Any] = {
            "export_name": {"S": EXPORTS},
            "result_id": {"S": state.export_name},
            "total": {"N": str(state.total)},
            "page_size": {"N": str(state.page_size)},
            "recon_page": {"N": str(state.recon_page)},
        }
        for name in ("newest_id", "newest_created", "order", "recon_at", "recon_from", "recon_last"):
            value = getattr(state, name)
            if value:
                item[name] = {"S": value}
        self._db.put_item(TableName=self._table, Item=item)

    # -- alerts (run-level and per-item notices, deduplicated) ------------------------------------------------
    def claim_alert(self, key: str, fingerprint: str, resend_before: str) -> bool:
        """True if the alert ``key`` should go out: never sent, its cause changed, or last sent before then."""
        return self._conditional(
            self._db.put_item,
            Item={**self._key(ALERTS, key), "fingerprint": {"S": fingerprint}, "sent_at": {"S": now_text()}},
            ConditionExpression="attribute_not_exists(result_id) OR fingerprint <> :fp OR sent_at < :before",
            ExpressionAttributeValues={":fp": {"S": fingerprint}, ":before": {"S": resend_before}},
        )

    def release_alert(self, key: str) -> None:
        """Forget alert ``key`` (its cause is gone, or its publish failed and must be retried)."""
        self._db.delete_item(TableName=self._table, Key=self._key(ALERTS, key))

    def cursor(self) -> str:
        """The export after which the next planner run starts ("" for the first)."""
        resp = self._db.get_item(TableName=self._table, Key=self._key(ALERTS, CURSOR), ConsistentRead=True)
        return str(resp.get("Item", {}).get("fingerprint", {}).get("S", ""))

    def save_cursor(self, export_name: str) -> None:
        """Remember where a planner run that ran out of time stopped ("" to start from the first again)."""
        if export_name:
            self._db.put_item(
                TableName=self._table, Item={**self._key(ALERTS, CURSOR), "fingerprint": {"S": export_name}}
            )
        else:
            self._db.delete_item(TableName=self._table, Key=self._key(ALERTS, CURSOR))

    def alerts(self) -> dict[str, str]:
        """Alert key → fingerprint of every alert on record."""
        return {
            _s(item, "result_id"): _s(item, "fingerprint")
            for item in self._partition(ALERTS)
            if _s(item, "result_id") != CURSOR
        }

    def claim_expiring_notice(self, export_name: str, result_id: str) -> bool:
        """Take the one right to announce that a result expires soon; True if this call took it.

        A marker item of its own (partition ``#expiring#<export>``), not a flag on the result's item: the result's
        item is rewritten whole by some transitions (a re-queue), which would drop a flag and announce it again.
        """
        return self._conditional(
            self._db.put_item,
            Item={**self._key(EXPIRING_MARK + export_name, result_id), "at": {"S": now_text()}},
            ConditionExpression="attribute_not_exists(result_id)",
        )

    def release_expiring_notice(self, export_name: str, result_id: str) -> None:
        """Give the expiring-notice right back (its publish failed), so the next run sends it."""
        self._db.delete_item(TableName=self._table, Key=self._key(EXPIRING_MARK + export_name, result_id))

    # -- helpers ----------------------------------------------------------------------------------------------
    def _conditional(self, call: Any, **kwargs: Any) -> bool:
        try:
            call(TableName=self._table, **kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    @staticmethod
    def _key(partition: str, sort: str) -> dict[str, Any]:
        return {"export_name": {"S": partition}, "result_id": {"S": sort}}

    def _partition(self, partition: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self._db.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="export_name = :e",
            ExpressionAttributeValues={":e": {"S": partition}},
            ConsistentRead=True,
        ):
            items.extend(page.get("Items", []))
        return items
