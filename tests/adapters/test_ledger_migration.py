"""A ledger deployed before the index of unfinished results upgrades in place and loses nothing (moto).

What ``cdk deploy`` does to the table is one UpdateTable adding the global secondary index; the items written by
the earlier version carry no ``unfinished`` attribute, so the planner's first run per export tags the unfinished
ones (``adopt``). Until the index exists the adapter reads the export's partition instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from exportlake.adapters.ledger import DynamoLedger
from exportlake.domain.models import Export, ResultRef, ResultState
from exportlake.domain.planning import Planner
from exportlake.domain.ports import NullMetrics
from exportlake.emulator.provision import add_ledger_index
from tests.fakes import FakeGateway, FakeNotifier, FakeQueue

TABLE = "exportlake-ledger-old"
NOW = datetime.now(UTC).replace(microsecond=0)


def ref(rid: str, hours_ago: int) -> ResultRef:
    return ResultRef(NOW - timedelta(hours=hours_ago), "win-info", rid, NOW + timedelta(days=60))


def old_item(r: ResultRef, state: str, **extra: Any) -> dict[str, Any]:
    """An item as the version before the index wrote it (no ``unfinished``, ``v`` or ``starts``)."""
    item: dict[str, Any] = {
        "export_name": {"S": r.export_name},
        "result_id": {"S": r.result_id},
        "state": {"S": state},
        "created_at": {"S": r.created_at.isoformat(timespec="seconds")},
        "expires_at": {"S": (r.expires_at or NOW).isoformat(timespec="seconds")},
        "updated_at": {"S": (NOW - timedelta(hours=3)).isoformat(timespec="seconds")},
        "attempts": {"N": "1"},
    }
    for key, value in extra.items():
        item[key] = {"BOOL": value} if isinstance(value, bool) else {"S": str(value)}
    return item


@pytest.mark.usefixtures("aws")
def test_an_old_ledger_gains_the_index_in_place_and_keeps_every_entry() -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(  # the table as the stack declared it before
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": "export_name", "AttributeType": "S"},
            {"AttributeName": "result_id", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "export_name", "KeyType": "HASH"},
            {"AttributeName": "result_id", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    done = [ref(f"done{i:021d}", 10 + i) for i in range(5)]
    failed, lost, unsent = ref("f" * 25, 5), ref("q" * 25, 4), ref("u" * 25, 3)
    for r in done:
        ddb.put_item(TableName=TABLE, Item=old_item(r, "copied", notified=True))
    ddb.put_item(TableName=TABLE, Item=old_item(failed, "failed", notified=True, error="boom"))
    ddb.put_item(TableName=TABLE, Item=old_item(lost, "queued", enqueued=False))  # its planner died before SQS
    ddb.put_item(TableName=TABLE, Item=old_item(unsent, "copied", notified=False))  # its notice never went out
    ledger = DynamoLedger(ddb, TABLE)
    before = sorted((e.result_id, e.state) for e in ledger.all_entries())
    # Before the index exists the adapter still answers, from the export's partition.
    assert sorted(ledger.open_entries("win-info")) == sorted([failed.result_id, lost.result_id, unsent.result_id])

    assert add_ledger_index(ddb, TABLE) is True  # what cdk deploy does: UpdateTable, in place
    assert add_ledger_index(ddb, TABLE) is False
    assert sorted((e.result_id, e.state) for e in ledger.all_entries()) == before  # not one entry lost
    assert ledger.open_entries("win-info") == {}  # the old items are not in the new index yet

    new = ref("n" * 25, 0)
    results = {"win-info": [*done, failed, lost, unsent, new]}
    gateway = FakeGateway(exports=[Export("1", "win-info", new)], results=results)
    queue = FakeQueue()
    planner = Planner(gateway, ledger, queue, FakeNotifier(), NullMetrics())
    report = planner.run(NOW)
    assert report.errors == []
    # The first run tagged the old unfinished entries, so it saw them: the lost job is queued again, the
    # unannounced copy gets its notice job, the new result its copy job; nothing copied is touched.
    assert sorted(j.result_id for j in queue.sent) == sorted([lost.result_id, unsent.result_id, new.result_id])
    assert sorted(ledger.open_entries("win-info")) == sorted(
        [failed.result_id, lost.result_id, unsent.result_id, new.result_id]
    )
    after = {e.result_id: e.state for e in ledger.all_entries()}
    assert all(after[r.result_id] == ResultState.COPIED for r in done) and after[failed.result_id] == "failed"
    assert ledger.export_states()["win-info"].newest_id == new.result_id
    # The next run is steady: one page, nothing queued again (the copiers are at work on the jobs).
    ledger.mark_notified("win-info", unsent.result_id)  # what the notice job's copier does
    queue.sent.clear()
    gateway.pages.clear()
    planner.run(NOW + timedelta(minutes=1))
    assert queue.sent == [] and gateway.pages == [("win-info", 1)]
