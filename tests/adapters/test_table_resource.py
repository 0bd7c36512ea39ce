"""The raw tables' custom resource handler on moto, answering CloudFormation at a loopback ResponseURL.

The requests are the ones CloudFormation sends (Create, Update with old and new properties, Delete); the table in
between is changed by the runtime's own catalog adapter, as a sync of a result with a new field would.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from exportlake.adapters import cfnresponse
from exportlake.adapters.catalog import GlueCatalog, declared_fingerprint, table_input
from exportlake.adapters.cfnresponse import Reply, ResponseUrlError
from exportlake.domain import tableresource
from exportlake.domain.schemas import EXPORT_TYPES, PARTITION_KEYS
from exportlake.domain.tablemerge import TableSync
from exportlake.domain.tableresource import RemovalPolicy, TableDeclaration
from exportlake.handlers import tables

DATABASE = "exportlake"
BUCKET = "exportlake-lake"
WIN_INFO = EXPORT_TYPES["win_info"]
SIGNATURE = "X-Amz-Signature=0123456789abcdef"


@dataclass
class CloudFormation:
    """The loopback end of the ResponseURL: every PUT's headers and JSON body."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str | None] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def cfn() -> Iterator[CloudFormation]:
    state = CloudFormation("")

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.content_types.append(self.headers.get("Content-Type"))
            state.bodies.append(json.loads(body))
            self.send_response(200)
            self.end_headers()
            state.arrived.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/cfn-response?{SIGNATURE}"
    yield state
    server.shutdown()
    server.server_close()


#: The handler's own composition (a bounded deploy-time Glue client), before any test swaps it.
COMPOSED_TABLE_CATALOG = tables.table_catalog


