"""Faults, crashes at every step, new export types and bad input: nothing lost, nothing doubled."""

from __future__ import annotations

from typing import Any

import pytest

from exportlake import bootstrap
from exportlake.adapters.catalog import GlueCatalog
from exportlake.adapters.ledger import DynamoLedger
from exportlake.domain.models import ResultState
from exportlake.emulator.server import GatewaySimulator
from tests.functional.conftest import Lake, start_lake


def copied_once_each(lake: Lake) -> None:
    """Every listed result copied, with exactly one result.copied each, and its rows exact."""
    expected = sorted(
        (e["system_name"], r["id"]) for e in lake.sim.exports() for r in lake.sim.results(e["system_name"])
    )
    notes = sorted((m["body"]["export"], m["body"]["result_id"]) for m in lake.events("result.copied"))
    assert notes == expected
    for export_name, rid in expected:
        assert lake.stored_rows(export_name, rid) == [{**dict.fromkeys(r), **r} for r in lake.sim.records(rid)]


# A crash at each visible step (after the parts, the manifest, the partition, the ledger, around the publish) is
# proven on in-memory fakes in tests/unit/test_copying.py, and with real SIGKILLs in tests/e2e/test_crash.py.


def test_transient_gateway_and_download_faults_are_recovered(lake: Lake) -> None:
    sim = lake.sim
    sim.faults.inject("rate_limit", times=2, retry_after=0, target="gateway")
    sim.faults.inject("server_error", times=2, status=503, target="gateway")
    sim.faults.inject("unauthorized", times=1, target="gateway")
    sim.faults.inject("url_expired", times=2, target="download")
    sim.faults.inject("truncated", times=2, target="download", fraction=0.4)
    sim.faults.inject("server_error", times=1, status=500, target="download")
    report = lake.sync()
    assert report.ok, report.failed
    assert sim.faults.pending() == []
    copied_once_each(lake)
    assert lake.events("result.failed") == []
    assert sim.tokens_issued == 2  # renewed once after the 401, reused otherwise


