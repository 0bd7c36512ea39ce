"""The whole pipeline on moto and the simulator: planner → queue → copier → S3, Glue, ledger, SNS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from exportlake import bootstrap
from exportlake.domain.models import ResultState
from exportlake.domain.schemas import EXPORT_TYPES
from tests.functional.conftest import Lake


def all_results(lake: Lake) -> list[tuple[str, str]]:
    """(export, result id) of every result the gateway lists, from the simulator's own view."""
    return [(e["system_name"], r["id"]) for e in lake.sim.exports() for r in lake.sim.results(e["system_name"])]


def test_every_type_round_trips_row_for_row(lake: Lake) -> None:
    report = lake.sync()
    assert report.ok, report.failed
    results = all_results(lake)
    assert sorted(report.copied) == sorted(results)
    keys_seen = set()
    for export_name, rid in results:
        expected = lake.sim.records(rid)
        stored = lake.stored_rows(export_name, rid)
        info = lake.sim.result_info(rid)
        keys_seen.add(info.export.key)
        # Every field, in order, nulls and leading spaces kept, nothing added or dropped.
        assert stored == [{**dict.fromkeys(r), **r} for r in expected]
        assert lake.manifest(export_name, rid)["rows"] == len(expected)
    assert keys_seen == set(EXPORT_TYPES)
    coupons = [r for (e, rid) in results if e == "all-coupons" for r in lake.sim.records(rid)]
    assert any(r["coupon_name"].startswith(" ") for r in coupons)


def test_partitions_point_at_exactly_the_objects_written(lake: Lake) -> None:
    lake.sync()
    partitions = lake.partitions()
    assert len(partitions) == len(all_results(lake))
    for (table, export_name, created_date, rid), location in partitions.items():
        manifest = lake.manifest(export_name, rid)
        prefix = location.removeprefix(f"s3://{lake.settings.bucket}/")
        assert manifest["table"] == table and manifest["location"] == location
        assert sorted(lake.objects(prefix)) == sorted(p["key"] for p in manifest["parts"])
        created = datetime.fromisoformat(manifest["created_at"]).astimezone(UTC)
        assert created.strftime("%Y-%m-%d") == created_date
    # Raw originals and manifests sit outside every table location.
    assert all(not k.startswith("lake/") for k in lake.objects("raw/")) and lake.objects("raw/")


def test_second_sync_copies_nothing_and_says_nothing(lake: Lake) -> None:
    lake.sync()
    objects, partitions = lake.objects(), lake.partitions()
    tables = {
        t["Name"]: t.get("UpdateTime")
        for t in lake.client("glue").get_tables(DatabaseName=lake.settings.glue_database)["TableList"]
    }
    sent = len(lake.notifications())
    second = lake.sync()
    assert second.ok and second.copied == [] and second.planned["enqueued"] == 0
    assert lake.objects() == objects
    assert lake.partitions() == partitions
    assert {
        t["Name"]: t.get("UpdateTime")
        for t in lake.client("glue").get_tables(DatabaseName=lake.settings.glue_database)["TableList"]
    } == tables
    assert len(lake.notifications()) == sent


def test_results_created_between_syncs_are_all_copied(lake: Lake) -> None:
    lake.sync()
    now = datetime.now(UTC)
    new = [lake.sim.add_result("win-info", n_records=15, created_at=now - timedelta(minutes=m)) for m in (30, 20, 10)]
    report = lake.sync()
    assert sorted(rid for _, rid in report.copied) == sorted(new)
    for rid in new:
        assert lake.stored_rows("win-info", rid) == lake.sim.records(rid)


def test_expired_result_is_skipped_and_reported_once(lake: Lake) -> None:
    rid = lake.sim.results("win-info")[-1]["id"]
    lake.sim.expire_result(rid)
    report = lake.sync()
    assert report.ok
    assert ("win-info", rid) not in report.copied
    expired = lake.events("result.expired")
    assert [m["body"]["result_id"] for m in expired] == [rid]
    assert expired[0]["attributes"] == {"event_type": "result.expired", "export": "win-info"}
    assert bootstrap.ledger().get("win-info", rid).state == ResultState.EXPIRED  # type: ignore[union-attr]
    lake.sync()
    assert len(lake.events("result.expired")) == 1


def test_token_is_fetched_once_and_never_reaches_the_download_host(lake: Lake) -> None:
    lake.sync()
    lake.sync()
    downloads = [r for r in lake.sim.requests if r.port == "download"]
    assert downloads and all(r.header("Authorization") is None for r in downloads)
    gateway_calls = [r for r in lake.sim.requests if r.port == "gateway" and "access_token" not in r.path]
    assert gateway_calls and all(
        r.header(
            "Authorization",
        ).startswith("Bearer ")
        for r in gateway_calls
    )  # type: ignore[union-attr]
    assert lake.sim.tokens_issued == 1


def test_copied_notifications_carry_what_subscribers_need(lake: Lake) -> None:
    report = lake.sync()
    copied = lake.events("result.copied")
    assert len(copied) == len(report.copied)
    assert sorted((m["body"]["export"], m["body"]["result_id"]) for m in copied) == sorted(report.copied)
    for m in copied:
        body = m["body"]
        assert m["attributes"] == {"event_type": "result.copied", "export": body["export"]}
        assert body["rows"] == len(lake.sim.records(body["result_id"]))
        assert body["s3_location"] in lake.partitions().values()
        assert (
            body["athena_table"]
            == f"{lake.settings.glue_database}.{lake.sim.result_info(body['result_id']).export.key}"
        )
        assert m["subject"] and len(m["subject"]) <= 100
    ledger = bootstrap.ledger()
    assert all(ledger.get(e, r).notified for e, r in report.copied)  # type: ignore[union-attr]


def test_secret_and_token_never_leak(lake: Lake, capsys: object) -> None:
    lake.sync()
    texts = [str(m) for m in lake.notifications()]
    texts += [str(e) for e in bootstrap.ledger().all_entries()]
    secret = lake.sim.client_secret
    assert secret and not any(secret in t for t in texts)
    assert not any("Bearer" in t for t in texts)
