"""The ledger's contract: every test runs on the DynamoDB adapter (moto) and on the in-memory fake.

So the fake the copy-service and planner unit tests rely on cannot drift from the real conditional writes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from exportlake.adapters.ledger import DynamoLedger
from exportlake.domain.errors import LeaseLost
from exportlake.domain.models import CopyJob, ResultRef, ResultState
from exportlake.emulator.provision import provision
from tests.fakes import InMemoryLedger
from tests.helpers import local_settings

REF = ResultRef(datetime(2024, 6, 20, 9, 35, tzinfo=UTC), "win-info", "a" * 25, datetime(2124, 1, 1, tzinfo=UTC))
JOB = CopyJob.for_result(REF)
ME, OTHER = "host-a:1:1:me", "host-b:2:2:other"


def iso(delta_s: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta_s)).isoformat(timespec="seconds")


@pytest.fixture(params=["dynamodb", "memory"])
def ledger(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return InMemoryLedger()
    request.getfixturevalue("aws")
    settings = local_settings()
    provision(settings, boto3.client)
    return DynamoLedger(boto3.client("dynamodb"), settings.ledger_table)


def state(ledger: Any) -> ResultState | None:
    entry = ledger.get("win-info", REF.result_id)
    return None if entry is None else entry.state


def test_claim_is_won_once_and_records_the_send(ledger: Any) -> None:
    assert ledger.claim_queued(REF) is True
    assert ledger.claim_queued(REF) is False
    assert state(ledger) == ResultState.QUEUED and not ledger.get("win-info", REF.result_id).enqueued
    ledger.mark_enqueued(REF)
    assert ledger.get("win-info", REF.result_id).enqueued
    assert list(ledger.entries("win-info")) == [REF.result_id]


def test_release_only_undoes_a_queued_claim(ledger: Any) -> None:
    ledger.claim_queued(REF)
    ledger.release_queued(REF)
    assert ledger.get("win-info", REF.result_id) is None
    ledger.claim_queued(REF)
    ledger.start_copy(JOB, ME, 60)
    ledger.release_queued(REF)
    assert state(ledger) == ResultState.COPYING


def test_the_lease_has_one_owner_until_released_or_lapsed(ledger: Any) -> None:
    assert ledger.start_copy(JOB, ME, 60) is not None
    assert ledger.start_copy(JOB, OTHER, 60) is None
    assert ledger.renew_lease(JOB, ME, 60) is True
    assert ledger.renew_lease(JOB, OTHER, 60) is False
    ledger.end_attempt(JOB, OTHER, "not mine")  # only the owner gives it back
    assert ledger.start_copy(JOB, OTHER, 60) is None
    ledger.end_attempt(JOB, ME, "boom")
    entry = ledger.start_copy(JOB, OTHER, 60)
    assert entry is not None and entry.lease_owner == OTHER and entry.attempts == 2
    assert ledger.renew_lease(JOB, ME, 60) is False  # the old owner lost it


def test_a_dead_holder_is_taken_over_by_name_only(ledger: Any) -> None:
    ledger.start_copy(JOB, ME, 60)
    assert ledger.start_copy(JOB, OTHER, 60, take_over="host-a:1:1:someone-else") is None
    assert ledger.start_copy(JOB, OTHER, 60, take_over=ME) is not None


def test_a_lapsed_lease_is_free(ledger: Any) -> None:
    ledger.start_copy(JOB, ME, -5)  # lapsed already
    assert ledger.start_copy(JOB, OTHER, 60) is not None


def test_copied_is_reached_once_by_the_owner_and_then_returned_as_is(ledger: Any) -> None:
    ledger.start_copy(JOB, ME, 60)
    with pytest.raises(LeaseLost):
        ledger.mark_copied(JOB, OTHER, rows=1, size=2, table="win_info", location="s3://b/p/")
    assert ledger.mark_copied(JOB, ME, rows=10, size=20, table="win_info", location="s3://b/p/") is True
    assert ledger.mark_copied(JOB, ME, rows=10, size=20, table="win_info", location="s3://b/p/") is False
    entry = ledger.start_copy(JOB, OTHER, 60)
    assert entry is not None and entry.state == ResultState.COPIED and entry.rows == 10 and not entry.notified
    assert entry.lease_owner == ""


def test_the_notice_is_claimed_once_and_released_on_failure(ledger: Any) -> None:
    ledger.start_copy(JOB, ME, 60)
    ledger.mark_copied(JOB, ME, rows=1, size=1, table="win_info", location="s3://b/p/")
    assert ledger.claim_notification("win-info", REF.result_id, 60, owner=ME) is True
    assert ledger.claim_notification("win-info", REF.result_id, 60, owner=OTHER) is False
    assert ledger.claim_notification("win-info", REF.result_id, 60, owner=OTHER, take_over=ME) is True
    ledger.release_notification("win-info", REF.result_id)
    assert ledger.claim_notification("win-info", REF.result_id, 60, owner=ME) is True
    ledger.mark_notified("win-info", REF.result_id)
    assert ledger.claim_notification("win-info", REF.result_id, 60, owner=OTHER, take_over=ME) is False
    assert ledger.get("win-info", REF.result_id).notified


def test_failed_once_never_over_a_live_lease_and_retry_failed_reclaims(ledger: Any) -> None:
    ledger.start_copy(JOB, OTHER, 60)
    assert ledger.mark_failed(JOB, "DocumentError: x") is False  # its copy may still succeed
    assert ledger.mark_failed(JOB, "DocumentError: x", owner=OTHER) is True
    assert ledger.mark_failed(JOB, "again") is False
    assert ledger.claim_queued(REF) is False
    assert ledger.claim_queued(REF, retry_failed=True) is True


def test_expired_once_and_not_over_a_live_lease(ledger: Any) -> None:
    ledger.start_copy(JOB, OTHER, 60)
    assert ledger.mark_expired(REF, now=iso()) is False
    ledger.end_attempt(JOB, OTHER, "x")
    assert ledger.mark_expired(REF, now=iso()) is True
    assert ledger.mark_expired(REF, now=iso()) is False
    assert ledger.start_copy(JOB, ME, 60).state == ResultState.EXPIRED  # never copied after it expired


def test_lost_jobs_are_claimed_again_by_the_rules(ledger: Any) -> None:
    ledger.claim_queued(REF)
    assert ledger.claim_queued(REF, unsent_before=iso(-60)) is False  # claimed just now: maybe still sending
    assert ledger.claim_queued(REF, unsent_before=iso(60)) is True  # never sent, older than the bound
    ledger.mark_enqueued(REF)
    assert ledger.claim_queued(REF, unsent_before=iso(60)) is False  # sent: its job is in the queue
    assert ledger.claim_queued(REF, queued_before=iso(60)) is True  # ...unless it waited too long
    ledger.start_copy(JOB, ME, -5)
    assert ledger.claim_queued(REF, now=iso()) is True  # copying, lease lapsed: its copier died
    ledger.start_copy(JOB, ME, 60)
    assert ledger.claim_queued(REF, now=iso(), unsent_before=iso(60), queued_before=iso(60)) is False  # live
    ledger.mark_copied(JOB, ME, rows=1, size=1, table="t", location="s3://b/p/")
    assert ledger.claim_queued(REF, now=iso(), unsent_before=iso(60), queued_before=iso(60)) is False


def test_alerts_are_sent_once_per_fingerprint(ledger: Any) -> None:
    assert ledger.claim_alert("sync", "credentials", resend_before=iso(-3600)) is True
    assert ledger.claim_alert("sync", "credentials", resend_before=iso(-3600)) is False
    assert ledger.claim_alert("sync", "gateway", resend_before=iso(-3600)) is True  # another cause
    assert ledger.claim_alert("sync", "gateway", resend_before=iso(60)) is True  # due again
    assert ledger.alerts() == {"sync": "gateway"}
    ledger.release_alert("sync")
    assert ledger.alerts() == {}
    ledger.save_cursor("win-info")
    assert ledger.cursor() == "win-info" and ledger.alerts() == {}
    ledger.save_cursor("")
    assert ledger.cursor() == ""


def test_expiring_notice_is_claimed_once_and_survives_a_requeue(ledger: Any) -> None:
    ledger.claim_queued(REF)
    ledger.mark_failed(JOB, "boom")
    assert ledger.claim_expiring_notice("win-info", REF.result_id) is True
    assert ledger.claim_expiring_notice("win-info", REF.result_id) is False
    assert ledger.claim_queued(REF, retry_failed=True) is True  # rewrites the result's item whole
    assert ledger.claim_expiring_notice("win-info", REF.result_id) is False
    # The marker is not a result: reads of results never see it.
    assert [e.result_id for e in ledger.all_entries()] == [REF.result_id]
    assert list(ledger.entries("win-info")) == [REF.result_id]
    ledger.release_expiring_notice("win-info", REF.result_id)  # a failed publish gives it back
    assert ledger.claim_expiring_notice("win-info", REF.result_id) is True


def test_the_index_holds_exactly_the_unfinished_entries(ledger: Any) -> None:
    def open_ids() -> list[str]:
        return sorted(ledger.open_entries("win-info"))

    assert open_ids() == []
    ledger.claim_queued(REF)
    assert open_ids() == [REF.result_id]
    ledger.start_copy(JOB, ME, 60)
    ledger.mark_copied(JOB, ME, rows=1, size=2, table="win_info", location="s3://b/p")
    assert open_ids() == [REF.result_id]  # copied, not announced yet
    ledger.mark_notified("win-info", REF.result_id)
    assert open_ids() == []
    other = ResultRef(REF.created_at, "win-info", "b" * 25, REF.expires_at)
    ledger.claim_queued(other)
    ledger.mark_failed(CopyJob.for_result(other), "boom")
    ledger.mark_notified("win-info", other.result_id)
    assert open_ids() == [other.result_id]  # failed stays findable for --retry-failed
    gone = ResultRef(REF.created_at, "win-info", "c" * 25, REF.expires_at)
    ledger.mark_expired(gone)
    assert open_ids() == [other.result_id, gone.result_id]
    ledger.mark_notified("win-info", gone.result_id)
    assert open_ids() == [other.result_id]
    assert ledger.open_entries("all-coupons") == {}


def test_a_first_attempt_is_known_and_a_claim_again_keeps_the_history(ledger: Any) -> None:
    ledger.claim_queued(REF)
    first = ledger.start_copy(JOB, ME, 60)
    assert first is not None and first.first_attempt
    ledger.mark_failed(JOB, "boom", owner=ME)
    assert ledger.claim_queued(REF, retry_failed=True) is True
    again = ledger.start_copy(JOB, OTHER, 60)
    assert again is not None and not again.first_attempt and again.attempts == 1
    unknown = CopyJob.for_result(ResultRef(REF.created_at, "win-info", "d" * 25, REF.expires_at))
    started = ledger.start_copy(unknown, ME, 60)  # a job for a result the ledger never saw: history unknown
    assert started is not None and not started.first_attempt


def test_copied_can_carry_the_notice_claim(ledger: Any) -> None:
    ledger.claim_queued(REF)
    ledger.start_copy(JOB, ME, 60)
    assert ledger.mark_copied(JOB, ME, rows=1, size=2, table="t", location="l", notify_seconds=60) is True
    assert ledger.claim_notification("win-info", REF.result_id, 60, owner=OTHER) is False  # ME holds it
    entry = ledger.get("win-info", REF.result_id)
    assert entry.notify_owner == ME and entry.state == ResultState.COPIED and not entry.notified


def test_export_states_and_batched_reads(ledger: Any) -> None:
    from exportlake.domain.ports import ExportState

    assert ledger.export_states() == {}
    state = ExportState("win-info", newest_id="a" * 25, newest_created=iso(), total=3, order="newest_first",
                        page_size=10, recon_page=2, recon_from=iso(-60), recon_last=iso(-3600))  # fmt: skip
    ledger.save_export_state(state)
    ledger.save_export_state(ExportState("all-coupons", total=0))
    assert ledger.export_states() == {"win-info": state, "all-coupons": ExportState("all-coupons", total=0)}
    ledger.claim_queued(REF)
    found = ledger.get_many([("win-info", REF.result_id), ("win-info", "z" * 25)])
    assert list(found) == [("win-info", REF.result_id)] and found[("win-info", REF.result_id)].state == "queued"
    assert "_exports" not in {e.export_name for e in ledger.all_entries()}
