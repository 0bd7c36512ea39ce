"""The planner: which results are new, lost or expired, and one copy job for each that needs copying. Stdlib only.

One bad item never blocks the others: an export or result that fails validation is reported (log, metric, one
``export.invalid``/``result.invalid`` notice per item) and skipped, and one export's failure does not stop the
rest. A run that fails as a whole (credentials, secret, gateway down) is told once per cause (``sync.failed``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from exportlake.domain import metricnames, notices, wording
from exportlake.domain.errors import (
    EnqueueError,
    ExportlakeError,
)
from exportlake.domain.limits import QUEUED_LOST_AFTER_SECONDS, UNSENT_AFTER_SECONDS
from exportlake.domain.models import CopyJob, Export, ResultRef, ResultState
from exportlake.domain.planrequest import PlanRequest, run_failure_cause
from exportlake.domain.ports import ExportState, Gateway, JobQueue, Ledger, LedgerEntry, Metrics, Notifier
from exportlake.domain.reconcile import Reconciler
from exportlake.domain.timefmt import to_text
from exportlake.domain.watermarks import RECONCILE_SLICE_SECONDS, read_new

__all__ = ["ExportPlan", "LostBounds", "PlanReport", "PlanRequest", "Planner", "plan_export", "run_failure_cause"]

log = logging.getLogger(__name__)

#: Seconds a planner run keeps in hand: it starts no new export with less than this left (the next run goes on).
RUN_MARGIN_SECONDS = 30.0
#: A ``sync.failed`` for the same cause is repeated at most this often.
RUN_ALERT_REPEAT = timedelta(hours=24)
RUN_ALERT_KEY = "sync"


@dataclass(frozen=True)
class LostBounds:
    """When an in-flight ledger entry counts as lost (its job never left, was lost, or its copier died)."""

    now: str
    unsent_before: str
    queued_before: str

    @classmethod
    def at(cls, now: datetime) -> LostBounds:
        """The bounds in force at ``now`` (from the queue settings, see ``domain.limits``)."""
        return cls(
            now=to_text(now),
            unsent_before=to_text(now - timedelta(seconds=UNSENT_AFTER_SECONDS)),
            queued_before=to_text(now - timedelta(seconds=QUEUED_LOST_AFTER_SECONDS)),
        )

    def is_lost(self, entry: LedgerEntry) -> bool:
        """True if ``entry`` is queued/copying but nothing will finish it without a new job."""
        if not entry.updated_at:
            return False  # age unknown: left to its job
        if entry.state == ResultState.QUEUED:
            if not entry.enqueued and entry.updated_at < self.unsent_before:
                return True
            return entry.updated_at < self.queued_before
        if entry.state == ResultState.COPYING:
            if entry.lease_until:
                return entry.lease_until < self.now
            return entry.updated_at < self.unsent_before
        return False

    def owes_notice(self, entry: LedgerEntry) -> bool:
        """True if ``entry`` is copied but its ``result.copied`` was never sent and nobody is sending it."""
        return (
            entry.state == ResultState.COPIED
            and not entry.notified
            and entry.updated_at < self.unsent_before
            and (not entry.notify_until or entry.notify_until < self.now)
        )


@dataclass(frozen=True)
class ExportPlan:
    """What one export needs: results to copy, results that expired first, copied results owing their notice."""

    export_name: str
    to_copy: tuple[ResultRef, ...]
    expired: tuple[ResultRef, ...]
    renotify: tuple[ResultRef, ...] = ()


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
    bounds = LostBounds.at(now)
    to_copy: list[ResultRef] = []
    expired: list[ResultRef] = []
    renotify: list[ResultRef] = []
    for ref in sorted(candidates.values()):
        entry = known.get(ref.result_id)
        if entry is not None:
            if bounds.owes_notice(entry):
                renotify.append(ref)
            if entry.state in (ResultState.COPIED, ResultState.EXPIRED):
                continue
            if entry.state in (ResultState.QUEUED, ResultState.COPYING) and not bounds.is_lost(entry):
                continue
            if entry.state == ResultState.FAILED and not retry_failed:
                continue
        (expired if ref.is_expired(now) else to_copy).append(ref)
    return ExportPlan(export.system_name, tuple(to_copy), tuple(expired), tuple(renotify))


@dataclass
class PlanReport:
    """The outcome of one planner run."""

    exports: int = 0
    enqueued: list[tuple[str, str]] = field(default_factory=list)
    expired: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Items from the API that failed validation and were skipped: (what, item, error).
    invalid: list[tuple[str, str, str]] = field(default_factory=list)
    #: Exports left for the next run because this one ran out of time.
    deferred: list[str] = field(default_factory=list)
    #: Failed results queued again by ``retry_failed`` (their dead letters are removed at the end of the run).
    retried_failed: set[tuple[str, str]] = field(default_factory=set)
    #: Results not copied yet that expire soon, announced by this run.
    expiring: list[tuple[str, str]] = field(default_factory=list)
    #: Every result this run planned (so the reconciliation's pages do not plan one twice in a run).
    looked: set[tuple[str, str]] = field(default_factory=set)


class Planner:
    """Runs a plan for every export and enqueues one copy job per result that needs copying."""

    #: How long before its expiry an uncopied (or failed) result is announced with ``result.expiring``.
    expiring_within: timedelta = timedelta(hours=24)

    #: How often the full pass over every export's listing runs (``reconcileHours``).
    reconcile_every: timedelta = timedelta(hours=24)

    def __init__(
        self,
        gateway: Gateway,
        ledger: Ledger,
        queue: JobQueue,
        notifier: Notifier,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._gateway = gateway
        self._ledger = ledger
        self._queue = queue
        self._notifier = notifier
        self._metrics = metrics
        self._clock = clock

    def run(
        self,
        now: datetime,
        *,
        retry_failed: bool = False,
        remaining: Callable[[], float] | None = None,
        only_exports: frozenset[str] | None = None,
        since: datetime | None = None,
        dry_run: bool = False,
    ) -> PlanReport:
        """Plan every export (or only ``only_exports``; only results created at or after ``since``).

        An export that fails is reported and the others still run. ``remaining`` gives the seconds left in this
        invocation: with too little left, the exports not yet planned are deferred to the next run, which starts
        with them (nothing is lost or repeated). ``dry_run`` writes nothing: ``enqueued`` and ``expired`` then
        list what a real run would queue and report.
        """
        report = PlanReport()
        try:
            exports = self._gateway.list_exports(on_invalid=lambda *a: self._invalid(report, "", *a))
        except Exception as exc:
            self._run_failed(exc, now)
            raise
        self._run_ok()
        if only_exports is not None:
            exports = [e for e in exports if e.system_name in only_exports]
        report.exports = len(exports)
        cursor = self._ledger.cursor()
        plain = since is None and not dry_run
        states = self._ledger.export_states() if plain else {}
        last = ""
        for export in self._in_turn(exports, cursor):
            if remaining is not None and remaining() < RUN_MARGIN_SECONDS:
                report.deferred.append(export.system_name)
                continue
            try:
                if not plain:
                    self._plan_selected(export, now, report, retry_failed, since, dry_run)
                    continue
                state = self._plan_one(export, now, report, retry_failed, states.get(export.system_name))
                states[export.system_name] = state
            except Exception as exc:  # AWS errors too: one export's failure must not stop the others
                log.error("planning export %s failed: %s", export.system_name, exc)
                report.errors.append(f"{export.system_name}: {exc}")
            last = export.system_name
        if plain:
            planned = {e.system_name: e for e in exports if e.system_name not in report.deferred}
            Reconciler(self, states, now, report, retry_failed).run(planned, lambda: self._slice(remaining))
        if report.deferred:
            self._ledger.save_cursor(last or cursor)  # the next run starts after the last export planned
        elif cursor:
            self._ledger.save_cursor("")
        self._metrics.add(metricnames.RESULTS_ENQUEUED, len(report.enqueued), "Count")
        self._metrics.add(metricnames.RESULTS_EXPIRED, len(report.expired), "Count")
        if report.retried_failed:
            # Their dead letters are superseded by the new jobs; left there they keep the DLQ alarm red. Once per
            # run: a receive hides the other messages for a while, so a second pass would not see them.
            try:
                self._queue.discard_dead_letters(report.retried_failed)
            except Exception as exc:
                log.error("could not clear the dead letters of re-queued results: %s", exc)
                report.errors.append(f"dead letters: {exc}")
        if report.invalid:
            self._metrics.add(metricnames.ITEMS_INVALID, len(report.invalid), "Count")
        self._metrics.add(metricnames.RESULTS_EXPIRING, len(report.expiring), "Count")
        return report

    @staticmethod
    def _in_turn(exports: list[Export], cursor: str) -> list[Export]:
        """Exports by name, starting after ``cursor``, the last one a deferring run planned (deferred go first)."""
        ordered = sorted(exports, key=lambda e: e.system_name)
        later = [e for e in ordered if e.system_name > cursor]
        return later + [e for e in ordered if e.system_name <= cursor]

    def _plan_one(
        self, export: Export, now: datetime, report: PlanReport, retry_failed: bool, state: ExportState | None
    ) -> ExportState:
        """A plain run's plan of one export: what is new at the top of its listing, and its unfinished entries.

        Reads only what is new (``domain.watermarks``) and the sparse index of unfinished entries, never the whole
        listing or history, unless the listing is not served newest first (then it pages everything, as it must).
        Returns the export's new state, saved once its jobs went out.
        """
        name = export.system_name

        def on_invalid(*a: Any) -> None:
            self._invalid(report, name, *a)

        if state is None:
            adopted = self._ledger.adopt(name)  # entries written before the index: findable from now on
            if adopted:
                log.info("export %s: %d unfinished entries from before the index now indexed", name, adopted)
        inc = read_new(export, state, lambda n: self._gateway.results_page(name, n, on_invalid), now)
        self._tell_last_run_error(export, report)
        if not inc.complete:
            log.info("export %s: %s; a full pass over its listing follows", name, inc.reason)
        known = self._ledger.open_entries(name)
        listed = list(inc.new)
        if not inc.ordered and inc.state.total:
            # No order to rely on: only the whole listing tells what is missing (the documented fallback).
            listed = self._gateway.list_results(name, on_invalid=on_invalid)
            known = self._ledger.entries(name)
        planned_before = (
            state is not None and export.last_run is not None and export.last_run.result_id == state.newest_id
        )
        # ``last_run`` already planned (the watermark): not a candidate again (a claim would only be refused).
        self.apply(
            Export(export.id, name, None) if planned_before else export, listed, known, now, report, retry_failed
        )
        if inc.state != state:
            self._ledger.save_export_state(inc.state)
        return inc.state

    def apply(
        self,
        export: Export,
        listed: list[ResultRef],
        known: dict[str, LedgerEntry],
        now: datetime,
        report: PlanReport,
        retry_failed: bool,
        since: datetime | None = None,
    ) -> None:
        """Plan ``listed`` and the unfinished ``known`` entries of one export, and act: expire, notify, enqueue."""
        candidates = list(listed)
        seen = {r.result_id for r in listed}
        for entry in known.values():
            if entry.result_id not in seen and entry.export_name == export.system_name:
                try:
                    candidates.append(entry.ref)
                except ExportlakeError as exc:  # a stored entry we cannot turn back into a result: say so
                    log.error("ledger entry %s/%s is not valid: %s", entry.export_name, entry.result_id, exc)
        plan = _cut(plan_export(export, candidates, known, now, retry_failed=retry_failed), since)
        report.looked |= {(r.export_name, r.result_id) for r in candidates}
        bounds = LostBounds.at(now)
        for ref in plan.expired:
            # The conditional write makes the report happen once, however many planners run.
            if self._ledger.mark_expired(ref, now=bounds.now):
                report.expired.append((ref.export_name, ref.result_id))
                expires = "" if ref.expires_at is None else to_text(ref.expires_at)
                self._send(ref.export_name, ref.result_id, ResultState.EXPIRED, to_text(ref.created_at), expires)
        # Notifications owed from earlier runs (their publish failed after the ledger write).
        for entry in known.values():
            if entry.state in (ResultState.EXPIRED, ResultState.FAILED) and not entry.notified:
                detail = entry.expires_at if entry.state == ResultState.EXPIRED else entry.error
                self._send(entry.export_name, entry.result_id, entry.state, entry.created_at, detail)
        claimed = [
            ref
            for ref in plan.to_copy
            if self._ledger.claim_queued(
                ref,
                retry_failed=retry_failed,
                unsent_before=bounds.unsent_before,
                queued_before=bounds.queued_before,
                now=bounds.now,
            )
        ]
        # A copied result whose notice never went out: a job makes a copier send it (nothing is copied again).
        jobs = [CopyJob.for_result(ref) for ref in [*claimed, *plan.renotify]]
        if jobs:
            try:
                self._queue.send(jobs)
            except Exception as exc:
                # Give back the claims of the jobs that did not go out (those that did stay claimed), then fail.
                sent = exc.sent if isinstance(exc, EnqueueError) else set()
                for ref in claimed:
                    if ref.result_id in sent:
                        self._ledger.mark_enqueued(ref)
                    else:
                        self._ledger.release_queued(ref)
                raise
            for ref in claimed:
                self._ledger.mark_enqueued(ref)
            report.enqueued.extend((r.export_name, r.result_id) for r in claimed)
        retried = {
            (r.export_name, r.result_id)
            for r in claimed
            if known.get(r.result_id) and known[r.result_id].state == ResultState.FAILED
        }
        report.retried_failed |= retried
        self._warn_expiring(export, candidates, known, now, report)

    def _tell_last_run_error(self, export: Export, report: PlanReport) -> None:
        if export.last_run_error and not any(
            e == export.last_run_error for _, _, e in report.invalid
        ):  # told once: the newest result is usually in the listing too, already reported there
            self._invalid(report, export.system_name, "last_run", export.system_name, export.last_run_error)

    def _slice(self, remaining: Callable[[], float] | None) -> float:
        """Seconds this run may spend on reconciliation: the slice, within the run's margin."""
        if remaining is None:
            return RECONCILE_SLICE_SECONDS
        return max(0.0, min(RECONCILE_SLICE_SECONDS, remaining() - RUN_MARGIN_SECONDS))

    @property
    def gateway(self) -> Gateway:
        """The gateway this planner lists from (the reconciler pages through it)."""
        return self._gateway

    @property
    def ledger(self) -> Ledger:
        """The ledger this planner writes (the reconciler reads and saves cursors through it)."""
        return self._ledger

    def monotonic(self) -> float:
        """The planner's clock for time slices (seconds)."""
        return self._clock()

    def invalid(self, report: PlanReport, export_name: str, *args: Any) -> None:
        """Report one item that failed validation (see ``_invalid``)."""
        self._invalid(report, export_name, *args)

    # -- reporting --------------------------------------------------------------------------------------------
    def _invalid(self, report: PlanReport, export_name: str, what: str, item: str, error: Exception | str) -> None:
        """Report one item that failed validation: log, count, and one notice per item, ever."""
        message = str(error)
        if (what, item, message) in report.invalid:
            return  # read twice in one run (the top of a listing, then its full pass): told once
        report.invalid.append((what, item, message))
        log.error("skipped invalid %s %s: %s", what, item[:200], message)
        event = notices.EXPORT_INVALID if what == "export" else notices.RESULT_INVALID
        key = "invalid-" + hashlib.sha256(f"{export_name}\0{what}\0{item}".encode()).hexdigest()[:32]
        try:
            if self._ledger.claim_alert(key, "1", resend_before=""):
                try:
                    notices.item_invalid(self._notifier, event, export_name, item, message)
                except Exception:
                    self._ledger.release_alert(key)
                    raise
        except Exception as exc:  # telling must not stop planning the healthy items
            log.error("could not report invalid %s: %s", what, exc)

    def _run_failed(self, exc: BaseException, now: datetime) -> None:
        """Tell a whole-run failure once per cause (again after ``RUN_ALERT_REPEAT``); never raise from here."""
        cause, fix = run_failure_cause(exc)
        self._metrics.add(metricnames.RUNS_FAILED, 1, "Count")
        try:
            resend_before = to_text(now - RUN_ALERT_REPEAT)
            if self._ledger.claim_alert(RUN_ALERT_KEY, cause, resend_before=resend_before):
                try:
                    notices.sync_failed(self._notifier, cause, wording.describe(exc), fix)
                except Exception:
                    self._ledger.release_alert(RUN_ALERT_KEY)
                    raise
        except Exception as alert_exc:
            log.error("could not publish sync.failed: %s", alert_exc)

    def _run_ok(self) -> None:
        try:
            if RUN_ALERT_KEY in self._ledger.alerts():
                self._ledger.release_alert(RUN_ALERT_KEY)  # the next failure is news again
        except Exception as exc:
            log.warning("could not clear the sync.failed record: %s", exc)

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
            if entry is not None and entry.state in (ResultState.COPIED, ResultState.EXPIRED):
                continue
            # The ledger flag makes it once, however many planners run; a failed publish gives the flag back.
            if not self._ledger.claim_expiring_notice(ref.export_name, ref.result_id):
                continue
            try:
                notices.result_expiring(
                    self._notifier, ref, entry.state.value if entry else ResultState.QUEUED.value, now
                )
            except BaseException:
                self._ledger.release_expiring_notice(ref.export_name, ref.result_id)
                raise
            report.expiring.append((ref.export_name, ref.result_id))

    def _plan_selected(
        self, export: Export, now: datetime, report: PlanReport, retry_failed: bool, since: datetime | None, dry: bool
    ) -> None:
        """A backfill: the whole listing, planned against the whole history, cut to results created at or after
        ``since``; ``dry`` only reports it. Sent by hand, so it may read everything; it moves no watermark."""
        on_invalid = (lambda *a: None) if dry else (lambda *a: self._invalid(report, export.system_name, *a))
        listed = self._gateway.list_results(export.system_name, on_invalid=on_invalid)
        if not dry:
            self._tell_last_run_error(export, report)
        known = self._ledger.entries(export.system_name)
        if not dry:
            self.apply(export, listed, known, now, report, retry_failed, since=since)
            return
        plan = _cut(plan_export(export, listed, known, now, retry_failed=retry_failed), since)
        report.enqueued.extend((r.export_name, r.result_id) for r in plan.to_copy)
        report.expired.extend((r.export_name, r.result_id) for r in plan.expired)

    def _send(self, export_name: str, result_id: str, state: ResultState, created_at: str, detail: str) -> None:
        """Notify an expired (``detail``: expires_at) or failed (``detail``: the error) result, once."""

        def send() -> None:
            if state == ResultState.EXPIRED:
                notices.result_expired(self._notifier, export_name, result_id, created_at, detail)
            else:
                notices.result_failed(self._notifier, export_name, result_id, detail)

        notices.notify_once(self._ledger, export_name, result_id, state, send)


def _cut(plan: ExportPlan, since: datetime | None) -> ExportPlan:
    """``plan`` without the results created before ``since`` (``last_run`` included)."""
    if since is None:
        return plan
    return ExportPlan(
        plan.export_name,
        tuple(r for r in plan.to_copy if r.created_at >= since),
        tuple(r for r in plan.expired if r.created_at >= since),
        tuple(r for r in plan.renotify if r.created_at >= since),
    )
