"""``exportlake query --athena``: run SQL on the deployed Athena workgroup (CLI only, never in the Lambda bundle).

The client is injected (a boto3 ``athena`` client), so tests drive it with botocore's Stubber. The query runs in
the stack's workgroup (which enforces its result location, encryption and bytes-scanned cutoff) against the stack's
Glue database, both read from the stack outputs unless given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from exportlake.domain.errors import ExportlakeError

#: Athena's price per TiB scanned (us-east-1 and most regions), and its 10 MB minimum per query.
PRICE_PER_TIB_USD = 5.0
MIN_BILLED_BYTES = 10 * 1024 * 1024
_TIB = 1024**4
_DONE = {"SUCCEEDED", "FAILED", "CANCELLED"}


def cost_estimate_usd(bytes_scanned: int) -> float:
    """What Athena bills for a query that scanned ``bytes_scanned`` (rounded up to the 10 MB minimum)."""
    return max(bytes_scanned, MIN_BILLED_BYTES) / _TIB * PRICE_PER_TIB_USD


@dataclass(frozen=True)
class AthenaResult:
    """The outcome of one query: columns, rows (typed from Athena's column types), and what it cost."""

    query_id: str
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool
    bytes_scanned: int
    engine_ms: int

    @property
    def cost_usd(self) -> float:
        """The estimated cost of the query."""
        return cost_estimate_usd(self.bytes_scanned)


def _convert(athena_type: str, text: str | None) -> Any:
    if text is None:
        return None
    kind = athena_type.lower()
    if kind in ("tinyint", "smallint", "integer", "int", "bigint"):
        return int(text)
    if kind in ("double", "float", "real"):
        return float(text)
    if kind == "boolean":
        return text == "true"
    return text


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    """The outputs of a deployed stack, key → value; a clear error if the stack is not there."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except Exception as exc:  # botocore's ClientError, or no credentials/region: one line either way
        raise ExportlakeError(f"cannot read the outputs of stack {stack_name!r}: {exc}") from None
    return {o["OutputKey"]: o["OutputValue"] for s in stacks for o in s.get("Outputs", [])}


class AthenaQuery:
    """Start a query in a workgroup, poll it with exponential backoff, fetch its (capped) results."""

    def __init__(
        self,
        client: Any,
        workgroup: str,
        database: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        first_delay_s: float = 0.2,
        max_delay_s: float = 5.0,
        timeout_s: float = 30 * 60,
    ) -> None:
        """Keep the client and where to run; ``sleep`` is injectable so tests never wait."""
        self._athena = client
        self.workgroup = workgroup
        self.database = database
        self._sleep = sleep
        self._first_delay = first_delay_s
        self._max_delay = max_delay_s
        self._timeout = timeout_s

    def run(self, sql: str, limit: int | None = None) -> AthenaResult:
        """Run ``sql``; return at most ``limit`` rows (all if ``None``); a failed query raises with Athena's reason."""
        started = self._athena.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": self.database},
            WorkGroup=self.workgroup,
        )
        query_id = started["QueryExecutionId"]
        execution = self._wait(query_id)
        status = execution["Status"]
        if status["State"] != "SUCCEEDED":
            reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get("ErrorMessage") or "no reason"
            raise ExportlakeError(f"Athena query {query_id} {status['State'].lower()}: {' '.join(reason.split())}")
        stats = execution.get("Statistics", {})
        columns, rows, truncated = self._results(query_id, limit)
        return AthenaResult(
            query_id=query_id,
            columns=columns,
            rows=rows,
            truncated=truncated,
            bytes_scanned=int(stats.get("DataScannedInBytes", 0)),
            engine_ms=int(stats.get("EngineExecutionTimeInMillis", 0)),
        )

    def _wait(self, query_id: str) -> dict[str, Any]:
        delay = self._first_delay
        waited = 0.0
        while True:
            execution: dict[str, Any] = self._athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            if execution["Status"]["State"] in _DONE:
                return execution
            if waited >= self._timeout:
                self._athena.stop_query_execution(QueryExecutionId=query_id)
                raise ExportlakeError(f"Athena query {query_id} still running after {self._timeout:.0f} s: stopped")
            self._sleep(delay)
            waited += delay
            delay = min(delay * 2, self._max_delay)

    def _pages(self, query_id: str) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"QueryExecutionId": query_id, "MaxResults": 1000}
            if token:
                kwargs["NextToken"] = token
            page: dict[str, Any] = self._athena.get_query_results(**kwargs)
            yield page
            token = page.get("NextToken")
            if not token:
                return

    def _results(self, query_id: str, limit: int | None) -> tuple[list[str], list[tuple[Any, ...]], bool]:
        columns: list[str] = []
        types: list[str] = []
        rows: list[tuple[Any, ...]] = []
        first = True
        for page in self._pages(query_id):
            result_set = page.get("ResultSet", {})
            if first:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [c["Name"] for c in info]
                types = [c.get("Type", "varchar") for c in info]
            for n, raw in enumerate(result_set.get("Rows", [])):
                texts = [d.get("VarCharValue") for d in raw.get("Data", [])]
                # A SELECT's first row repeats the column names; a DDL statement's does not.
                if first and n == 0 and texts == columns:
                    continue
                if limit is not None and len(rows) >= limit:
                    return columns, rows, True
                rows.append(tuple(_convert(t, v) for t, v in zip(types, texts, strict=False)))
            first = False
        return columns, rows, False
