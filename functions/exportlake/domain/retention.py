"""Retention: results older than ``lakeRetentionDays`` leave the lake whole — partition, every object, every version.

A result is retired under the same hold as an erasure (``domain.erasing``): its partition is deleted first (Athena
stops reading it at once, whole), then every version of its parts, raw original, id index and manifest, and it is
recorded as retired (so ``verify`` expects it gone and the ledger keeps it copied: it is never copied again).
Stdlib only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from exportlake.domain import notices
from exportlake.domain.erasing import EraseService
from exportlake.domain.erasure import ResultErasure, result_prefixes
from exportlake.domain.location import ResultLocation
from exportlake.domain.ports import Notifier
from exportlake.domain.timefmt import day_of

#: Retention runs at most this often (the schedule may fire more often; a run with nothing old is cheap anyway).
RETIRE_EVERY = timedelta(days=1)


class RetirablePartitions(Protocol):
    """The Glue side of retention."""

    def tables(self) -> list[str]: ...

    def older_than(self, table: str, day: str) -> list[tuple[list[str], str]]: ...

    def drop_partition(self, table: str, values: Sequence[str]) -> None: ...


class RetiredStore(Protocol):
    """Which results retention removed."""

    def mark_retired(self, export_name: str, result_id: str, day: str) -> None: ...


@dataclass
class RetireReport:
    """What one retention run removed."""

    days: int
    before: str
    results: list[ResultErasure] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """For ``results.retired`` and ``--json`` (result ids and counts only)."""
        return {
            "retention_days": self.days,
            "created_before": self.before,
            "results": len(self.results),
            "by_export": {
                e: sum(1 for r in self.results if r.export_name == e)
                for e in sorted({r.export_name for r in self.results})
            },
            "objects_deleted": sum(r.objects_deleted for r in self.results),
            "versions_deleted": sum(r.versions_deleted for r in self.results),
            "pending": [f"{e}/{r}" for e, r in self.pending],
        }


class RetentionService:
    """Removes results older than the retention period, whole, and announces each run that removed any."""

    def __init__(
        self, eraser: EraseService, partitions: RetirablePartitions, retired: RetiredStore, notifier: Notifier
    ) -> None:
        self._eraser = eraser
        self._partitions = partitions
        self._retired = retired
        self._notifier = notifier

    def expired(self, days: int, now: datetime) -> tuple[str, list[tuple[str, list[str]]]]:
        """The first day kept, and (table, partition values) of every result created before it."""
        before = day_of(now - timedelta(days=days))
        found = [(t, values) for t in self._partitions.tables() for values, _ in self._partitions.older_than(t, before)]
        return before, found

    def run(self, days: int, now: datetime) -> RetireReport:
        """Retire every result older than ``days`` (0: keep forever, nothing to do)."""
        before, found = self.expired(days, now) if days > 0 else ("", [])
        report = RetireReport(days, before)
        for table, values in found:
            outcome = self.retire(table, values)
            if outcome.state == "pending":
                report.pending.append((outcome.export_name, outcome.result_id))
            else:
                report.results.append(outcome)
        if report.results:
            notices.results_retired(self._notifier, report.as_dict())
        return report

    def retire(self, table: str, values: Sequence[str]) -> ResultErasure:
        """Remove one result: its partition, then every version of its objects; record it."""
        export, day, result = values
        out = ResultErasure(export, result, table)
        lease = self._eraser.hold(f"{export}/{result}")
        if lease is None:
            out.state = "pending"
            return out
        try:
            manifest = self._eraser.manifest(export, result)
            lease.confirm()
            self._partitions.drop_partition(table, values)
            created = manifest.created_at if manifest is not None else datetime.fromisoformat(f"{day}T00:00:00+00:00")
            base = ResultLocation.of(table, export, created, result)
            out.objects_deleted, out.versions_deleted = self._eraser.purge_all(
                result_prefixes(base.prefix, export, result)
            )
            self._retired.mark_retired(export, result, day)
        finally:
            self._eraser.release(lease, f"{export}/{result}")
        return out
