"""An erasure request worked as queue jobs (the deployed path): one ``find`` job per export, one ``erase`` per result.

Jobs carry person keys, never clear ids. Each job settles once (a marker in the privacy store): the request run's
open count starts at the number of find jobs, a find job adds its hits less itself, an erase job takes itself off;
the job that brings it to zero writes the audit record and sends ``person.erased``. Stdlib only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from exportlake.domain import notices
from exportlake.domain.erasing import EraseService
from exportlake.domain.erasure import EraseReport
from exportlake.domain.models import ResultState
from exportlake.domain.naming import validate_export_name, validate_result_id
from exportlake.domain.ports import LedgerEntry, Notifier
from exportlake.domain.retention import RetentionService
from exportlake.domain.timefmt import now_text

FIND = "find"
ERASE = "erase"
RETIRE = "retire"


class RunStore(Protocol):
    """The open-job count of a request run, settled once per job."""

    def open_run(self, run: str, jobs: int) -> None: ...

    def settle(self, run: str, job: str, delta: int) -> int | None: ...


class EntriesOf(Protocol):
    """The ledger's entries of one export (a Query, not a Scan)."""

    def entries(self, export_name: str) -> dict[str, LedgerEntry]: ...


class EraseJobs:
    """Opens request runs and works their jobs."""

    def __init__(
        self,
        service: EraseService,
        ledger: EntriesOf,
        runs: RunStore,
        send: Callable[[list[dict[str, Any]]], None],
        exports: Callable[[], list[str]],
        retention: RetentionService | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self._service = service
        self._ledger = ledger
        self._runs = runs
        self._send = send
        self._exports = exports
        self._retention = retention
        self._notifier = notifier

    def _keys(self, job: Mapping[str, Any]) -> dict[str, set[str]]:
        return {str(col): {str(k) for k in keys} for col, keys in dict(job["keys"]).items()}

    def _copied(self, export: str) -> list[tuple[str, str]]:
        return [(export, rid) for rid, e in self._ledger.entries(export).items() if e.state == ResultState.COPIED]

    def open(self, users: Iterable[str], clients: Iterable[str]) -> dict[str, Any]:
        """Suppress the persons and queue one find job per export; the request and run ids."""
        keys = self._service.keys_of(users, clients)
        exports = sorted(self._exports())
        candidates = [c for e in exports for c in self._copied(e)] if keys.get("client_id") else []
        rid, keys, added = self._service.open_request(keys, candidates)
        run = f"{rid}.{int(time.time() * 1000)}"
        wire = {col: sorted(ks) for col, ks in keys.items()}
        self._runs.open_run(run, len(exports))
        self._send([{"kind": FIND, "run": run, "request": rid, "export": e, "keys": wire} for e in exports])
        return {"request_id": rid, "run": run, "exports": len(exports), "suppressed_added": added}

    def dry_run(self, users: Iterable[str], clients: Iterable[str]) -> dict[str, Any]:
        """What the request would change (nothing is written)."""
        keys = self._service.keys_of(users, clients)
        candidates = [c for e in sorted(self._exports()) for c in self._copied(e)]
        return self._service.erase(keys, candidates, dry_run=True).as_dict()

    def retire(self, days: int, now: datetime) -> dict[str, Any]:
        """Queue one ``retire`` job per result older than ``days`` (the schedule's daily call) and announce it."""
        if self._retention is None or days <= 0:
            return {"retire": 0}
        before, found = self._retention.expired(days, now)
        self._send([{"kind": RETIRE, "table": t, "values": list(v)} for t, v in found])
        if found:
            record = {"retention_days": days, "created_before": before, "results": len(found)}
            if self._notifier is not None:
                notices.results_retired(self._notifier, record)
        return {"retire": len(found), "created_before": before}

    def work(self, job: Mapping[str, Any]) -> bool:
        """Work one job; False when its result is still being copied or erased (the queue retries it)."""
        if job.get("kind") == RETIRE and self._retention is not None:
            values = [str(v) for v in job["values"]]
            validate_export_name(values[0]), validate_result_id(values[2])
            return self._retention.retire(str(job["table"]), values).state != "pending"
        kind, run, rid = job.get("kind"), str(job["run"]), str(job["request"])
        export = validate_export_name(job["export"])
        keys = self._keys(job)
        if kind == FIND:
            earlier = {(r.export_name, r.result_id) for r in self._service.results_of(rid) if r.export_name == export}
            hits = sorted(set(self._service.find(keys, self._copied(export))) | earlier)
            # Settled before the erase jobs go out (an erase job settling first could close the run early); a retry
            # sends them again (an erase job is idempotent and settles once).
            left = self._runs.settle(run, f"{FIND}/{export}", len(hits) - 1)
            if hits:
                wire = dict(job["keys"])
                self._send(
                    [
                        {"kind": ERASE, "run": run, "request": rid, "export": e, "result_id": r, "keys": wire}
                        for e, r in hits
                    ]
                )
        elif kind == ERASE:
            result = validate_result_id(job["result_id"])
            outcome = self._service.erase_result(export, result, keys, rid)
            if outcome.state == "pending":
                return False
            left = self._runs.settle(run, f"{ERASE}/{export}/{result}", -1)
        else:
            raise ValueError(f"unknown erase job kind {kind!r}")
        if left == 0:
            report = EraseReport(rid, persons=sum(len(v) for v in keys.values()), at=now_text())
            report.results = self._service.results_of(rid)
            self._service.finish(report)
        return True
