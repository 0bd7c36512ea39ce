"""What is new since the last run, read from the top of a listing, and the bounded full pass. Stdlib only.

A steady-state run reads an export's first page (and further pages only while the new results fill them), checks
that the listing is served newest first and that its ``total`` grew by exactly the results above the stored
watermark: then nothing below can be new, and the run stops there. Anything that does not add up (a first run, an
order that is not newest first, a total that moved otherwise) starts a full pass: the reconciliation, which pages
the whole listing over as many runs as it needs, with its cursor in the ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import pairwise

from exportlake.domain.models import Export, ResultRef
from exportlake.domain.ports import ExportState, ResultsPage
from exportlake.domain.timefmt import parse_time, to_text

NEWEST_FIRST = "newest_first"
#: Pages a steady-state read follows at most looking for the watermark (new results beyond it wait for the pass).
MAX_NEW_PAGES = 200
#: Seconds of gateway paging a planner run spends on reconciliation at most (see docs/performance.md for the bound).
RECONCILE_SLICE_SECONDS = 60.0
#: A running pass saves its cursor at least every this many pages (a killed run loses at most these).
CURSOR_SAVE_PAGES = 50
#: Pages a resumed pass steps back at most when results were removed from the listing meanwhile.
MAX_STEP_BACK = 5


@dataclass(frozen=True)
class Increment:
    """The outcome of reading the top of one export's listing."""

    #: Results read above the watermark (every result read, when not ``complete``).
    new: tuple[ResultRef, ...]
    #: True when nothing below the pages read can be new (order verified, watermark met, total adds up).
    complete: bool
    #: True when every page read was newest first (the full pass can then be split over runs).
    ordered: bool
    #: The export's state after this read (new watermark; a full pass started when not ``complete``).
    state: ExportState
    pages: int
    #: Why the read was not complete ("" when it was), for the log.
    reason: str = ""


def _descending(refs: list[ResultRef]) -> bool:
    return all(a.created_at >= b.created_at for a, b in pairwise(refs))


def read_new(
    export: Export,
    state: ExportState | None,
    page: Callable[[int], ResultsPage],
    now: datetime,
    *,
    max_pages: int = MAX_NEW_PAGES,
) -> Increment:
    """Read the top of ``export``'s listing through ``page(n)`` and say what is new since ``state``."""
    first = page(1)
    refs, counts, pages = list(first.refs), [first.count], 1
    total = first.total
    ordered = _descending(refs) and (
        export.last_run is None or not refs or refs[0].created_at >= export.last_run.created_at
    )
    old = state or ExportState(export.system_name)
    watermark = old.newest_id
    found: int | None = None

    def locate() -> int | None:
        for i, r in enumerate(refs):
            if r.result_id == watermark:
                return i
        if not watermark and old.total == 0 and sum(counts) >= total:
            return len(refs)  # it was empty: everything listed is new
        return None

    if state is not None and ordered:
        found = locate()
        while found is None and sum(counts) < total and pages < max_pages:
            if watermark and refs and refs[-1].created_at < (parse_time(old.newest_created) or now):
                break  # already past where the watermark would be: it left the listing
            nxt = page(pages + 1)
            pages += 1
            if nxt.count == 0:
                break
            if refs and nxt.refs and nxt.refs[0].created_at > refs[-1].created_at:
                ordered = False
                break
            ordered = ordered and _descending(list(nxt.refs))
            refs.extend(nxt.refs)
            counts.append(nxt.count)
            found = locate() if ordered else None
            if not ordered:
                break
    invalid = sum(counts) - len(refs)
    page_size = first.count if first.count < total else old.page_size
    newest = refs[0] if refs else None
    new_state = replace(
        old,
        newest_id=newest.result_id if newest else old.newest_id if total else "",
        newest_created=to_text(newest.created_at) if newest else old.newest_created if total else "",
        total=total,
        order=NEWEST_FIRST if ordered else "",
        page_size=page_size,
    )
    reason = ""
    if state is None:
        reason = "first run for this export"
    elif not ordered:
        reason = "the listing is not served newest first"
    elif found is None:
        reason = "the previous newest result was not found at the top of the listing"
    elif invalid:
        reason = "invalid items among the new results"
    elif total != old.total + found:
        reason = f"total {total} is not the previous {old.total} plus {found} new"
    if not reason and found is not None:
        return Increment(tuple(refs[:found]), True, True, new_state, pages)
    if total and ordered:
        new_state = start_pass(new_state, now, restart=False)
    if not total:
        new_state = replace(new_state, recon_at=to_text(now), recon_page=0)  # nothing to reconcile
    return Increment(tuple(refs), False, ordered, new_state, pages, reason)


def start_pass(state: ExportState, now: datetime, *, restart: bool = True) -> ExportState:
    """``state`` with a full pass starting at page 1 (one already running is kept unless ``restart``)."""
    if state.recon_page and not restart:
        return state
    return replace(state, recon_page=1, recon_from=to_text(now), recon_last="")


def pass_due(state: ExportState, now: datetime, every: timedelta) -> bool:
    """True when no pass runs and the last complete one started longer than ``every`` ago (or never ran)."""
    if state.recon_page:
        return False
    last = parse_time(state.recon_at)
    return last is None or last <= now - every


@dataclass
class PassStep:
    """Where a running pass goes next, after one page."""

    state: ExportState
    done: bool


def resume_page(state: ExportState) -> int:
    """The page a running pass resumes at: one page before its cursor (new results push items down a page)."""
    return max(1, state.recon_page - 1)


def gap_before(state: ExportState, page_no: int, page: ResultsPage) -> bool:
    """True when the first page a slice reads starts below where the pass stopped (results were removed meanwhile,
    shifting items up past the one-page overlap): the slice should step back a page."""
    last = parse_time(state.recon_last)
    return page_no > 1 and last is not None and bool(page.refs) and page.refs[0].created_at < last


def after_page(state: ExportState, page_no: int, page: ResultsPage) -> PassStep:
    """The pass's state after reading page ``page_no``: the next page, or done (the listing's end)."""
    size = max(state.page_size, page.count)
    done = page.count == 0 or (page_no - 1) * size + page.count >= page.total or page.count < state.page_size
    last = to_text(page.refs[-1].created_at) if page.refs else state.recon_last
    if done:
        return PassStep(replace(state, recon_page=0, recon_at=state.recon_from, recon_last="", page_size=size), True)
    return PassStep(replace(state, recon_page=page_no + 1, recon_last=last, page_size=size), False)
