"""Privacy records in the ledger table: the suppression list, erasure holds, requests and their per-result outcomes.

Items live under partition keys that are never export names (they start with ``#``, like the ledger's own
markers) and carry no ``state``, so the ledger's readers never take them for results. No item holds a clear id:
persons are person keys (salted hashes, ``domain.erasure``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from exportlake.domain.erasure import ResultErasure, Suppression
from exportlake.domain.errors import ConfigError
from exportlake.domain.timefmt import now_text, to_text, utc_now

SUPPRESSED = "#privacy#suppressed"
HOLDS = "#privacy#hold"
REQUESTS = "#privacy#request"
RESULTS = "#privacy#result#"  # + request id
STATS = "#privacy#stats"
RUNS = "#privacy#run"
RETIRED = "#privacy#retired"  # + run id for the settled-job markers
NOTICE_SECONDS = 60


def _failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoPrivacy:
    """``domain.erasing.PrivacyStore`` on the ledger table (keys ``export_name`` / ``result_id``)."""

    def __init__(self, dynamodb_client: Any, table: str) -> None:
        self._db = dynamodb_client
        self._table = table

    @staticmethod
    def _key(pk: str, sk: str) -> dict[str, Any]:
        return {"export_name": {"S": pk}, "result_id": {"S": sk}}

    def _query(self, pk: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self._db.get_paginator("query").paginate(
            TableName=self._table,
            KeyConditionExpression="export_name = :p",
            ExpressionAttributeValues={":p": {"S": pk}},
            ConsistentRead=True,
        ):
            items.extend(page.get("Items", []))
        return items

    def _conditional(self, call: Any, **kwargs: Any) -> bool:
        try:
            call(TableName=self._table, **kwargs)
        except ClientError as exc:
            if _failed(exc):
                return False
            raise
        return True

    # -- suppression --------------------------------------------------------------------------------------------
    def suppressed(self) -> dict[str, Suppression]:
        """Every suppressed person key."""
        out: dict[str, Suppression] = {}
        for item in self._query(SUPPRESSED):
            key = item["result_id"]["S"]
            out[key] = Suppression(
                key,
                item.get("column", {}).get("S", ""),
                item.get("request", {}).get("S", ""),
                item.get("at", {}).get("S", ""),
            )
        return out

    def suppress(self, entries: Iterable[Suppression]) -> int:
        """Add entries not yet listed; how many were new."""
        added = 0
        for s in entries:
            added += self._conditional(
                self._db.put_item,
                Item={
                    **self._key(SUPPRESSED, s.key),
                    "column": {"S": s.column},
                    "request": {"S": s.request_id},
                    "at": {"S": s.at},
                },
                ConditionExpression="attribute_not_exists(result_id)",
            )
        return added

    def lift(self, key: str) -> bool:
        """Remove an entry (data already erased stays erased); False if it was not listed."""
        resp = self._db.delete_item(TableName=self._table, Key=self._key(SUPPRESSED, key), ReturnValues="ALL_OLD")
        return bool(resp.get("Attributes"))

    def count_suppressed(self, export_name: str, rows: int) -> None:
        """Add ``rows`` to the count of records of ``export_name`` kept out of the lake by the suppression list."""
        self._db.update_item(
            TableName=self._table,
            Key=self._key(STATS, export_name),
            UpdateExpression="ADD #r :n",
            ExpressionAttributeNames={"#r": "rows"},
            ExpressionAttributeValues={":n": {"N": str(rows)}},
        )

    def suppressed_rows(self) -> dict[str, int]:
        """Per export, records kept out of the lake by the suppression list so far."""
        return {item["result_id"]["S"]: int(item.get("rows", {}).get("N", "0")) for item in self._query(STATS)}

    # -- holds --------------------------------------------------------------------------------------------------
    def take_hold(self, name: str, owner: str, seconds: float, *, take_over: str = "") -> bool:
        """Hold ``name`` for ``seconds`` unless a live holder has it (``take_over``: a dead holder to replace)."""
        now = utc_now()
        condition = "attribute_not_exists(result_id) OR #u < :now"
        values: dict[str, Any] = {":now": {"S": to_text(now)}}
        if take_over:
            condition += " OR #o = :dead"
            values[":dead"] = {"S": take_over}
        return self._conditional(
            self._db.put_item,
            Item={
                **self._key(HOLDS, name),
                "owner": {"S": owner},
                "until": {"S": to_text(now + timedelta(seconds=seconds))},
            },
            ConditionExpression=condition,
            ExpressionAttributeNames={"#u": "until", **({"#o": "owner"} if take_over else {})},
            ExpressionAttributeValues=values,
        )

    def renew_hold(self, name: str, owner: str, seconds: float) -> bool:
        """Extend ``owner``'s hold; False if it no longer has it."""
        return self._conditional(
            self._db.update_item,
            Key=self._key(HOLDS, name),
            UpdateExpression="SET #u = :until",
            ConditionExpression="#o = :owner",
            ExpressionAttributeNames={"#u": "until", "#o": "owner"},
            ExpressionAttributeValues={
                ":owner": {"S": owner},
                ":until": {"S": to_text(utc_now() + timedelta(seconds=seconds))},
            },
        )

    def hold_owner(self, name: str) -> str:
        """Who holds ``name`` now ("" when nobody does, or the hold lapsed)."""
        item = self._db.get_item(TableName=self._table, Key=self._key(HOLDS, name), ConsistentRead=True).get("Item")
        if not item or item.get("until", {}).get("S", "") < now_text():
            return ""
        return str(item.get("owner", {}).get("S", ""))

    def release_hold(self, name: str, owner: str) -> None:
        """Give the hold back (only ``owner``'s)."""
        self._conditional(
            self._db.delete_item,
            Key=self._key(HOLDS, name),
            ConditionExpression="#o = :owner",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":owner": {"S": owner}},
        )

    # -- requests -----------------------------------------------------------------------------------------------
    def record_result(self, request: str, result: ResultErasure) -> None:
        """Add what one step did to a result for ``request`` (rows set once; objects and versions added)."""
        sets = ["#t = :table", "#st = :state"]
        values: dict[str, Any] = {
            ":table": {"S": result.table},
            ":state": {"S": result.state},
            ":o": {"N": str(result.objects_deleted)},
            ":v": {"N": str(result.versions_deleted)},
            ":g": {"N": str(result.generation)},
        }
        if result.rows_removed:
            sets.append("#r = :rows")
            values[":rows"] = {"N": str(result.rows_removed)}
        sets.append("#g = :g")
        self._db.update_item(
            TableName=self._table,
            Key=self._key(RESULTS + request, f"{result.export_name}/{result.result_id}"),
            UpdateExpression="SET " + ", ".join(sets) + " ADD objects :o, versions :v",
            ExpressionAttributeNames={
                "#t": "table",
                "#st": "phase",
                "#g": "generation",
                **({"#r": "rows"} if result.rows_removed else {}),
            },
            ExpressionAttributeValues=values,
        )

    def record_sweep(self, request: str, versions: int) -> None:
        """Add ``versions`` deleted by a sweep of ``request``'s results."""
        self._db.update_item(
            TableName=self._table,
            Key=self._key(REQUESTS, request),
            UpdateExpression="ADD swept :n",
            ExpressionAttributeValues={":n": {"N": str(versions)}},
        )

    def swept(self, request: str) -> int:
        """Object versions the sweeps of ``request`` deleted so far."""
        item = self._db.get_item(TableName=self._table, Key=self._key(REQUESTS, request), ConsistentRead=True)
        return int(item.get("Item", {}).get("swept", {}).get("N", "0"))

    def request_results(self, request: str) -> list[ResultErasure]:
        """Every result ``request`` has touched, with what was done to it."""
        out: list[ResultErasure] = []
        for item in self._query(RESULTS + request):
            export, _, rid = item["result_id"]["S"].partition("/")
            out.append(
                ResultErasure(
                    export,
                    rid,
                    item.get("table", {}).get("S", ""),
                    rows_removed=int(item.get("rows", {}).get("N", "0")),
                    objects_deleted=int(item.get("objects", {}).get("N", "0")),
                    versions_deleted=int(item.get("versions", {}).get("N", "0")),
                    generation=int(item.get("generation", {}).get("N", "0")),
                    state=item.get("phase", {}).get("S", ""),
                )
            )
        return sorted(out, key=lambda r: (r.export_name, r.result_id))

    def save_request(self, request: str, record: Mapping[str, object]) -> None:
        """Write the request's audit record (the first time kept as ``first_at``)."""
        self._db.update_item(
            TableName=self._table,
            Key=self._key(REQUESTS, request),
            UpdateExpression="SET body = :b, last_at = :now, first_at = if_not_exists(first_at, :now)",
            ExpressionAttributeValues={":b": {"S": json.dumps(record, sort_keys=True)}, ":now": {"S": now_text()}},
        )

    def requests(self) -> list[dict[str, object]]:
        """Every audit record, oldest first."""
        out: list[dict[str, object]] = []
        for item in self._query(REQUESTS):
            body = json.loads(item.get("body", {}).get("S", "{}"))
            body["first_at"] = item.get("first_at", {}).get("S", "")
            body["notified"] = bool(item.get("notified", {}).get("BOOL", False))
            out.append(body)
        return sorted(out, key=lambda r: str(r["first_at"]))

    def claim_notice(self, request: str) -> bool:
        """Take the right to announce ``request`` (a claim that lapses, so a dead announcer's is retried)."""
        now = utc_now()
        return self._conditional(
            self._db.update_item,
            Key=self._key(REQUESTS, request),
            UpdateExpression="SET notify_until = :until",
            ConditionExpression=(
                "attribute_not_exists(notified) AND (attribute_not_exists(notify_until) OR notify_until < :now)"
            ),
            ExpressionAttributeValues={
                ":until": {"S": to_text(now + timedelta(seconds=NOTICE_SECONDS))},
                ":now": {"S": to_text(now)},
            },
        )

    def mark_noticed(self, request: str) -> None:
        """Record that ``person.erased`` went out for ``request``."""
        self._db.update_item(
            TableName=self._table,
            Key=self._key(REQUESTS, request),
            UpdateExpression="SET notified = :t REMOVE notify_until",
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )

    # -- deployed runs (domain.erasejobs) -----------------------------------------------------------------------
    def open_run(self, run: str, jobs: int) -> None:
        """Start a request run with ``jobs`` open jobs."""
        self._db.put_item(
            TableName=self._table,
            Item={**self._key(RUNS, run), "open": {"N": str(jobs)}, "at": {"S": now_text()}},
            ConditionExpression="attribute_not_exists(result_id)",
        )

    def settle(self, run: str, job: str, delta: int) -> int | None:
        """Settle ``job`` of ``run`` once: add ``delta`` to its open count and return it (None if settled before)."""
        if not self._conditional(
            self._db.put_item,
            Item={**self._key(RUNS + run, job), "at": {"S": now_text()}},
            ConditionExpression="attribute_not_exists(result_id)",
        ):
            return None
        resp = self._db.update_item(
            TableName=self._table,
            Key=self._key(RUNS, run),
            UpdateExpression="ADD #o :d",
            ExpressionAttributeNames={"#o": "open"},
            ExpressionAttributeValues={":d": {"N": str(delta)}},
            ReturnValues="ALL_NEW",  # UPDATED_NEW leaves out a count that did not change (delta 0)
        )
        return int(resp["Attributes"]["open"]["N"])

    # -- retention ----------------------------------------------------------------------------------------------
    def mark_retired(self, export_name: str, result_id: str, day: str) -> None:
        """Record that retention removed a result (created on ``day``)."""
        self._db.put_item(
            TableName=self._table,
            Item={**self._key(RETIRED, f"{export_name}/{result_id}"), "day": {"S": day}, "at": {"S": now_text()}},
        )

    def retired(self) -> set[tuple[str, str]]:
        """(export, result id) of every result retention removed."""
        out: set[tuple[str, str]] = set()
        for item in self._query(RETIRED):
            export, _, rid = item["result_id"]["S"].partition("/")
            out.add((export, rid))
        return out


class SaltSecret:
    """The salt of person keys: the string value of its secret (never logged)."""

    def __init__(self, secrets_client: Any, secret_id: str) -> None:
        self._secrets = secrets_client
        self._id = secret_id

    def read(self) -> bytes:
        """The salt; ``ConfigError`` when the secret is missing or too short."""
        try:
            value = self._secrets.get_secret_value(SecretId=self._id).get("SecretString", "")
        except self._secrets.exceptions.ResourceNotFoundException:
            value = ""
        if len(value) < 32:
            raise ConfigError(
                f"the privacy salt secret {self._id} is missing or shorter than 32 characters: "
                "run `exportlake provision` locally, or deploy the stack (it creates it)"
            )
        return str(value).encode()
