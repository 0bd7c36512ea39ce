"""The planner: which results are new, which expired, and one copy job per new result. Stdlib only."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from exportlake.domain.errors import EnqueueError
from exportlake.domain.limits import STALE_AFTER_SECONDS
from exportlake.domain.models import CopyJob, Export, ResultRef, ResultState
from exportlake.domain.ports import Gateway, JobQueue, Ledger, LedgerEntry, Metrics, Notifier, notify_once

log = logging.getLogger(__name__)

# States in which the planner leaves a result alone: done or reported; in flight unless stale.
_DONE = {ResultState.COPIED, ResultState.EXPIRED}
_IN_FLIGHT = {ResultState.QUEUED, ResultState.COPYING}


def stale_before(now: datetime) -> str:
    """The ``updated_at`` below which an in-flight ledger entry is stale (ISO 8601, comparable as text)."""
    return (now - timedelta(seconds=STALE_AFTER_SECONDS)).astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class ExportPlan:
    """What one export needs: results to copy and results that expired before they could be."""

    export_name: str
    to_copy: tuple[ResultRef, ...]
    expired: tuple[ResultRef, ...]


def plan_export(
    export: Export,
    listed: list[ResultRef],
    known: dict[str, LedgerEntry],
    now: datetime,
    *,
    retry_failed: bool = False,
) -> ExportPlan:
    """Compare the gateway's results (``last_run`` and the paged list) with the ledger.

    The union matters: ``last_run`` may be newer than the list a moment ago, and the list holds results created
    between two runs that ``last_run`` no longer names. Oldest first, so a lake fills in creation order.
    """
    candidates = {r.result_id: r for r in listed}
    if export.last_run is not None:
        candidates.setdefault(export.last_run.result_id, export.last_run)
    to_copy: list[ResultRef] = []
    expired: list[ResultRef] = []
    stale = stale_before(now)
    for ref in sorted(candidates.values()):
        entry = known.get(ref.result_id)
        if entry is not None and (
            entry.state in _DONE
            or (entry.state in _IN_FLIGHT and (not entry.updated_at or entry.updated_at >= stale))
            or (entry.state == ResultState.FAILED and not retry_failed)
        ):
            continue
        (expired if ref.is_expired(now) else to_copy).append(ref)
    return ExportPlan(export.system_name, tuple(to_copy), tuple(expired))


@dataclass
class PlanReport:
    """The outcome of one planner run."""

    exports: int = 0
    enqueued: list[tuple[str, str]] = field(default_factory=list)
    expired: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    expiring: list[tuple[str, str]] = field(default_factory=list)


class Planner:
    """Runs a plan for every export and enqueues one copy job per new result."""

    #: How long before its expiry an uncopied (or failed) result is announced with ``result.expiring``.
    expiring_within: timedelta = timedelta(hours=24)

    def __init__(self, gateway: Gateway, ledger: Ledger, queue: JobQueue, notifier: Notifier, metrics: Metrics):
        self._gateway = gateway
        self._ledger = ledger
        self._queue = queue
        self._notifier = notifier
        self._metrics = metrics

    def run(
        self,
        now: datetime,
        *,
        retry_failed: bool = False,
        only_exports: frozenset[str] | None = None,
        since: datetime | None = None,
        dry_run: bool = False,
    ) -> PlanReport:
        """Plan every export (or only ``only_exports``; only results created at or after ``since``).

        An export that fails is reported and the others still run. ``dry_run`` writes nothing: ``enqueued`` and
        ``expired`` then list what a real run would queue and report.
        """
        report = PlanReport()
        exports = self._gateway.list_exports()
        if only_exports is not None:
            exports = [e for e in exports if e.system_name in only_exports]
        report.exports = len(exports)
        for export in exports:
            try:
                if since is not None or dry_run:
                    self._plan_selected(export, now, report, retry_failed, since, dry_run)
                    continue
                self._plan_one(export, now, report, retry_failed)
            except Exception as exc:  # AWS errors too: one export's failure must not stop the others
                log.error("planning export %s failed: %s", export.system_name, exc)
                report.errors.append(f"{export.system_name}: {exc}")
        self._metrics.add("ResultsEnqueued", len(report.enqueued), "Count")
        self._metrics.add("ResultsExpired", len(report.expired), "Count")
        self._metrics.add("ResultsExpiring", len(report.expiring), "Count")
        return report

    def _plan_one(
        self, export: Export, now: datetime, report: PlanReport, retry_failed: bool, since: datetime | None = None
    ) -> None:
        # An export that never ran has nothing to list; skip the round trip.
        listed = [] if export.last_run is None else self._gateway.list_results(export.system_name)
        known = self._ledger.entries(export.system_name)
        plan = _cut(plan_export(export, listed, known, now, retry_failed=retry_failed), since)
        stale = stale_before(now)
        for ref in plan.expired:
            # The conditional write makes the report happen once, however many planners run.
            if self._ledger.mark_expired(ref, stale_before=stale):
                report.expired.append((ref.export_name, ref.result_id))
                expires = "" if ref.expires_at is None else ref.expires_at.isoformat()
                self._send(ref.export_name, ref.result_id, ResultState.EXPIRED, ref.created_at.isoformat(), expires)
        # Notifications owed from earlier runs (their publish failed after the ledger write).
        for entry in known.values():
            if entry.state in (ResultState.EXPIRED, ResultState.FAILED) and not entry.notified:
                detail = entry.expires_at if entry.state == ResultState.EXPIRED else entry.error
                self._send(entry.export_name, entry.result_id, entry.state, entry.created_at, detail)
        claimed = [
            ref for ref in plan.to_copy if self._ledger.claim_queued(ref, retry_failed=retry_failed, stale_before=stale)
        ]
        if claimed:
            try:
                self._queue.send([CopyJob.for_result(ref) for ref in claimed])
            except Exception as exc:
                # Without its message a "queued" result would wait until it goes stale: give back the claims of
                # the jobs that did not go out (those that did stay claimed), then fail.
                sent = exc.sent if isinstance(exc, EnqueueError) else set()
                for ref in claimed:
                    if ref.result_id not in sent:
                        self._ledger.release_queued(ref)
                raise
            report.enqueued.extend((r.export_name, r.result_id) for r in claimed)
        self._warn_expiring(export, listed, known, now, report)

    def _warn_expiring(
        self, export: Export, listed: list[ResultRef], known: dict[str, LedgerEntry], now: datetime, report: PlanReport
    ) -> None:
        """Publish ``result.expiring`` once per result not copied yet that expires within ``expiring_within``."""
        horizon = now + self.expiring_within
        candidates = {r.result_id: r for r in listed}
        if export.last_run is not None:
            candidates.setdefault(export.last_run.result_id, export.last_run)
        for ref in sorted(candidates.values()):
            entry = known.get(ref.result_id)
            if ref.expires_at is None or ref.is_expired(now) or ref.expires_at > horizon:
                continue
            if entry is not None and entry.state in _DONE:
                continue
            # The ledger flag makes it once, however many planners run; a failed publish gives the flag back.
            if not self._ledger.claim_expiring_notice(ref.export_name, ref.result_id):
                continue
            try:
                publish_expiring(self._notifier, ref, entry.state.value if entry else ResultState.QUEUED.value, now)
            except BaseException:
                self._ledger.release_expiring_notice(ref.export_name, ref.result_id)
                raise
            report.expiring.append((ref.export_name, ref.result_id))

    def _plan_selected(
        self, export: Export, now: datetime, report: PlanReport, retry_failed: bool, since: datetime | None, dry: bool
    ) -> None:
        """A backfill: the plan limited to results created at or after ``since``; ``dry`` only reports it."""
        if not dry:
            # Same path as a normal run, with the gateway's answers cut to the selected results.
            self._plan_one(export, now, report, retry_failed, since=since)
            return
        listed = [] if export.last_run is None else self._gateway.list_results(export.system_name)
        known = self._ledger.entries(export.system_name)
        plan = _cut(plan_export(export, listed, known, now, retry_failed=retry_failed), since)
        report.enqueued.extend((r.export_name, r.result_id) for r in plan.to_copy)
        report.expired.extend((r.export_name, r.result_id) for r in plan.expired)

    def _send(self, export_name: str, result_id: str, state: ResultState, created_at: str, detail: str) -> None:
        """Notify an expired (``detail``: expires_at) or failed (``detail``: the error) result, once."""

        def send() -> None:
            if state == ResultState.EXPIRED:
                publish_expired(self._notifier, export_name, result_id, created_at, detail)
            else:
                publish_failed(self._notifier, export_name, result_id, detail)

        notify_once(self._ledger, export_name, result_id, state, send)


def _cut(plan: ExportPlan, since: datetime | None) -> ExportPlan:
    """``plan`` without the results created before ``since`` (``last_run`` included)."""
    if since is None:
        return plan
    return ExportPlan(
        plan.export_name,
        tuple(r for r in plan.to_copy if r.created_at >= since),
        tuple(r for r in plan.expired if r.created_at >= since),
    )


def publish_expired(notifier: Notifier, export_name: str, result_id: str, created_at: str, expires_at: str) -> None:
    """``result.expired``: the result expired on the gateway before it could be copied."""
    notifier.publish(
        "result.expired",
        export_name,
        f"exportlake: result {result_id} of {export_name} expired before it was copied",
        {"export": export_name, "result_id": result_id, "created_at": created_at, "expires_at": expires_at or None},
    )


def publish_expiring(notifier: Notifier, ref: ResultRef, state: str, now: datetime) -> None:
    """``result.expiring``: a result not copied yet expires soon (sent once per result)."""
    expires = ref.expires_at or now
    notifier.publish(
        "result.expiring",
        ref.export_name,
        f"exportlake: result {ref.result_id} of {ref.export_name} expires before it is copied",
        {
            "export": ref.export_name,
            "result_id": ref.result_id,
            "created_at": ref.created_at.isoformat(),
            "expires_at": expires.isoformat(),
            "hours_left": round((expires - now).total_seconds() / 3600, 1),
            "state": state,
        },
    )


def publish_failed(notifier: Notifier, export_name: str, result_id: str, error: str) -> None:
    """``result.failed``: copying the result failed for good (retries exhausted, or an error no retry fixes)."""
    notifier.publish(
        "result.failed",
        export_name,
        f"exportlake: copying result {result_id} of {export_name} failed",
        {"export": export_name, "result_id": result_id, "error": error[:1000]},
    )
