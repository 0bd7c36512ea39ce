"""Erasure end to end on in-process moto and the simulator: every copy and version gone, every other record kept."""

from __future__ import annotations

from typing import Any

import pytest

from exportlake import bootstrap
from exportlake.cli import verify
from exportlake.domain.models import ResultState
from tests.functional.conftest import Lake
from tests.privacy import holders, ledger_text, userids_by_results, version_ids, visible, without

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _one_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process moto is not safe for threads listing versions while others delete: one result at a time here
    # (the e2e tests use the default on a moto server).
    monkeypatch.setenv("EXPORTLAKE_ERASE_WORKERS", "1")


def _visible(lake: Lake) -> Any:
    return visible(lake.client("s3"), lake.client("glue"), lake.settings.bucket, lake.settings.glue_database)


def _candidates() -> list[tuple[str, str]]:
    return [(e.export_name, e.result_id) for e in bootstrap.ledger().all_entries() if e.state == ResultState.COPIED]


def _verify_all(lake: Lake) -> list[str]:
    s = lake.settings
    found = verify.verify(lake.client("s3"), bootstrap.catalog(), bootstrap.ledger(), s.bucket)
    return [v.line() for v in found if not v.ok]


def test_erase_removes_every_copy_and_version_and_keeps_every_other_record(lake: Lake) -> None:
    lake.sync()
    before = _visible(lake)
    person, results = userids_by_results(before).most_common(1)[0]
    assert results >= 2, "the sample should hold a user in two results"
    salt = bootstrap.privacy_salt()
    assert holders(lake.client("s3"), lake.settings.bucket, {person}, salt)  # the lake holds them before

    service = bootstrap.erase_service()
    report = service.erase(service.keys_of([person], []), _candidates())

    assert len(report.touched) == results
    assert _visible(lake) == without(before, "userid", {person})  # everyone else exactly, once
    assert holders(lake.client("s3"), lake.settings.bucket, {person}, salt) == []  # no object, no version
    assert _verify_all(lake) == []
    for r in report.touched:
        assert any(loc.endswith(f"result_id={r.result_id}.g1/") for loc in lake.partitions().values())
    erased = lake.events("person.erased")
    assert len(erased) == 1
    body = erased[0]["body"]
    assert body["request_id"] == report.request_id and sum(body["rows_removed"].values()) > 0
    assert body["versions_deleted"] > 0
    assert person not in str(erased[0])
    assert person not in ledger_text(lake.client("dynamodb"), lake.settings.ledger_table)

    # A second identical request changes nothing: no object or version written or deleted, no new notice.
    state = version_ids(lake.client("s3"), lake.settings.bucket)
    partitions = lake.partitions()
    again = service.erase(service.keys_of([person], []), _candidates())
    assert again.request_id == report.request_id
    assert version_ids(lake.client("s3"), lake.settings.bucket) == state
    assert lake.partitions() == partitions
    assert lake.events("person.erased") == erased


def test_erase_by_client_id_takes_every_record_of_the_mapped_user(lake: Lake) -> None:
    lake.sync()
    before = _visible(lake)
    row = next(dict(k[2]) for k in before if k[0] == "user_base_connections")
    client, user = row["client_id"], row["userid"]
    service = bootstrap.erase_service()
    dry = service.erase(service.keys_of([], [client]), _candidates(), dry_run=True)
    assert _visible(lake) == before  # a dry run changes nothing
    expected = before - without(without(before, "userid", {user}), "client_id", {client})
    assert sum(r.rows_removed for r in dry.touched) == sum(expected.values())

    report = service.erase(service.keys_of([], [client]), _candidates())
    assert _visible(lake) == without(without(before, "userid", {user}), "client_id", {client})
    assert sum(report.rows_by_table().values()) == sum(expected.values())
    assert holders(lake.client("s3"), lake.settings.bucket, {user, client}, bootstrap.privacy_salt()) == []


def test_later_results_land_without_a_suppressed_person(lake: Lake) -> None:
    lake.sync()
    before = _visible(lake)
    in_lake = set(userids_by_results(before))
    # A new win-info result with many records: pick someone it holds who is in the lake already.
    rid = lake.sim.add_result("win-info", n_records=3000)
    later = [r["userid"] for r in lake.sim.records(rid)]
    person = next(u for u in later if u in in_lake)
    service = bootstrap.erase_service()
    service.erase(service.keys_of([person], []), _candidates())

    lake.sync()
    after = _visible(lake)
    landed = [k for k in after if k[1] == rid]
    assert sum(after[k] for k in landed) == len(later) - later.count(person)
    assert holders(lake.client("s3"), lake.settings.bucket, {person}, bootstrap.privacy_salt()) == []
    manifest = lake.manifest("win-info", rid)
    assert manifest["erasure"]["suppressed"] == later.count(person)
    assert bootstrap.privacy_store().suppressed_rows() == {"win-info": later.count(person)}
    from exportlake.cli.status import status_records

    win = next(r for r in status_records() if r["export"] == "win-info")
    assert win["rows_suppressed"] == later.count(person)
    assert _verify_all(lake) == []


def test_retention_removes_old_results_whole_and_they_are_never_copied_again(lake: Lake) -> None:
    from datetime import timedelta

    from exportlake.domain.timefmt import day_of, utc_now

    lake.sync()
    before = lake.partitions()
    now = utc_now()
    cutoff = day_of(now - timedelta(days=1))
    old = {k for k in before if k[2] < cutoff}
    assert old and old != set(before)  # the simulator's results span a few days
    report = bootstrap.retention_service().run(1, now)
    assert {(r.export_name, r.result_id) for r in report.results} == {(k[1], k[3]) for k in old}
    assert set(lake.partitions()) == set(before) - old
    s3 = lake.client("s3")
    keys = {key for key, _ in version_ids(s3, lake.settings.bucket)}
    for _, export, _, rid in old:  # no object, no version of a retired result is left
        assert not [k for k in keys if f"result_id={rid}" in k or f"/{export}/{rid}." in k], rid
    assert _verify_all(lake) == []
    (notice,) = lake.events("results.retired")
    assert notice["body"]["results"] == len(old) and notice["body"]["versions_deleted"] > 0
    again = lake.sync()
    assert again.copied == []  # retired results stay copied in the ledger: never copied again
    assert bootstrap.retention_service().run(1, now).results == []
