"""The planner's decisions, on fakes (no network)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from exportlake.domain.errors import AuthError, ValidationError
from exportlake.domain.models import CopyJob, Export, ResultRef, ResultState
from exportlake.domain.planning import Planner, plan_export
from exportlake.domain.ports import LedgerEntry, NullMetrics
from tests.fakes import FakeGateway, FakeMetrics, FakeNotifier, FakeQueue, InMemoryLedger

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def ref(rid: str, days_ago: int, expires_in_days: int | None = 30, name: str = "win-info") -> ResultRef:
    created = NOW - timedelta(days=days_ago)
    expires = None if expires_in_days is None else NOW + timedelta(days=expires_in_days)
    return ResultRef(created, name, rid, expires)


def entry(r: ResultRef, state: ResultState) -> LedgerEntry:
    return LedgerEntry(r.export_name, r.result_id, state)


def test_union_of_last_run_and_listed_results_oldest_first() -> None:
    a, b, c = ref("aaa", 3), ref("bbb", 2), ref("ccc", 0)
    export = Export("1", "win-info", c)  # last_run is newer than the listed page
    plan = plan_export(export, [b, a], {}, NOW)
    assert [r.result_id for r in plan.to_copy] == ["aaa", "bbb", "ccc"]


def test_known_results_are_skipped_and_expired_reported() -> None:
    a, b, c, d = ref("aaa", 9, expires_in_days=-1), ref("bbb", 2), ref("ccc", 1), ref("ddd", 0)
    known = {"bbb": entry(b, ResultState.COPIED), "ccc": entry(c, ResultState.QUEUED)}
    plan = plan_export(Export("1", "win-info", d), [a, b, c, d], known, NOW)
    assert [r.result_id for r in plan.to_copy] == ["ddd"]
    assert [r.result_id for r in plan.expired] == ["aaa"]


def test_failed_results_only_with_retry_failed() -> None:
    a = ref("aaa", 1)
    known = {"aaa": entry(a, ResultState.FAILED)}
    assert plan_export(Export("1", "win-info", a), [a], known, NOW).to_copy == ()
    assert plan_export(Export("1", "win-info", a), [a], known, NOW, retry_failed=True).to_copy == (a,)


def make(
    exports: list[Export], results: dict[str, list[ResultRef]], **kw: Any
) -> tuple[Planner, FakeGateway, InMemoryLedger, FakeQueue, FakeNotifier]:
    gw = FakeGateway(exports=exports, results=results, **kw)
    ledger, queue, notifier = InMemoryLedger(clock=lambda: NOW), FakeQueue(), FakeNotifier()
    return Planner(gw, ledger, queue, notifier, NullMetrics()), gw, ledger, queue, notifier


def states(ledger: InMemoryLedger) -> dict[tuple[str, str], ResultState]:
    return {k: e.state for k, e in ledger.items.items()}


def test_planner_enqueues_once_and_second_run_enqueues_nothing() -> None:
    a, b = ref("aaa", 2), ref("bbb", 1)
    planner, _, ledger, queue, notifier = make([Export("1", "win-info", b)], {"win-info": [a, b]})
    first = planner.run(NOW)
    assert [j.result_id for j in queue.sent] == ["aaa", "bbb"]
    assert first.enqueued == [("win-info", "aaa"), ("win-info", "bbb")]
    assert all(e.enqueued for e in ledger.items.values())  # the send is recorded
    second = planner.run(NOW)
    assert second.enqueued == [] and len(queue.sent) == 2 and notifier.messages == []


def test_expired_result_reported_once() -> None:
    old = ref("old", 40, expires_in_days=-10)
    planner, _, _, queue, notifier = make([Export("1", "win-info", old)], {"win-info": [old]})
    planner.run(NOW)
    planner.run(NOW)
    assert queue.sent == []
    assert [(m[0], m[2]["result_id"]) for m in notifier.messages] == [("result.expired", "old")]


def test_never_run_export_is_not_listed_and_broken_export_does_not_stop_others() -> None:
    good = ref("ggg", 1, name="all-coupons")
    exports = [
        Export("1", "campaign-info", None),
        Export("2", "win-info", ref("x", 1)),
        Export("3", "all-coupons", good),
    ]
    planner, gw, _, queue, _ = make(exports, {"all-coupons": [good]}, broken={"win-info"})
    report = planner.run(NOW)
    assert "campaign-info" not in gw.listed
    assert [j.result_id for j in queue.sent] == ["ggg"]
    assert report.errors and "win-info" in report.errors[0]


def test_failed_send_gives_claims_back() -> None:
    a = ref("aaa", 1)
    planner, _, ledger, queue, _ = make([Export("1", "win-info", a)], {"win-info": [a]})
    queue.fail = True
    report = planner.run(NOW)
    assert report.errors == ["win-info: sqs down"]  # reported (the handler then fails the invocation)
    assert ledger.items == {}
    queue.fail = False
    planner.run(NOW)
    assert [j.result_id for j in queue.sent] == ["aaa"]


def test_in_flight_results_are_left_alone_until_lost() -> None:
    a = ref("aaa", 3)
    now = NOW.isoformat()
    live = LedgerEntry("win-info", "aaa", ResultState.COPYING, updated_at=now, lease_until="2026-11-26T12:00:20+00:00")
    assert plan_export(Export("1", "win-info", a), [a], {"aaa": live}, NOW).to_copy == ()
    lapsed = LedgerEntry(
        "win-info", "aaa", ResultState.COPYING, updated_at=now, lease_until="2026-11-26T11:59:50+00:00"
    )
    assert plan_export(Export("1", "win-info", a), [a], {"aaa": lapsed}, NOW).to_copy == (a,)  # its copier died
    sent = LedgerEntry("win-info", "aaa", ResultState.QUEUED, updated_at="2026-11-26T11:50:00+00:00", enqueued=True)
    assert plan_export(Export("1", "win-info", a), [a], {"aaa": sent}, NOW).to_copy == ()  # waiting in the queue
    unsent = LedgerEntry("win-info", "aaa", ResultState.QUEUED, updated_at="2026-11-26T11:57:00+00:00")
    assert plan_export(Export("1", "win-info", a), [a], {"aaa": unsent}, NOW).to_copy == (a,)  # never went out
    old = LedgerEntry("win-info", "aaa", ResultState.QUEUED, updated_at="2026-11-25T00:00:00+00:00", enqueued=True)
    assert plan_export(Export("1", "win-info", a), [a], {"aaa": old}, NOW).to_copy == (a,)  # its job was lost


def test_a_job_the_planner_claimed_but_never_sent_is_sent_within_minutes() -> None:
    a = ref("aaa", 3)
    clock = {"now": NOW}
    planner, _, ledger, queue, _ = make([Export("1", "win-info", a)], {"win-info": [a]})
    ledger.clock = lambda: clock["now"]
    assert ledger.claim_queued(a)  # a planner killed between its claim and SendMessage
    planner.run(clock["now"])
    assert queue.sent == []  # a moment ago: maybe still sending
    clock["now"] = NOW + timedelta(minutes=3)
    planner.run(clock["now"])
    planner.run(clock["now"])
    assert [j.result_id for j in queue.sent] == ["aaa"]


def test_a_copied_result_that_was_never_announced_gets_a_job() -> None:
    a = ref("aaa", 3)
    planner, _, ledger, queue, _ = make([Export("1", "win-info", a)], {"win-info": [a]})
    ledger.items[("win-info", "aaa")] = LedgerEntry(
        "win-info", "aaa", ResultState.COPIED, updated_at="2026-11-26T11:00:00+00:00"
    )
    planner.run(NOW)
    assert [j.result_id for j in queue.sent] == ["aaa"]
    assert states(ledger) == {("win-info", "aaa"): ResultState.COPIED}  # nothing is copied again


def test_a_partial_send_keeps_the_claims_of_jobs_that_went_out() -> None:
    from exportlake.domain.errors import EnqueueError

    a, b = ref("aaa", 2), ref("bbb", 1)
    planner, _, ledger, queue, _ = make([Export("1", "win-info", b)], {"win-info": [a, b]})

    def half(jobs: Sequence[CopyJob]) -> None:
        queue.sent.append(jobs[0])
        raise EnqueueError("SQS refused 1 copy job", {jobs[0].result_id})

    queue.send = half  # type: ignore[method-assign]
    report = planner.run(NOW)
    assert report.errors and "refused" in report.errors[0]
    assert states(ledger) == {("win-info", "aaa"): ResultState.QUEUED}  # sent: stays claimed; bbb: given back
    assert ledger.items[("win-info", "aaa")].enqueued


def test_a_failed_publish_of_an_expiry_is_sent_on_the_next_run() -> None:
    old = ref("old", 40, expires_in_days=-10)
    planner, _, ledger, _, notifier = make([Export("1", "win-info", old)], {"win-info": [old]})
    notifier.fail = 1
    report = planner.run(NOW)
    assert report.errors == ["win-info: sns down"]
    assert states(ledger) == {("win-info", "old"): ResultState.EXPIRED}
    assert not ledger.items[("win-info", "old")].notified
    planner.run(NOW)
    planner.run(NOW)
    assert [(m[0], m[2]["result_id"]) for m in notifier.messages] == [("result.expired", "old")]


def test_a_bad_export_or_result_is_reported_once_and_the_healthy_ones_are_planned() -> None:
    good = ref("ggg", 1, name="all-coupons")
    other = ref("ooo", 1)
    planner, _, _, queue, notifier = make(
        [Export("3", "all-coupons", good), Export("2", "win-info", other)],
        {"all-coupons": [good], "win-info": [other]},
        invalid_exports=[('{"system_name": "../etc"}', ValidationError("export name '../etc' is not valid"))],
        invalid_results={"win-info": [('{"id": "x/y"}', ValidationError("result id 'x/y' is not valid"))]},
    )
    report = planner.run(NOW)
    planner.run(NOW)
    assert sorted(j.result_id for j in queue.sent) == ["ggg", "ooo"]
    assert [w for w, _, _ in report.invalid] == ["export", "result"]
    assert [t for t, _, _ in notifier.messages] == ["export.invalid", "result.invalid"]  # once per item, ever
    assert notifier.of("result.invalid")[0]["export"] == "win-info"


def test_an_export_whose_last_run_is_bad_still_gets_its_listed_results() -> None:
    good = ref("ggg", 1)
    export = Export("2", "win-info", None, last_run_error="created_at 'yesterday' is not an ISO 8601 timestamp")
    planner, gw, _, queue, notifier = make([export], {"win-info": [good]})
    planner.run(NOW)
    assert gw.pages[0] == ("win-info", 1) and [j.result_id for j in queue.sent] == ["ggg"]
    assert [t for t, _, _ in notifier.messages] == ["result.invalid"]


def test_a_failing_run_is_told_once_per_cause_and_again_after_recovery() -> None:
    planner, gw, _, _, notifier = make([], {})

    def down(on_invalid: Any = None) -> list[Export]:
        raise AuthError("the gateway refused the client credentials (HTTP 401)")

    real = gw.list_exports
    gw.list_exports = down  # type: ignore[method-assign]
    for _ in range(3):
        with pytest.raises(AuthError):
            planner.run(NOW)
    assert [p["cause"] for p in notifier.of("sync.failed")] == ["credentials"]
    gw.list_exports = real  # type: ignore[method-assign]
    planner.run(NOW)  # recovered: the next failure is news again
    gw.list_exports = down  # type: ignore[method-assign]
    with pytest.raises(AuthError):
        planner.run(NOW)
    assert len(notifier.of("sync.failed")) == 2


def test_a_run_short_of_time_defers_exports_and_the_next_run_starts_with_them() -> None:
    refs = {f"e{i}": [ref(f"r{i}", 1, name=f"e{i}")] for i in range(5)}
    exports = [Export(str(i), f"e{i}", refs[f"e{i}"][0]) for i in range(5)]
    planner, _, _, queue, _ = make(exports, refs)
    budget = itertools.chain([100, 100, 10, 10, 10], itertools.repeat(10))  # then too little for a pass too
    first = planner.run(NOW, remaining=lambda: next(budget))
    assert [j.export_name for j in queue.sent] == ["e0", "e1"] and first.deferred == ["e2", "e3", "e4"]
    planner.run(NOW, remaining=lambda: 100)
    planner.run(NOW, remaining=lambda: 100)
    assert sorted(j.export_name for j in queue.sent) == ["e0", "e1", "e2", "e3", "e4"]  # each once


def test_retrying_failed_results_clears_their_dead_letters() -> None:
    a = ref("aaa", 1)
    planner, _, ledger, queue, _ = make([Export("1", "win-info", a)], {"win-info": [a]})
    ledger.items[("win-info", "aaa")] = LedgerEntry("win-info", "aaa", ResultState.FAILED, notified=True)
    planner.run(NOW, retry_failed=True)
    assert [j.result_id for j in queue.sent] == ["aaa"] and queue.discarded == {("win-info", "aaa")}


def test_two_planners_at_once_queue_each_result_once() -> None:
    import threading

    refs = [ref(f"r{i:02d}", 1) for i in range(40)]
    gw = FakeGateway(exports=[Export("1", "win-info", refs[-1])], results={"win-info": refs})
    ledger, queue = InMemoryLedger(clock=lambda: NOW), FakeQueue()
    planners = [Planner(gw, ledger, queue, FakeNotifier(), NullMetrics()) for _ in range(2)]
    barrier = threading.Barrier(2)

    def run(p: Planner) -> None:
        barrier.wait()
        p.run(NOW)

    threads = [threading.Thread(target=run, args=(p,)) for p in planners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(j.result_id for j in queue.sent) == sorted(r.result_id for r in refs)  # each exactly once


def test_the_planner_payload_is_validated() -> None:
    from exportlake.domain.planning import PlanRequest

    assert PlanRequest.from_event({}) == PlanRequest()
    assert PlanRequest.from_event({"source": "exportlake.schedule"}) == PlanRequest()
    req = PlanRequest.from_event({"retry_failed": True, "exports": ["win-info"], "since": "2026-11-01T00:00:00Z"})
    assert req.retry_failed and req.only_exports == frozenset({"win-info"})
    assert req.since == datetime(2026, 11, 1, tzinfo=UTC)
    for bad in ({"exports": "win-info"}, {"exports": ["../x"]}, {"since": "yesterday"}, {"exports": []}):
        with pytest.raises(ValidationError):
            PlanRequest.from_event(bad)
    assert PlanRequest.from_event({"retry_failed": "yes"}).retry_failed is False  # only a real true


def test_a_backfill_plans_only_the_named_exports_since_a_date() -> None:
    old, new = ref("old", 20), ref("new", 1)
    other = ref("oth", 1, name="all-coupons")
    planner, _, _, queue, _ = make(
        [Export("1", "win-info", new), Export("2", "all-coupons", other)],
        {"win-info": [old, new], "all-coupons": [other]},
    )
    planner.run(NOW, only_exports=frozenset({"win-info"}), since=NOW - timedelta(days=5))
    assert [j.result_id for j in queue.sent] == ["new"]


def test_expiring_results_are_announced_once_and_counted() -> None:
    soon = ResultRef(NOW - timedelta(days=1), "win-info", "soon", NOW + timedelta(hours=5))
    later = ref("later", 1, expires_in_days=2)
    planner, _, _, _, notifier = make([Export("1", "win-info", soon)], {"win-info": [soon, later]})
    metrics = FakeMetrics()
    planner._metrics = metrics  # type: ignore[attr-defined]
    planner.run(NOW)
    planner.run(NOW)  # still not copied (queued): no second notice
    assert [n["result_id"] for n in notifier.of("result.expiring")] == ["soon"]
    assert [v for n, v in metrics.figures if n == "ResultsExpiring"] == [1, 0]
    planner.expiring_within = timedelta(hours=72)  # a wider window (EXPORTLAKE_EXPIRY_WARNING_HOURS) takes "later"
    planner.run(NOW)
    assert [n["result_id"] for n in notifier.of("result.expiring")] == ["soon", "later"]
