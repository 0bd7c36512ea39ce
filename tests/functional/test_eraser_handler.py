"""The deployed eraser on in-process moto: a request invoked directly, its jobs worked through the erase-jobs queue."""

from __future__ import annotations

from typing import Any

import pytest

from exportlake import bootstrap
from exportlake.handlers import eraser
from exportlake.runner import LocalContext, sqs_event
from tests.functional.conftest import Lake
from tests.privacy import holders, ledger_text, userids_by_results, visible, without

pytestmark = pytest.mark.slow


def _visible(lake: Lake) -> Any:
    return visible(lake.client("s3"), lake.client("glue"), lake.settings.bucket, lake.settings.glue_database)


def _drain(lake: Lake, url: str) -> tuple[int, int]:
    """Deliver every erase job to the handler, as the event source mapping does; (invocations, jobs)."""
    sqs = lake.client("sqs")
    jobs = 0
    for invocations in range(200):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=0).get("Messages", [])
        if not got:
            return invocations, jobs
        response = eraser.handler(sqs_event(got, url, "us-east-1"), LocalContext("eraser"))
        if not response.get("batchItemFailures"):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
            jobs += 1
    raise AssertionError("the erase jobs never drained")


def test_a_request_is_worked_as_queue_jobs_one_result_each(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORTLAKE_ERASE_WORKERS", "1")
    url = lake.client("sqs").create_queue(QueueName="exportlake-erase-jobs")["QueueUrl"]
    monkeypatch.setenv("EXPORTLAKE_ERASE_QUEUE_URL", url)
    lake.sync()
    before = _visible(lake)
    person, results = userids_by_results(before).most_common(1)[0]

    with pytest.raises(Exception, match="1 to 100 ids"):
        eraser.handler({"user_ids": []}, LocalContext("eraser"))
    dry = eraser.handler({"user_ids": [person], "dry_run": True}, LocalContext("eraser"))
    assert len(dry["results"]) == results and _visible(lake) == before

    answer = eraser.handler({"user_ids": [person]}, LocalContext("eraser"))
    assert person not in str(answer)
    exports = answer["exports"]
    invocations, jobs = _drain(lake, url)
    assert jobs == exports + results  # one find job per export, one erase job per result that held the person

    assert _visible(lake) == without(before, "userid", {person})
    assert holders(lake.client("s3"), lake.settings.bucket, {person}, bootstrap.privacy_salt()) == []
    erased = lake.events("person.erased")
    assert len(erased) == 1 and erased[0]["body"]["request_id"] == answer["request_id"]
    assert len(erased[0]["body"]["results"]) == results
    assert person not in ledger_text(lake.client("dynamodb"), lake.settings.ledger_table)
    assert invocations == jobs


def test_the_daily_retention_call_queues_one_retire_job_per_old_result(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from exportlake.domain.timefmt import day_of, utc_now

    url = lake.client("sqs").create_queue(QueueName="exportlake-erase-jobs")["QueueUrl"]
    monkeypatch.setenv("EXPORTLAKE_ERASE_QUEUE_URL", url)
    monkeypatch.setenv("EXPORTLAKE_LAKE_RETENTION_DAYS", "1")
    bootstrap.reset()  # the settings are read again, with the retention period
    lake.sync()
    before = lake.partitions()
    old = {k for k in before if k[2] < day_of(utc_now() - timedelta(days=1))}
    answer = eraser.handler({"action": "retire"}, LocalContext("eraser"))
    assert answer["retire"] == len(old) > 0
    _, jobs = _drain(lake, url)
    assert jobs == len(old)
    assert set(lake.partitions()) == set(before) - old
    (notice,) = lake.events("results.retired")
    assert notice["body"]["results"] == len(old)
