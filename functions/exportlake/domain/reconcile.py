"""The reconciliation: a full pass over each export's listing, at most once per ``reconcileHours``, split across
planner runs by a cursor kept in the ledger. Stdlib only.

It is what finds a result listed late or out of order (below the watermark, where a steady-state run never
looks). Each run gives it a slice of time; each export's pass reads its listing from the cursor on, compares every
page with the export's ledger entries (read once per slice: the one read allowed to grow with history) and plans
what is missing exactly as a steady-state run does. See docs/performance.md for the bound on runs per pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from exportlake.domain.models import Export
from exportlake.domain.ports import ExportState, LedgerEntry
from exportlake.domain.watermarks import (
    CURSOR_SAVE_PAGES,
    MAX_STEP_BACK,
    NEWEST_FIRST,
    after_page,
    gap_before,
    pass_due,
    resume_page,
    start_pass,
)

if TYPE_CHECKING:
    from exportlake.domain.planning import Planner, PlanReport

log = logging.getLogger(__name__)


class Reconciler:
    """Runs this run's slice of every export's full pass (due, or started by a read that did not add up)."""

    def __init__(
        self, planner: Planner, states: dict[str, ExportState], now: datetime, report: PlanReport, retry_failed: bool
    ):
        self._planner = planner
        self._states = states
        self._now = now
        self._report = report
        self._retry_failed = retry_failed

    def run(self, exports: dict[str, Export], seconds: Callable[[], float]) -> None:
        """Spend at most ``seconds()`` (asked once, when a pass is to run) on the passes of ``exports``."""
        clock = self._planner.monotonic
        stop_at: float | None = None
        for name in sorted(exports):
            state = self._states.get(name)
            if state is None or state.order != NEWEST_FIRST or not state.total:
                continue  # no state yet (the export failed), or no order to split a pass by (paged whole instead)
            if pass_due(state, self._now, self._planner.reconcile_every):
                state = start_pass(state, self._now)
            if not state.recon_page:
                continue
            if stop_at is None:
                stop_at = clock() + seconds()
            if clock() >= stop_at:
                log.info("reconciliation of %s continues next run (page %d)", name, state.recon_page)
                if state != self._states[name]:
                    self._save(state)
                continue
            try:
                self._states[name] = self._pass(exports[name], state, _deadline(clock, stop_at))
            except Exception as exc:  # one export's failure must not stop the others
                log.error("reconciling export %s failed: %s", name, exc)
                self._report.errors.append(f"{name}: reconciliation: {exc}")

    def _pass(self, export: Export, state: ExportState, out_of_time: Callable[[], bool]) -> ExportState:
        planner, name = self._planner, export.system_name
        known: dict[str, LedgerEntry] = planner.ledger.entries(name)
        page_no, stepped, read = resume_page(state), 0, 0
        # Results below the watermark are never ``last_run``: plan the pages alone.
        bare = Export(export.id, name, None)
        while True:
            page = planner.gateway.results_page(name, page_no, lambda *a: planner.invalid(self._report, name, *a))
            if read == 0 and stepped < MAX_STEP_BACK and gap_before(state, page_no, page):
                page_no, stepped = page_no - 1, stepped + 1
                continue
            read += 1
            listed = [
                r
                for r in page.refs
                if (name, r.result_id) not in self._report.looked and _needs_look(known.get(r.result_id))
            ]
            if listed:
                planner.apply(bare, listed, {r.result_id: known[r.result_id] for r in listed if r.result_id in known},
                              self._now, self._report, self._retry_failed)  # fmt: skip
            step = after_page(state, page_no, page)
            state = step.state
            if step.done:
                log.info("reconciliation of %s complete (%d pages this run)", name, read)
                self._save(state)
                return state
            page_no += 1
            if read % CURSOR_SAVE_PAGES == 0:
                self._save(state)
            if out_of_time():
                self._save(state)
                return state

    def _save(self, state: ExportState) -> None:
        self._planner.ledger.save_export_state(state)


def _deadline(clock: Callable[[], float], at: float) -> Callable[[], bool]:
    return lambda: clock() >= at


def _needs_look(entry: LedgerEntry | None) -> bool:
    """True for a listed result the pass must plan: unknown to the ledger, or unfinished (its plan decides)."""
    if entry is None:
        return True
    return entry.state.value in ("queued", "copying", "failed") or not entry.notified