@pytest.fixture
def glue(aws: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    client = boto3.client("glue")
    client.create_database(DatabaseInput={"Name": DATABASE})
    # A second client per test costs ~0.3 s: the handler shares this one (``composed`` tests the real wiring).
    monkeypatch.setattr(tables, "table_catalog", lambda database, bucket: GlueCatalog(client, database, bucket))
    return client


@pytest.fixture
def composed(glue: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The handler builds its catalog as deployed: ``tables.table_catalog`` (its client made inside moto)."""
    monkeypatch.setattr(tables, "table_catalog", COMPOSED_TABLE_CATALOG)
    tables._glue.cache_clear()
    yield
    tables._glue.cache_clear()


@dataclass
class Context:
    """What the handler reads from the Lambda context."""

    remaining_ms: int = 120_000
    function_name: str = "exportlake-tables"
    memory_limit_in_mb: int = 256
    aws_request_id: str = "req-1"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:exportlake-tables"
    log_stream_name: str = "2026/01/01/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def props(
    columns: Sequence[str] = WIN_INFO.columns, *, removal: RemovalPolicy = RemovalPolicy.RETAIN, table: str = "win_info"
) -> dict[str, Any]:
    """The properties the stack gives a table's resource (plus the ServiceToken CloudFormation adds)."""
    declaration = TableDeclaration(
        DATABASE, table, BUCKET, tuple(columns), WIN_INFO.description,
        declared_fingerprint(table, columns, WIN_INFO.description), removal,
    )  # fmt: skip
    return {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:exportlake-tables",
        **declaration.properties(),
    }


def send(
    cfn: CloudFormation,
    kind: str,
    properties: dict[str, Any],
    *,
    physical: str | None = None,
    old: dict[str, Any] | None = None,
    context: Context | None = None,
) -> dict[str, Any]:
    """Send one request as CloudFormation does; return the one response it got."""
    event: dict[str, Any] = {
        "RequestType": kind,
        "ResponseURL": cfn.url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/ExportLake/guid",
        "RequestId": f"request-{len(cfn.bodies)}",
        "ResourceType": "Custom::ExportlakeTable",
        "LogicalResourceId": "CatalogRawTablewininfo1234ABCD",
        "ResourceProperties": properties,
    }
    if physical is not None:
        event["PhysicalResourceId"] = physical
    if old is not None:
        event["OldResourceProperties"] = old
    before = len(cfn.bodies)
    tables.handler(event, context or Context())  # type: ignore[arg-type]
    assert len(cfn.bodies) == before + 1, "exactly one response per request"
    body = cfn.bodies[-1]
    assert (body["RequestId"], body["LogicalResourceId"], body["StackId"]) == (
        event["RequestId"],
        event["LogicalResourceId"],
        event["StackId"],
    )
    return body


def table(glue: Any, name: str = "win_info") -> dict[str, Any]:
    found: dict[str, Any] = glue.get_table(DatabaseName=DATABASE, Name=name)["Table"]
    return found


def column_names(glue: Any, name: str = "win_info") -> list[str]:
    return [c["Name"] for c in table(glue, name)["StorageDescriptor"]["Columns"]]


def test_a_drifted_table_keeps_its_columns_through_updates_and_goes_only_as_configured(
    glue: Any, composed: None, cfn: CloudFormation
) -> None:
    declared = list(WIN_INFO.columns)
    created = send(cfn, "Create", props())
    assert created["Status"] == "SUCCESS", created["Reason"]
    assert created["PhysicalResourceId"] == "exportlake/win_info"
    assert column_names(glue) == declared
    assert table(glue)["StorageDescriptor"]["Location"] == f"s3://{BUCKET}/lake/win_info/"
    assert cfn.content_types == [""]  # what the pre-signed URL's signature covers

    # A sync meets a result with a new field: the runtime adds the column and registers the result's partition.
    runtime = GlueCatalog(glue, DATABASE, BUCKET)
    runtime.add_columns("win_info", ["promo_code"])
    values = ["win-info", "2024-06-20", "a" * 25]
    runtime.register_partition("win_info", values, f"s3://{BUCKET}/lake/win_info/p/", [*declared, "promo_code"])
    partitions_before = runtime.partitions("win_info")

    # The registry declares a new column: CloudFormation sends an Update with the new and the old properties.
    wider = props([*declared, "campaign_code"])
    updated = send(cfn, "Update", wider, physical="exportlake/win_info", old=props())
    assert updated["Status"] == "SUCCESS", updated["Reason"]
    assert updated["PhysicalResourceId"] == "exportlake/win_info"
    assert updated["Data"]["UndeclaredColumns"] == "promo_code"
    assert column_names(glue) == [*declared, "campaign_code", "promo_code"]
    assert [k["Name"] for k in table(glue)["PartitionKeys"]] == list(PARTITION_KEYS)
    assert runtime.partitions("win_info") == partitions_before

    # The same properties again (CloudFormation would not even ask): no write, the table's version stays.
    version = table(glue)["VersionId"]
    same = send(cfn, "Update", wider, physical="exportlake/win_info", old=wider)
    assert (same["Status"], same["Data"]["Action"]) == ("SUCCESS", "unchanged")
    assert table(glue)["VersionId"] == version

    # A rollback is an Update back to the old properties: the columns stay (a merge never drops one).
    rolled_back = send(cfn, "Update", props(), physical="exportlake/win_info", old=wider)
    assert rolled_back["Status"] == "SUCCESS"
    assert set(column_names(glue)) == {*declared, "campaign_code", "promo_code"}

    retained = send(cfn, "Delete", props(), physical="exportlake/win_info")
    assert retained["Status"] == "SUCCESS"
    assert column_names(glue)[: len(declared)] == declared  # still there

    destroyed = send(cfn, "Delete", props(removal=RemovalPolicy.DESTROY), physical="exportlake/win_info")
    assert destroyed["Status"] == "SUCCESS"
    assert "win_info" not in runtime.tables()
    again = send(cfn, "Delete", props(removal=RemovalPolicy.DESTROY), physical="exportlake/win_info")
    assert again["Status"] == "SUCCESS", "a missing table is not an error"


def test_create_adopts_a_table_the_runtime_made_first(glue: Any, cfn: CloudFormation) -> None:
    """A type first met at run time (table from its records), declared later: merged into, never replaced."""
    runtime = GlueCatalog(glue, DATABASE, BUCKET)
    runtime.create_table("win_info", ["userid", "extra_field"])
    created = send(cfn, "Create", props())
    assert (created["Status"], created["Data"]["Action"]) == ("SUCCESS", "updated")
    assert column_names(glue) == [*WIN_INFO.columns, "extra_field"]


def test_a_table_renamed_in_place_gets_a_new_id_and_the_old_one_goes_by_its_delete(
    glue: Any, cfn: CloudFormation
) -> None:
    destroy = RemovalPolicy.DESTROY
    send(cfn, "Create", props(removal=destroy))
    renamed = send(
        cfn, "Update", props(table="win_info_v2", removal=destroy), physical="exportlake/win_info", old=props()
    )
    assert renamed["PhysicalResourceId"] == "exportlake/win_info_v2"
    assert {"win_info", "win_info_v2"} <= set(GlueCatalog(glue, DATABASE, BUCKET).tables())
    # CloudFormation's cleanup then deletes the old physical id (with the old properties).
    send(cfn, "Delete", props(removal=destroy), physical="exportlake/win_info")
    assert GlueCatalog(glue, DATABASE, BUCKET).tables() == ["win_info_v2"]


def test_a_conflict_fails_with_its_reason_and_the_rollback_delete_touches_nothing(
    glue: Any, cfn: CloudFormation, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = table_input("win_info", ["userid"], BUCKET)
    odd["PartitionKeys"] = [{"Name": "day", "Type": "string"}]
    glue.create_table(DatabaseName=DATABASE, TableInput=odd)
    failed = send(cfn, "Create", props(removal=RemovalPolicy.DESTROY))
    assert failed["Status"] == "FAILED"
    assert failed["Reason"].startswith("table win_info is partitioned by ['day']")
    assert "log stream 2026/01/01/[$LATEST]abc" in failed["Reason"]
    assert failed["PhysicalResourceId"].startswith("create-failed:")
    rollback = send(cfn, "Delete", props(removal=RemovalPolicy.DESTROY), physical=failed["PhysicalResourceId"])
    assert rollback["Status"] == "SUCCESS"
    assert column_names(glue) == ["userid"]  # not made by this resource: left alone
    assert SIGNATURE not in capsys.readouterr().out + json.dumps(cfn.bodies)


def test_bad_properties_fail_clearly(glue: Any, cfn: CloudFormation) -> None:
    bad = {**props(), "Columns": ["userid", "Drop Table"]}
    failed = send(cfn, "Create", bad)
    assert failed["Status"] == "FAILED"
    assert failed["Reason"].startswith("property Columns holds invalid column names: ['Drop Table']")
    assert GlueCatalog(glue, DATABASE, BUCKET).tables() == []


def test_glue_hanging_gets_a_failed_answer_before_the_lambda_times_out(
    glue: Any, cfn: CloudFormation, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Hanging:
        def ensure_table(self, table: str, columns: Sequence[str], description: str = "") -> TableSync:
            cfn.arrived.wait(5)  # until the watchdog's answer arrived
            return TableSync("created", tuple(columns))

        def drop_table(self, table: str) -> bool:
            raise AssertionError

    monkeypatch.setattr(tables, "table_catalog", lambda database, bucket: Hanging())
    context = Context(remaining_ms=int((tables.WATCHDOG_MARGIN_SECONDS + 0.2) * 1000))
    failed = send(cfn, "Create", props(), context=context)
    assert failed["Status"] == "FAILED"
    assert "Glue did not answer within 0 s; no column was dropped" in failed["Reason"]


def test_the_response_url_must_be_https_unless_loopback() -> None:
    with pytest.raises(ResponseUrlError, match="not https"):
        Reply("http://cloudformation-custom-resource-response.example.com/x")
    with pytest.raises(ResponseUrlError, match="no ResponseURL"):
        Reply(None)
    Reply("https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x")


def test_a_refusal_is_retried_within_its_budget_then_named_with_the_fix(
    glue: Any, cfn: CloudFormation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grant made in the same deploy applies seconds later: AccessDenied is retried (bounded), then explained."""
    real = tables.table_catalog
    refusals = {"left": 2}
    clock = {"now": 0.0}

    def refusing(database: str, bucket: str) -> Any:
        if refusals["left"]:
            refusals["left"] -= 1
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "CreateTable")
        return real(database, bucket)

    monkeypatch.setattr(tables, "table_catalog", refusing)
    monkeypatch.setattr(tables, "_sleep", lambda s: clock.__setitem__("now", clock["now"] + s))
    monkeypatch.setattr(tables, "_clock", lambda: clock["now"])
    created = send(cfn, "Create", props())
    assert created["Status"] == "SUCCESS", created["Reason"]
    assert clock["now"] == 3.0  # paused 1 s, then 2 s

    refusals["left"] = 10_000  # never granted
    clock["now"] = 0.0
    failed = send(cfn, "Create", props(table="coupon_info"))
    assert failed["Status"] == "FAILED"
    assert clock["now"] <= tables.ACCESS_RETRY_SECONDS
    assert failed["Reason"].startswith("Glue refused CreateTable (AccessDeniedException): not authorized; still ")
    assert "lakeFormation=true" in failed["Reason"] and "docs/deploy.md#2-lake-formation" in failed["Reason"]


def test_other_failures_are_not_retried(glue: Any, cfn: CloudFormation, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def throttled(database: str, bucket: str) -> Any:
        calls.append(database)
        raise ClientError({"Error": {"Code": "InternalServiceException", "Message": "try later"}}, "GetTable")

    monkeypatch.setattr(tables, "table_catalog", throttled)
    failed = send(cfn, "Create", props())
    assert calls == ["exportlake"]
    assert failed["Reason"].startswith("Glue refused GetTable (InternalServiceException): try later (log stream")


def test_the_failed_create_marker_is_the_domains() -> None:
    assert cfnresponse.FAILED_CREATE == tableresource.FAILED_CREATE
    assert cfnresponse.MAX_REASON == tableresource.MAX_REASON
