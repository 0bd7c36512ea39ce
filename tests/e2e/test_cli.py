"""The ``exportlake`` command as a user runs it: provision, sync, status, query, and the exit codes."""

from __future__ import annotations

import json

from tests.e2e.conftest import Stack


def test_provision_creates_resources_named_by_the_settings(stack: Stack) -> None:
    for _ in range(2):  # idempotent
        done = stack.run("provision")
        assert done.returncode == 0, done.stderr
    sqs = stack.client("sqs")
    assert stack.env["EXPORTLAKE_QUEUE_URL"] in sqs.list_queues()["QueueUrls"]  # type: ignore[attr-defined]
    topics = [t["TopicArn"] for t in stack.client("sns").list_topics()["Topics"]]  # type: ignore[attr-defined]
    assert stack.env["EXPORTLAKE_TOPIC_ARN"] in topics
    tables = stack.client("glue").get_tables(DatabaseName="exportlake")["TableList"]  # type: ignore[attr-defined]
    assert len(tables) == 10


def test_sync_status_query_and_a_second_sync(stack: Stack) -> None:
    assert stack.run("provision").returncode == 0
    first = stack.run("sync")
    assert first.returncode == 0, first.stdout + first.stderr
    total = {e["system_name"]: len(stack.sim.results(e["system_name"])) for e in stack.sim.exports()}
    assert f"{sum(total.values())} new results" in first.stdout

    status = stack.run("status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {r["export"]: r for r in json.loads(status.stdout)}
    assert set(rows) == set(total)
    for name, row in rows.items():
        expected_rows = sum(len(stack.sim.records(r["id"])) for r in stack.sim.results(name))
        assert row["rows_copied"] == expected_rows
        assert row["up_to_date"] is True

    win_ids = [r["id"] for r in stack.sim.results("win-info")]
    query = stack.run("query", "SELECT result_id, count(*) AS n FROM win_info GROUP BY 1 ORDER BY 1", "--json")
    assert query.returncode == 0, query.stderr
    got = {r["result_id"]: r["n"] for r in json.loads(query.stdout)}
    assert got == {rid: len(stack.sim.records(rid)) for rid in win_ids}

    second = stack.run("sync")
    assert second.returncode == 0 and "0 new results" in second.stdout
    assert stack.sim.tokens_issued == 3  # one per process (sync, status, sync): reused across every call of a run


# Failing results, their summary and every error case: tests/e2e/test_operate.py.
