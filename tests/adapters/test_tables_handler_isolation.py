"""The tables function as Lambda runs it: in a process that holds only the runtime's standard library and boto3.

A child interpreter blocks every other distribution and the parts of exportlake the tables function must never load
(the composition root, Powertools, the copier's converters, the CLI) with a ``sys.meta_path`` finder, imports the
handler and answers CloudFormation's requests against a moto server, at a loopback ResponseURL. The same child, with
the domain's code made unloadable, still answers: FAILED for a Create, SUCCESS (table left in place) for a Delete,
so a stack can always roll back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from exportlake.adapters.catalog import declared_fingerprint
from exportlake.domain.schemas import EXPORT_TYPES
from exportlake.domain.tableresource import RemovalPolicy, TableDeclaration
from exportlake.emulator.provision import MotoServer

pytestmark = pytest.mark.slow

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
#: What Lambda's Python runtime brings besides the standard library: boto3 and its own dependencies.
#: (certifi: botocore takes its CA bundle when installed; the interpreter's own __main__ entries are not modules.)
RUNTIME_DISTRIBUTIONS = {"boto3", "botocore", "urllib3", "jmespath", "dateutil", "s3transfer", "six", "certifi"}
RUNTIME_DISTRIBUTIONS |= {"__main__", "__mp_main__"}
#: The parts of exportlake the tables function may load.
ALLOWED_OWN = {
    "exportlake",
    "exportlake.adapters",
    "exportlake.adapters.cfnresponse",
    "exportlake.adapters.catalog",
    # The upgrade's latest-result pointer backfill reads manifests and writes pointers through the lake store (its
    # module imports the multipart sink: stdlib and botocore only, both within the runtime's dependencies).
    "exportlake.adapters.lakestore",
    "exportlake.adapters.s3sink",
    "exportlake.handlers",
    "exportlake.handlers.tables",
}

CHILD = r"""
import importlib.abc, json, sys

BLOCKED = tuple(json.loads(sys.argv[1]))
RUNTIME = set(json.loads(sys.argv[2]))


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ModuleNotFoundError(f"No module named {name!r} (not in the Lambda runtime)")
        return None


sys.meta_path.insert(0, Blocker())
from exportlake.handlers import tables


class Context:
    log_stream_name = "2026/12/06/[$LATEST]child"

    def get_remaining_time_in_millis(self):
        return 120_000


for event in json.loads(sys.stdin.read()):
    tables.handler(event, Context())
top = {m.split(".")[0] for m in sys.modules}
foreign = sorted(t for t in top if t not in sys.stdlib_module_names and t not in RUNTIME and t != "exportlake")
own = sorted(m for m in sys.modules if m == "exportlake" or m.startswith("exportlake."))
print("MODULES " + json.dumps({"foreign": foreign, "own": own}))
"""

#: Never in the tables function: other distributions, and exportlake's parts for the other functions and the CLI.
BLOCKED = [
    "requests",
    "pyarrow",
    "msgspec",
    "isal",
    "ijson",
    "aws_lambda_powertools",
    "aws_xray_sdk",
    "duckdb",
    "rich",
    "moto",
    "exportlake.bootstrap",
    "exportlake.settings",
    "exportlake.handlers.common",
    "exportlake.handlers.copier",
    "exportlake.handlers.planner",
    "exportlake.adapters.gateway",
    "exportlake.adapters.ledger",
    "exportlake.convert",
    "exportlake.cli",
    "exportlake.emulator",
    "exportlake.query",
    "exportlake.runner",
]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with MotoServer() as moto:
        glue = boto3.client(
            "glue",
            endpoint_url=moto.endpoint,
            region_name="eu-west-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        glue.create_database(DatabaseInput={"Name": "exportlake"})
        yield moto.endpoint


@pytest.fixture
def answers() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/response?X-Amz-Signature=abc", bodies
    server.shutdown()
    server.server_close()


def event(url: str, kind: str, physical: str | None = None) -> dict[str, Any]:
    win = EXPORT_TYPES["win_info"]
    declaration = TableDeclaration(
        "exportlake",
        "win_info",
        "exportlake-lake",
        win.columns,
        win.description,
        declared_fingerprint("win_info", win.columns, win.description),
        RemovalPolicy.DESTROY,
    )
    out: dict[str, Any] = {
        "RequestType": kind,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:eu-west-1:123456789012:stack/ExportLake/guid",
        "RequestId": f"req-{kind}",
        "ResourceType": "Custom::ExportlakeTable",
        "LogicalResourceId": "CatalogRawTablewininfo",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:x", **declaration.properties()},
    }
    if physical:
        out["PhysicalResourceId"] = physical
    return out


def run_child(endpoint: str, events: list[dict[str, Any]], blocked: list[str]) -> dict[str, list[str]]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(FUNCTIONS),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    done = subprocess.run(  # noqa: S603 - this interpreter on our own script
        [sys.executable, "-c", CHILD, json.dumps(blocked), json.dumps(sorted(RUNTIME_DISTRIBUTIONS))],
        input=json.dumps(events),
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("MODULES ")]
    modules: dict[str, list[str]] = json.loads(line.removeprefix("MODULES "))
    return modules


def test_the_handler_runs_with_only_the_runtimes_dependencies(
    moto_endpoint: str, answers: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = answers
    modules = run_child(
        moto_endpoint,
        [event(url, "Create"), event(url, "Delete", physical="exportlake/win_info")],
        BLOCKED,
    )
    assert [b["Status"] for b in bodies] == ["SUCCESS", "SUCCESS"], bodies
    assert bodies[0]["PhysicalResourceId"] == "exportlake/win_info"
    assert modules["foreign"] == [], modules["foreign"]
    own = set(modules["own"])
    assert {m for m in own if not m.startswith("exportlake.domain")} <= ALLOWED_OWN
    assert "exportlake.handlers.tables" in own


@pytest.mark.parametrize("unloadable", ["exportlake.domain.tableresource", "exportlake.adapters.catalog", "boto3"])
def test_code_that_cannot_load_still_gets_its_answer(
    moto_endpoint: str, answers: tuple[str, list[dict[str, Any]]], unloadable: str
) -> None:
    url, bodies = answers
    run_child(
        moto_endpoint,
        [event(url, "Create"), event(url, "Delete", physical="exportlake/win_info")],
        [*BLOCKED, unloadable],
    )
    created, deleted = bodies
    assert created["Status"] == "FAILED"
    assert created["Reason"].startswith("the table function's code failed to load (No module named ")
    assert unloadable in created["Reason"] and "log stream 2026/12/06/[$LATEST]child" in created["Reason"]
    assert created["PhysicalResourceId"].startswith("create-failed:")
    # The rollback's Delete (or any Delete) is answered SUCCESS, leaving the table: never ROLLBACK_FAILED.
    assert deleted["Status"] == "SUCCESS"
    assert deleted["PhysicalResourceId"] == "exportlake/win_info"
    assert "left the table exportlake/win_info in place" in deleted["Reason"]
