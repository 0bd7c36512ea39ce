"""A run costs what is new: the top of each listing, the index of unfinished entries, and a bounded full pass."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from exportlake.domain.models import Export, ResultRef, ResultState
from exportlake.domain.planning import Planner
from exportlake.domain.ports import LedgerEntry, NullMetrics
from exportlake.domain.watermarks import NEWEST_FIRST
from tests.fakes import FakeGateway, FakeNotifier, FakeQueue, InMemoryLedger

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def hourly(name: str, n: int, *, start: int = 0) -> list[ResultRef]:
    """``n`` hourly results of ``name``, the newest ``start`` hours before NOW."""
    return [
        ResultRef(NOW - timedelta(hours=h), name, f"{name.replace('-', '')}{h:05d}", NOW + timedelta(days=90))
        for h in range(start, start + n)
    ]


class CountingLedger(InMemoryLedger):
    """The fake ledger, counting the reads that grow with history."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.full_reads: list[str] = []
        self.claims = 0

    def entries(self, export_name: str) -> dict[str, LedgerEntry]:
        self.full_reads.append(export_name)
        return super().entries(export_name)

    def claim_queued(self, ref: ResultRef, **kw: Any) -> bool:
        self.claims += 1
        return super().claim_queued(ref, **kw)


class Ticker:
    """A clock that moves one second per page read (set on the gateway)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def world(results: dict[str, list[ResultRef]], **kw: Any) -> tuple[Planner, FakeGateway, CountingLedger, FakeQueue]:
    exports = [Export(str(i), name, max(refs) if refs else None) for i, (name, refs) in enumerate(results.items())]
    gw = FakeGateway(exports=exports, results=results, **kw)
    ledger, queue = CountingLedger(clock=lambda: NOW), FakeQueue()
    return Planner(gw, ledger, queue, FakeNotifier(), NullMetrics()), gw, ledger, queue


def copy_all(ledger: InMemoryLedger, queue: FakeQueue) -> None:
    """What the copiers do with the jobs: each result copied and announced."""
    for job in queue.sent:
        entry = ledger.items[(job.export_name, job.result_id)]
        ledger.items[(job.export_name, job.result_id)] = LedgerEntry(
            job.export_name, job.result_id, ResultState.COPIED, entry.created_at, entry.expires_at, notified=True
        )
    queue.sent.clear()


def add(gw: FakeGateway, refs: list[ResultRef]) -> None:
    for r in refs:
        gw.results[r.export_name].append(r)
    gw.exports = [Export(e.id, e.system_name, max(gw.results[e.system_name])) for e in gw.exports]


def test_a_run_with_nothing_new_reads_one_page_per_export_and_no_history() -> None:
    data = {f"export-{i}": hourly(f"export-{i}", 95) for i in range(3)}
    planner, gw, ledger, queue = world(data)
    planner.run(NOW)  # the first run: everything, and a full pass per export
    assert len(queue.sent) == 3 * 95
    copy_all(ledger, queue)
    assert all(s.order == NEWEST_FIRST and s.total == 95 and not s.recon_page for s in ledger.states.values())
    gw.pages.clear()
    ledger.full_reads.clear()
    gw.listed.clear()
    writes, claims = ledger.writes, ledger.claims

    report = planner.run(NOW + timedelta(hours=1))
    assert (ledger.writes, ledger.claims) == (writes, claims)  # not even a refused claim of last_run
    assert report.enqueued == [] and queue.sent == []
    assert sorted(gw.pages) == [(f"export-{i}", 1) for i in range(3)]  # one page each, never the whole listing
    assert ledger.full_reads == [] and gw.listed == []


def test_new_results_are_read_from_the_top_only() -> None:
    planner, gw, ledger, queue = world({"win-info": hourly("win-info", 95, start=15)})
    planner.run(NOW - timedelta(hours=15))
    copy_all(ledger, queue)
    gw.pages.clear()
    ledger.full_reads.clear()
    add(gw, hourly("win-info", 15))  # 15 new: pages 1-2 of 10 hold them and the old newest
    planner.run(NOW)
    assert sorted(j.result_id for j in queue.sent) == sorted(r.result_id for r in hourly("win-info", 15))
    assert gw.pages == [("win-info", 1), ("win-info", 2)]
    assert ledger.states["win-info"].total == 110 and ledger.full_reads == []


def test_a_result_listed_late_below_the_watermark_is_found_by_a_full_pass_at_once() -> None:
    planner, gw, ledger, queue = world({"win-info": hourly("win-info", 50)})
    planner.run(NOW)
    copy_all(ledger, queue)
    late = ResultRef(NOW - timedelta(hours=30, minutes=30), "win-info", "latecomer", NOW + timedelta(days=90))
    gw.results["win-info"].append(late)  # the total grows by one, but nothing new at the top
    planner.run(NOW + timedelta(minutes=5))
    assert [j.result_id for j in queue.sent] == ["latecomer"]


def test_a_listing_not_served_newest_first_is_paged_whole_every_run() -> None:
    planner, gw, ledger, queue = world({"win-info": hourly("win-info", 30)})
    gw.oldest_first = True
    planner.run(NOW)
    assert len(queue.sent) == 30 and ledger.states["win-info"].order == ""
    copy_all(ledger, queue)
    gw.listed.clear()
    add(gw, [ResultRef(NOW + timedelta(hours=1), "win-info", "newer", NOW + timedelta(days=90))])
    planner.run(NOW + timedelta(hours=1))
    assert gw.listed == ["win-info"] and [j.result_id for j in queue.sent] == ["newer"]


def test_an_export_whose_last_run_is_null_still_has_its_results_listed() -> None:
    refs = hourly("win-info", 3)
    gw = FakeGateway(exports=[Export("1", "win-info", None)], results={"win-info": refs})
    ledger, queue = InMemoryLedger(clock=lambda: NOW), FakeQueue()
    report = Planner(gw, ledger, queue, FakeNotifier(), NullMetrics()).run(NOW)
    assert sorted(r for _, r in report.enqueued) == sorted(r.result_id for r in refs)


def test_since_keeps_the_notices_owed_for_copied_results() -> None:
    a, old = hourly("win-info", 1)[0], hourly("win-info", 1, start=200)[0]
    planner, _, ledger, queue = world({"win-info": [a, old]})
    for r in (a, old):  # copied long ago, announced never (the publish failed)
        ledger.items[("win-info", r.result_id)] = LedgerEntry(
            "win-info",
            r.result_id,
            ResultState.COPIED,
            r.created_at.isoformat(),
            updated_at=(NOW - timedelta(hours=2)).isoformat(),
        )
    planner.run(NOW, since=NOW - timedelta(days=1))
    assert [j.result_id for j in queue.sent] == [a.result_id]  # owed, and created after --since


def test_the_full_pass_runs_again_after_reconcile_hours_and_finds_what_was_missed() -> None:
    planner, gw, ledger, queue = world({"win-info": hourly("win-info", 40)})
    planner.reconcile_every = timedelta(hours=24)
    planner.run(NOW)
    copy_all(ledger, queue)
    # A result the steady state cannot see: same total (one removed, one listed late below the top).
    removed = gw.results["win-info"].pop()
    gw.results["win-info"].append(ResultRef(removed.created_at, "win-info", "swapped", removed.expires_at))
    planner.run(NOW + timedelta(hours=1))
    assert queue.sent == []  # nothing adds up differently at the top
    planner.run(NOW + timedelta(hours=24))
    assert [j.result_id for j in queue.sent] == ["swapped"]
    assert ledger.states["win-info"].recon_at == (NOW + timedelta(hours=24)).isoformat()


def test_a_full_pass_is_split_across_runs_by_its_cursor_and_bounded() -> None:
    """Year two in miniature: 4 exports x 300 results, 10 per page; a slice reads 25 pages at most."""
    data = {f"export-{i}": hourly(f"export-{i}", 300) for i in range(4)}
    planner, gw, ledger, queue = world(data)
    clock = itertools.count()
    planner._clock = lambda: float(next(clock))  # one tick per page read (and per check)
    planner.run(NOW)  # page 1 of each export now, the rest by the passes this first run started
    copy_all(ledger, queue)
    for _ in range(6):
        planner.run(NOW + timedelta(minutes=1))
        copy_all(ledger, queue)
        if not any(s.recon_page for s in ledger.states.values()):
            break
    assert not any(s.recon_page for s in ledger.states.values())
    assert len(ledger.items) == 4 * 300  # the first passes found every result
    # Now drop a result from the ledger and let the next pass (due after reconcile_every) find it.
    del ledger.items[("export-2", "export200123")]
    runs, gw.pages[:], found = 0, [], []
    when = NOW + timedelta(days=1, hours=1)
    while True:
        runs += 1
        planner.run(when)
        found += [j.result_id for j in queue.sent]
        copy_all(ledger, queue)
        when += timedelta(hours=1)
        if not any(s.recon_page for s in ledger.states.values()):
            break
        assert runs < 10
    assert found == ["export200123"]
    pages = len(gw.pages)
    assert pages >= 4 * 30  # every page of every export read once, plus page 1 per run and overlap
    assert runs <= -(-pages // 55) + 1  # a slice of 60 ticks reads >= 55 pages: the bound holds
