"""``exportlake query --athena`` against a botocore-stubbed Athena client: start, poll with backoff, page, cap."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from exportlake import bootstrap
from exportlake.cli import main as cli
from exportlake.cli.output import render
from exportlake.domain.errors import ExportlakeError
from exportlake.query.athena import MIN_BILLED_BYTES, AthenaQuery, cost_estimate_usd, stack_outputs

QID = "11111111-2222-3333-4444-555555555555"
SQL = 'SELECT game_type, wins FROM "exportlake"."win_info_typed"'


def athena() -> Any:
    return boto3.client("athena", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")


def execution(state: str, **extra: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"State": state}
    status.update(extra.pop("status", {}))
    return {"QueryExecution": {"QueryExecutionId": QID, "Status": status, **extra}}


def page(rows: list[list[str | None]], token: str | None = None, header: bool = False) -> dict[str, Any]:
    data = [{"Data": [{"VarCharValue": v} if v is not None else {} for v in r]} for r in rows]
    if header:
        data.insert(0, {"Data": [{"VarCharValue": "game_type"}, {"VarCharValue": "wins"}, {"VarCharValue": "ok"}]})
    body: dict[str, Any] = {
        "ResultSet": {
            "Rows": data,
            "ResultSetMetadata": {
                "ColumnInfo": [
                    {"Name": "game_type", "Type": "varchar"},
                    {"Name": "wins", "Type": "bigint"},
                    {"Name": "ok", "Type": "boolean"},
                ]
            },
        }
    }
    if token:
        body["NextToken"] = token
    return body


def expect_start(stub: Stubber, workgroup: str = "ExportLake-workgroup", database: str = "exportlake") -> None:
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": QID},
        {"QueryString": SQL, "QueryExecutionContext": {"Database": database}, "WorkGroup": workgroup},
    )


def test_runs_polls_with_backoff_pages_and_types_the_rows() -> None:
    client = athena()
    sleeps: list[float] = []
    with Stubber(client) as stub:
        expect_start(stub)
        for state in ("QUEUED", "RUNNING", "RUNNING", "RUNNING"):
            stub.add_response("get_query_execution", execution(state), {"QueryExecutionId": QID})
        stats = {"DataScannedInBytes": 123_456_789, "EngineExecutionTimeInMillis": 812}
        stub.add_response("get_query_execution", execution("SUCCEEDED", Statistics=stats), {"QueryExecutionId": QID})
        stub.add_response(
            "get_query_results",
            page([["lottery", "12", "true"]], token="t2", header=True),
            {"QueryExecutionId": QID, "MaxResults": 1000},
        )
        stub.add_response(
            "get_query_results",
            page([["quiz", None, "false"]]),
            {"QueryExecutionId": QID, "MaxResults": 1000, "NextToken": "t2"},
        )
        result = AthenaQuery(client, "ExportLake-workgroup", "exportlake", sleep=sleeps.append, max_delay_s=1.0).run(
            SQL
        )
        stub.assert_no_pending_responses()
    assert sleeps == [0.2, 0.4, 0.8, 1.0]
    assert result.columns == ["game_type", "wins", "ok"]
    assert result.rows == [("lottery", 12, True), ("quiz", None, False)]
    assert result.truncated is False
    assert result.bytes_scanned == 123_456_789
    assert result.cost_usd == pytest.approx(123_456_789 / 1024**4 * 5)


def test_limit_stops_paging() -> None:
    client = athena()
    with Stubber(client) as stub:
        expect_start(stub)
        stub.add_response("get_query_execution", execution("SUCCEEDED"), {"QueryExecutionId": QID})
        stub.add_response(
            "get_query_results",
            page([["a", "1", "true"], ["b", "2", "true"]], token="more", header=True),
            {"QueryExecutionId": QID, "MaxResults": 1000},
        )
        result = AthenaQuery(client, "ExportLake-workgroup", "exportlake", sleep=lambda _s: None).run(SQL, limit=1)
        stub.assert_no_pending_responses()
    assert result.rows == [("a", 1, True)]
    assert result.truncated is True


def test_failed_query_is_one_line_with_athenas_reason() -> None:
    client = athena()
    with Stubber(client) as stub:
        expect_start(stub)
        reason = "line 1:8: Column 'nope' cannot be resolved\n  more detail"
        stub.add_response(
            "get_query_execution",
            execution("FAILED", status={"StateChangeReason": reason}),
            {"QueryExecutionId": QID},
        )
        with pytest.raises(ExportlakeError) as caught:
            AthenaQuery(client, "ExportLake-workgroup", "exportlake", sleep=lambda _s: None).run(SQL)
    message = str(caught.value)
    assert "\n" not in message
    assert message == f"Athena query {QID} failed: line 1:8: Column 'nope' cannot be resolved more detail"


def test_a_query_that_never_ends_is_stopped() -> None:
    client = athena()
    with Stubber(client) as stub:
        expect_start(stub)
        for _ in range(3):
            stub.add_response("get_query_execution", execution("RUNNING"), {"QueryExecutionId": QID})
        stub.add_response("stop_query_execution", {}, {"QueryExecutionId": QID})
        query = AthenaQuery(
            client, "ExportLake-workgroup", "exportlake", sleep=lambda _s: None, first_delay_s=1, timeout_s=2
        )
        with pytest.raises(ExportlakeError, match="still running"):
            query.run(SQL)
        stub.assert_no_pending_responses()


def test_cost_has_athenas_10_mb_minimum() -> None:
    assert cost_estimate_usd(0) == cost_estimate_usd(MIN_BILLED_BYTES) == pytest.approx(10 / 1024**2 * 5)


def test_stack_outputs() -> None:
    client = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "ExportLake",
                        "CreationTime": "2026-01-01T00:00:00Z",
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": [
                            {"OutputKey": "AthenaWorkGroup", "OutputValue": "ExportLake-workgroup"},
                            {"OutputKey": "GlueDatabase", "OutputValue": "exportlake"},
                        ],
                    }
                ]
            },
            {"StackName": "ExportLake"},
        )
        stub.add_client_error("describe_stacks", "ValidationError", "Stack with id Nope does not exist")
        assert stack_outputs(client, "ExportLake") == {
            "AthenaWorkGroup": "ExportLake-workgroup",
            "GlueDatabase": "exportlake",
        }
        with pytest.raises(ExportlakeError, match="cannot read the outputs of stack 'Nope'"):
            stack_outputs(client, "Nope")


def test_cli_athena_mode_reads_the_stack_outputs_and_honours_the_workgroup(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = athena()
    cfn = boto3.client("cloudformation", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    clients = {"athena": client, "cloudformation": cfn}
    monkeypatch.setattr(bootstrap, "client", lambda service: clients[service])
    monkeypatch.setattr("exportlake.query.athena.time.sleep", lambda _s: None)
    with Stubber(client) as stub, Stubber(cfn) as cfn_stub:
        cfn_stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "Prod",
                        "CreationTime": "2026-01-01T00:00:00Z",
                        "StackStatus": "UPDATE_COMPLETE",
                        "Outputs": [{"OutputKey": "GlueDatabase", "OutputValue": "prod"}],
                    }
                ]
            },
            {"StackName": "Prod"},
        )
        expect_start(stub, workgroup="analysts", database="prod")
        stats = {"DataScannedInBytes": 2048, "EngineExecutionTimeInMillis": 5}
        stub.add_response("get_query_execution", execution("SUCCEEDED", Statistics=stats), {"QueryExecutionId": ANY})
        stub.add_response("get_query_results", page([["lottery", "3", "true"]], header=True), None)
        code = cli.main(["query", SQL, "--athena", "--stack-name", "Prod", "--workgroup", "analysts", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    document = json.loads(captured.out)
    assert document["rows"] == [{"game_type": "lottery", "wins": 3, "ok": True}]
    assert document["read"]["engine"] == "athena" and document["read"]["bytes"] == 2048
    assert document["read"]["files"] is None  # Athena reports bytes scanned, not files
    assert document["read"]["workgroup"] == "analysts"
    assert "2,048 bytes scanned" in captured.err and "in analysts" in captured.err and "~$0.0000" in captured.err


def test_render_formats() -> None:
    out, err = io.StringIO(), io.StringIO()
    render(["a", "b"], [(1, None), ("x,y", True)], fmt="csv", truncated=True, out=out, err=err)
    assert out.getvalue() == 'a,b\n1,\n"x,y",True\n'
    assert "first 2 rows" in err.getvalue()
    out = io.StringIO()
    render(["a"], [("x",)], fmt="table", title="t", out=out, err=err)
    assert "x" in out.getvalue()