def test_a_short_lived_download_url_is_fetched_again(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # One result per export: every attempt of every delivery fetches and downloads again (about 30 requests a
    # result), so a smaller lake proves the same at a third of the requests.
    with GatewaySimulator(seed=7, records=(5, 10), max_per_page=1, results_per_export=1) as sim:
        _short_lived_urls(start_lake(monkeypatch, sim))


def _short_lived_urls(lake: Lake) -> None:
    lake.sim.url_ttl = 0  # every URL is expired by the time it is used, except by re-fetching... never
    report = lake.sync()
    assert not report.ok
    fetches = [r for r in lake.sim.requests if "/fetch/" in r.path]
    downloads = [r for r in lake.sim.requests if r.port == "download"]
    # Three fresh URLs per attempt, five deliveries each, then a single result.failed per result.
    assert len(downloads) == len(fetches)
    failed = lake.events("result.failed")
    assert sorted(m["body"]["result_id"] for m in failed) == sorted(rid for _, rid, _ in report.failed)
    assert lake.partitions() == {}
    assert lake.objects("lake/") == {} and lake.objects("manifests/") == {}
    # The exhausted jobs sit in the DLQ (its alarm is red); a retry that lands them clears them.
    sqs = lake.client("sqs")
    dlq = bootstrap.dead_letter_url()

    def dead_letters() -> int:
        attrs = sqs.get_queue_attributes(
            QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    assert dead_letters() == len(report.failed) > 0
    lake.sim.url_ttl = 300
    retried = lake.sync(retry_failed=True)
    assert retried.ok and len(retried.copied) == len(report.failed)
    assert dead_letters() == 0


def test_new_export_type_lands_in_its_own_table_and_is_reported(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with GatewaySimulator(seed=11, records=(10, 20), include_unknown_type=True, include_never_run=False) as sim:
        lake = start_lake(monkeypatch, sim)
        report = lake.sync()
        assert report.ok, report.failed
        glue = lake.client("glue")
        table = glue.get_table(DatabaseName=lake.settings.glue_database, Name="referral_info")["Table"]
        columns = [c["Name"] for c in table["StorageDescriptor"]["Columns"]]
        info = sim.result_info(sim.results("referral-info")[0]["id"])
        assert columns == list(info.export.columns)
        for r in sim.results("referral-info"):
            assert lake.stored_rows("referral-info", r["id"]) == sim.records(r["id"])
        changed = [m for m in lake.events("schema.changed") if m["body"]["export"] == "referral-info"]
        assert changed and changed[0]["body"]["added_fields"] == columns
        bootstrap.reset()


def test_fields_that_differ_from_the_table_are_kept_and_reported(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with GatewaySimulator(seed=5, records=(5, 10), results_per_export=1, include_never_run=False) as sim:
        # A win_info export whose records carry one field more and one field less than the table.
        sim.add_export(
            "win-info-v2",
            "win_info",
            n_results=1,
            n_records=7,
            columns=["userid", "stackid", "haswon", "campaign_code"],
        )
        lake = start_lake(monkeypatch, sim)
        report = lake.sync()
        assert report.ok, report.failed
        rid = sim.results("win-info-v2")[0]["id"]
        assert lake.stored_rows("win-info-v2", rid) == sim.records(rid)
        [changed] = [m for m in lake.events("schema.changed") if m["body"]["export"] == "win-info-v2"]
        assert changed["body"]["added_fields"] == ["campaign_code"]
        assert changed["body"]["missing_fields"] == ["participation_date"]
        cols = GlueCatalog(lake.client("glue"), lake.settings.glue_database, lake.settings.bucket).columns("win_info")
        assert cols == ["userid", "stackid", "haswon", "participation_date", "campaign_code"]
        # The other win_info export's rows are untouched and still read (new column NULL).
        bootstrap.reset()


def test_refused_download_host_fails_for_good_once_and_writes_nothing(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with GatewaySimulator(seed=2, records=(5, 10), results_per_export=1, include_never_run=False) as sim:
        lake = start_lake(monkeypatch, sim, EXPORTLAKE_DOWNLOAD_HOSTS="*.digitaloceanspaces.com")
        report = lake.sync()
        assert not report.ok and len(report.failed) == 10
        assert [r for r in sim.requests if r.port == "download"] == []
        failed = lake.events("result.failed")
        assert len(failed) == 10 and all(
            "allow the host in EXPORTLAKE_DOWNLOAD_HOSTS (downloadHosts in cdk.json), then exportlake sync"
            in m["body"]["error"]
            and "Refused" not in m["body"]["error"]
            for m in failed
        )
        assert lake.partitions() == {} and lake.objects("lake/") == {}
        ledger = bootstrap.ledger()
        assert {ledger.get(e, r).state for e, r, _ in report.failed} == {ResultState.FAILED}  # type: ignore[union-attr]
        # A second sync does not retry or re-report them; --retry-failed does.
        again = lake.sync()
        assert again.planned["enqueued"] == 0 and len(lake.events("result.failed")) == 10
        monkeypatch.setenv("EXPORTLAKE_DOWNLOAD_HOSTS", "127.0.0.1")
        bootstrap.reset()
        retried = lake.sync(retry_failed=True)
        assert retried.ok and len(retried.copied) == 10
        bootstrap.reset()


def test_a_duplicate_job_of_a_copied_result_says_nothing(lake: Lake) -> None:
    lake.sync()
    sent = len(lake.notifications())
    export_name, rid = lake.sync().copied[:1] or next(
        (e["system_name"], r["id"]) for e in lake.sim.exports() for r in lake.sim.results(e["system_name"])
    )
    ref = bootstrap.ledger().get(export_name, rid)
    assert ref is not None and ref.state == ResultState.COPIED
    from exportlake.domain.models import CopyJob, ResultRef
    from exportlake.domain.naming import parse_timestamp

    job = CopyJob.for_result(ResultRef(parse_timestamp(ref.created_at), export_name, rid))
    bootstrap.client("sqs").send_message(QueueUrl=lake.settings.queue_url, MessageBody=job.to_json())
    from exportlake.runner import drain_queue

    invocations, _, _ = drain_queue()
    assert invocations == 1
    assert len(lake.notifications()) == sent


def test_a_lost_answer_to_mark_copied_still_notifies_once(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    original = DynamoLedger.mark_copied

    def lost_answer(self: DynamoLedger, *args: Any, **kwargs: Any) -> bool:
        original(self, *args, **kwargs)  # the write happened ...
        return False  # ... but its answer was lost and the retried write found it done

    monkeypatch.setattr(DynamoLedger, "mark_copied", lost_answer)
    report = lake.sync()
    assert report.ok
    copied_once_each(lake)


def test_a_hostile_export_and_a_hostile_result_are_skipped_and_told_while_the_healthy_ones_land(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with GatewaySimulator(seed=4, records=(5, 10), results_per_export=1, include_never_run=False) as sim:
        sim.add_export("../../etc", "win_info", n_results=1)  # a name that must never become a key
        bad_id = sim.add_result("win-info", n_records=5, result_id="x/../y")  # in win-info's results page
        lake = start_lake(monkeypatch, sim)
        report = lake.sync()
        healthy = sorted(
            (e["system_name"], r["id"])
            for e in sim.exports()
            if e["system_name"] != "../../etc"
            for r in sim.results(e["system_name"])
            if r["id"] != bad_id
        )
        assert sorted(report.copied) == healthy  # every healthy result landed in the same run
        assert lake.objects("lake/") and not any(".." in k for k in lake.objects(""))
        invalid = [
            (m["attributes"]["event_type"], m["body"]["error"])
            for m in lake.notifications()
            if m["attributes"]["event_type"].endswith(".invalid")
        ]
        assert sorted(t for t, _ in invalid) == ["export.invalid", "result.invalid"]
        assert all("not valid" in e for _, e in invalid)
        lake.sync()  # told once per item, not on every run
        assert len([m for m in lake.notifications() if m["attributes"]["event_type"].endswith(".invalid")]) == 2
        bootstrap.reset()
