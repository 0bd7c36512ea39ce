"""The DynamoDB ledger's conditional transitions, on moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from exportlake.adapters.ledger import DynamoLedger
from exportlake.domain.models import CopyJob, ResultRef, ResultState
from exportlake.local.aws import provision
from exportlake.settings import Settings
from tests.helpers import local_settings

REF = ResultRef(datetime(2024, 6, 20, 9, 35, tzinfo=UTC), "win-info", "a" * 25, datetime(2124, 1, 1, tzinfo=UTC))
JOB = CopyJob.for_result(REF)


@pytest.fixture
def ledger(aws: None) -> DynamoLedger:
    settings: Settings = local_settings()
    provision(settings, boto3.client)
    return DynamoLedger(boto3.client("dynamodb"), settings.ledger_table)


def test_claim_is_won_once(ledger: DynamoLedger) -> None:
    assert ledger.claim_queued(REF) is True
    assert ledger.claim_queued(REF) is False
    entry = ledger.get("win-info", REF.result_id)
    assert entry is not None and entry.state == ResultState.QUEUED
    assert list(ledger.entries("win-info")) == [REF.result_id]


def test_release_only_undoes_a_queued_claim(ledger: DynamoLedger) -> None:
    ledger.claim_queued(REF)
    ledger.release_queued(REF)
    assert ledger.get("win-info", REF.result_id) is None
    ledger.claim_queued(REF)
    ledger.start_copy(JOB, 60)
    ledger.release_queued(REF)  # copying: must stay
    assert ledger.get("win-info", REF.result_id) is not None


def test_lease_excludes_a_second_copier_until_released(ledger: DynamoLedger) -> None:
    ledger.claim_queued(REF)
    first = ledger.start_copy(JOB, 600)
    assert first is not None and first.state == ResultState.COPYING and first.attempts == 1
    assert ledger.start_copy(JOB, 600) is None
    ledger.end_attempt(JOB, "TransientError: boom")
    again = ledger.start_copy(JOB, 600)
    assert again is not None and again.attempts == 2


def test_copied_is_reached_once_and_then_returned_as_is(ledger: DynamoLedger) -> None:
    ledger.claim_queued(REF)
    ledger.start_copy(JOB, 600)
    assert ledger.mark_copied(JOB, rows=10, size=100, table="win_info", location="s3://b/p/") is True
    assert ledger.mark_copied(JOB, rows=10, size=100, table="win_info", location="s3://b/p/") is False
    entry = ledger.start_copy(JOB, 600)
    assert entry is not None and entry.state == ResultState.COPIED and entry.rows == 10 and not entry.notified
    assert ledger.claim_notification("win-info", REF.result_id, 300) is True
    assert ledger.claim_notification("win-info", REF.result_id, 300) is False  # claimed: nobody else sends it
    ledger.mark_notified("win-info", REF.result_id)
    assert ledger.get("win-info", REF.result_id).notified  # type: ignore[union-attr]
    assert ledger.mark_failed(JOB, "late failure") is False
    assert ledger.mark_expired(REF) is False


def test_failed_once_and_retry_failed_reclaims(ledger: DynamoLedger) -> None:
    ledger.claim_queued(REF)
    assert ledger.mark_failed(JOB, "DocumentError: bad") is True
    assert ledger.mark_failed(JOB, "DocumentError: bad") is False
    assert ledger.claim_queued(REF) is False
    assert ledger.claim_queued(REF, retry_failed=True) is True


def test_expired_once(ledger: DynamoLedger) -> None:
    old = ResultRef(REF.created_at - timedelta(days=400), "win-info", "b" * 25, REF.created_at)
    assert ledger.mark_expired(old) is True
    assert ledger.mark_expired(old) is False
    assert ledger.get("win-info", old.result_id).state == ResultState.EXPIRED  # type: ignore[union-attr]


def test_stale_in_flight_entry_is_claimed_again_once(ledger: DynamoLedger) -> None:
    ledger.claim_queued(REF)
    ledger.start_copy(JOB, 600)  # a copier took it, then died for good
    updated = ledger.get("win-info", REF.result_id).updated_at  # type: ignore[union-attr]
    assert ledger.claim_queued(REF, stale_before="2000-01-01T00:00:00+00:00") is False  # not stale yet
    later = "2999-01-01T00:00:00+00:00"  # "stale before" a time after its last update
    assert updated < later
    assert ledger.claim_queued(REF, stale_before=later) is True
    assert ledger.get("win-info", REF.result_id).state == ResultState.QUEUED  # type: ignore[union-attr]
    assert ledger.claim_queued(REF, stale_before=later) is True  # still "queued" since before `later`
    ledger.start_copy(JOB, 600)
    ledger.mark_copied(JOB, rows=1, size=1, table="win_info", location="s3://b/p/")
    assert ledger.claim_queued(REF, stale_before=later) is False  # copied is never claimed again


def test_a_final_failure_never_overrides_a_live_lease(ledger: DynamoLedger) -> None:
    ledger.claim_queued(REF)
    ledger.start_copy(JOB, 600)  # another copier is on it
    assert ledger.mark_failed(JOB, "TransientError: being copied by another copier") is False
    ledger.end_attempt(JOB, "it failed")
    assert ledger.mark_failed(JOB, "TransientError: boom (after 5 attempts)") is True


def test_expiring_notice_is_claimed_once_and_survives_a_requeue(ledger: DynamoLedger) -> None:
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
