"""The planner's decisions, on fakes (no network)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from exportlake.domain.errors import GatewayError
from exportlake.domain.models import CopyJob, Export, ResultRef, ResultState
from exportlake.domain.planning import Planner, plan_export
from exportlake.domain.ports import LedgerEntry, NullMetrics

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


class FakeGateway:
    def __init__(self, exports: list[Export], results: dict[str, list[ResultRef]], broken: set[str] = frozenset()):  # type: ignore[assignment]
        self.exports, self.results, self.broken = exports, results, broken
        self.listed: list[str] = []

    def list_exports(self) -> list[Export]:
        return self.exports

    def list_results(self, export_name: str) -> list[ResultRef]:
        self.listed.append(export_name)
        if export_name in self.broken:
            raise GatewayError("boom")
        return self.results.get(export_name, [])


class FakeLedger:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], ResultState] = {}
        self.stale: set[tuple[str, str]] = set()  # entries last updated long ago
        self.notified: set[tuple[str, str]] = set()
        self.claimed: set[tuple[str, str]] = set()
        self.expiring: set[tuple[str, str]] = set()

    def entries(self, export_name: str) -> dict[str, LedgerEntry]:
        def updated(key: tuple[str, str]) -> str:
            return "2000-01-01T00:00:00+00:00" if key in self.stale else NOW.isoformat()

        return {
            r: LedgerEntry(e, r, s, updated_at=updated((e, r)), notified=(e, r) in self.notified)
            for (e, r), s in self.items.items()
            if e == export_name
        }

    def claim_queued(self, r: ResultRef, *, retry_failed: bool = False, stale_before: str = "") -> bool:
        key = (r.export_name, r.result_id)
        stale = key in self.stale and self.items.get(key) in (ResultState.QUEUED, ResultState.COPYING)
        if key in self.items and not (retry_failed and self.items[key] == ResultState.FAILED) and not stale:
            return False
        self.stale.discard(key)
        self.items[key] = ResultState.QUEUED
        return True

    def release_queued(self, r: ResultRef) -> None:
        self.items.pop((r.export_name, r.result_id), None)

    def claim_notification(self, e: str, r: str, lease: int, state: ResultState = ResultState.COPIED) -> bool:
        key = (e, r)
        if self.items.get(key) != state or key in self.notified or key in self.claimed:
            return False
        self.claimed.add(key)
        return True

    def release_notification(self, e: str, r: str) -> None:
        self.claimed.discard((e, r))

    def mark_notified(self, e: str, r: str) -> None:
        self.claimed.discard((e, r))
        self.notified.add((e, r))

    def claim_expiring_notice(self, e: str, r: str) -> bool:
        if (e, r) not in self.items or (e, r) in self.expiring:
            return False
        self.expiring.add((e, r))
        return True

    def release_expiring_notice(self, e: str, r: str) -> None:
        self.expiring.discard((e, r))

    def mark_expired(self, r: ResultRef, *, stale_before: str = "") -> bool:
        key = (r.export_name, r.result_id)
        if self.items.get(key) in (ResultState.EXPIRED, ResultState.COPIED):
            return False
        self.items[key] = ResultState.EXPIRED
        return True


class FakeQueue:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[CopyJob] = []
        self.fail = fail

    def send(self, jobs: Sequence[CopyJob]) -> None:
        if self.fail:
            raise RuntimeError("sqs down")
        self.sent.extend(jobs)


class FakeNotifier:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, event_type: str, export_name: str, subject: str, payload: Mapping[str, Any]) -> None:
        self.messages.append((event_type, export_name, dict(payload)))


def make(exports: list[Export], results: dict[str, list[ResultRef]], **kw: Any) -> tuple[Planner, Any, Any, Any, Any]:
    gw, ledger, queue, notifier = FakeGateway(exports, results, **kw), FakeLedger(), FakeQueue(), FakeNotifier()
    return Planner(gw, ledger, queue, notifier, NullMetrics()), gw, ledger, queue, notifier  # type: ignore[arg-type]


def test_planner_enqueues_once_and_second_run_enqueues_nothing() -> None:
    a, b = ref("aaa", 2), ref("bbb", 1)
    planner, _, _, queue, notifier = make([Export("1", "win-info", b)], {"win-info": [a, b]})
    first = planner.run(NOW)
    assert [j.result_id for j in queue.sent] == ["aaa", "bbb"]
    assert first.enqueued == [("win-info", "aaa"), ("win-info", "bbb")]
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


def test_in_flight_results_are_left_alone_until_stale() -> None:
    a = ref("aaa", 3)
    fresh = {"aaa": LedgerEntry("win-info", "aaa", ResultState.COPYING, updated_at=NOW.isoformat())}
    assert plan_export(Export("1", "win-info", a), [a], fresh, NOW).to_copy == ()
    old = {"aaa": LedgerEntry("win-info", "aaa", ResultState.QUEUED, updated_at="2026-11-20T00:00:00+00:00")}
    assert plan_export(Export("1", "win-info", a), [a], old, NOW).to_copy == (a,)


def test_a_stale_job_is_queued_again_once() -> None:
    a = ref("aaa", 3)
    planner, _, ledger, queue, _ = make([Export("1", "win-info", a)], {"win-info": [a]})
    planner.run(NOW)
    assert len(queue.sent) == 1
    planner.run(NOW)
    assert len(queue.sent) == 1  # in flight and fresh: left alone
    ledger.stale.add(("win-info", "aaa"))  # its job was lost a day ago
    planner.run(NOW)
    planner.run(NOW)
    assert [j.result_id for j in queue.sent] == ["aaa", "aaa"]


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
    assert ledger.items == {("win-info", "aaa"): ResultState.QUEUED}  # sent: stays claimed; bbb: given back


def test_a_failed_publish_of_an_expiry_is_sent_on_the_next_run() -> None:
    old = ref("old", 40, expires_in_days=-10)
    planner, _, ledger, _, notifier = make([Export("1", "win-info", old)], {"win-info": [old]})
    real = notifier.publish

    def down(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("sns down")

    notifier.publish = down  # type: ignore[method-assign]
    report = planner.run(NOW)
    assert report.errors == ["win-info: sns down"]
    assert ledger.items[("win-info", "old")] == ResultState.EXPIRED and not ledger.notified
    notifier.publish = real  # type: ignore[method-assign]
    planner.run(NOW)
    planner.run(NOW)
    assert [(m[0], m[2]["result_id"]) for m in notifier.messages] == [("result.expired", "old")]


class RecordingMetrics:
    def __init__(self) -> None:
        self.figures: list[tuple[str, float]] = []

    def add(self, name: str, value: float, unit: str) -> None:
        self.figures.append((name, value))


def soon(rid: str, hours: float, name: str = "win-info") -> ResultRef:
    return ResultRef(NOW - timedelta(days=1), name, rid, NOW + timedelta(hours=hours))


def test_expiring_notice_once_per_uncopied_or_failed_result_within_the_window() -> None:
    near, failed, far, done = soon("near", 5), soon("fail", 20), soon("far", 30), soon("done", 2)
    planner, _, ledger, _, notifier = make([Export("1", "win-info", far)], {"win-info": [near, failed, far, done]})
    ledger.items[("win-info", "fail")] = ResultState.FAILED
    ledger.items[("win-info", "done")] = ResultState.COPIED
    metrics = RecordingMetrics()
    planner._metrics = metrics
    first = planner.run(NOW)
    planner.run(NOW)  # a second run announces nothing again
    expiring = [(m[2]["result_id"], m[2]["state"]) for m in notifier.messages if m[0] == "result.expiring"]
    assert expiring == [("fail", "failed"), ("near", "queued")]
    assert sorted(first.expiring) == [("win-info", "fail"), ("win-info", "near")]
    assert ("ResultsExpiring", 2) in metrics.figures and ("ResultsExpiring", 0) in metrics.figures
    message = next(m[2] for m in notifier.messages if m[2]["result_id"] == "near")
    assert message["hours_left"] == 5.0 and message["expires_at"] == (NOW + timedelta(hours=5)).isoformat()


def test_expiring_window_is_configurable() -> None:
    r = soon("abc", 30)
    planner, _, _, _, notifier = make([Export("1", "win-info", r)], {"win-info": [r]})
    planner.expiring_within = timedelta(hours=48)
    planner.run(NOW)
    assert [m[0] for m in notifier.messages] == ["result.expiring"]


def test_backfill_filters_exports_and_since_and_dry_run_writes_nothing() -> None:
    old, mid, new = ref("old", 10), ref("mid", 5), ref("new", 1)
    other = ref("oth", 1, name="all-coupons")
    exports = [Export("1", "win-info", new), Export("2", "all-coupons", other)]
    planner, _, ledger, queue, _ = make(exports, {"win-info": [old, mid, new], "all-coupons": [other]})
    since = NOW - timedelta(days=6)
    dry = planner.run(NOW, only_exports=frozenset({"win-info"}), since=since, dry_run=True)
    assert dry.enqueued == [("win-info", "mid"), ("win-info", "new")] and dry.exports == 1
    assert queue.sent == [] and ledger.items == {}
    real = planner.run(NOW, only_exports=frozenset({"win-info"}), since=since)
    assert real.enqueued == [("win-info", "mid"), ("win-info", "new")]
    assert [j.result_id for j in queue.sent] == ["mid", "new"]
