"""Crash consistency, proven by killing processes: ``exportlake sync`` SIGKILLed at seeded random moments.

Each round starts the real CLI as a subprocess in its own process group against a moto server and the gateway
simulator, kills the whole group with SIGKILL at a random point (planning, download, upload, registration,
between ledger and publish: wherever it happens to be), and adds new results before the next round. Then one
clean sync must copy everything and exit 0, and a second must change nothing. Every point of docs/design.md's
crash contract is asserted on the lake, the catalog, the ledger, the open uploads and the notifications.

``make test`` runs a few rounds; ``make soak`` runs many on larger results (``EXPORTLAKE_SOAK_ROUNDS``,
``EXPORTLAKE_SOAK_RECORDS``, ``EXPORTLAKE_SOAK_SEED``) and prints its figures.
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from exportlake.emulator.provision import LOCAL_REGION, MotoServer
from exportlake.emulator.server import GatewaySimulator
from tests.e2e.conftest import local_env

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("EXPORTLAKE_SOAK_ROUNDS", "3"))
RECORDS = int(os.environ.get("EXPORTLAKE_SOAK_RECORDS", "12000"))
SEED = int(os.environ.get("EXPORTLAKE_SOAK_SEED", "9"))


class Env:
    """The moto server, the simulator, boto3 clients on them and the CLI's environment."""

    def __init__(self, moto: MotoServer, sim: GatewaySimulator, env: dict[str, str]) -> None:
        self.moto, self.sim, self.env = moto, sim, env

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.moto.endpoint, region_name=LOCAL_REGION)

    def start_sync(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "exportlake.cli", "sync"],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: killing the group stops all of it
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own command
            [sys.executable, "-m", "exportlake.cli", *args],
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with (
        MotoServer() as moto,
        GatewaySimulator(seed=SEED, results_per_export=1, records=(RECORDS // 4, RECORDS), max_per_page=3) as sim,
    ):
        env = local_env(moto, sim, tmp_path)
        env["EXPORTLAKE_LEASE_SECONDS"] = "5"
        e = Env(moto, sim, env)
        assert e.run("provision").returncode == 0
        yield e


def subscribe(env: Env) -> str:
    """An SQS queue subscribed to the topic: every notification, for the assertions."""
    sqs, sns = env.client("sqs"), env.client("sns")
    url = sqs.create_queue(QueueName="crash-capture")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=env.env["EXPORTLAKE_TOPIC_ARN"], Protocol="sqs", Endpoint=arn)
    return url


def notices(env: Env, url: str, seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sqs = env.client("sqs")
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in got:
            seen.append(json.loads(json.loads(m["Body"])["Message"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return seen


def lake_state(env: Env) -> dict[str, Any]:
    """Everything a re-run must not touch: objects (ETag, time) and partitions."""
    s3, glue = env.client("s3"), env.client("glue")
    bucket, db = env.env["EXPORTLAKE_BUCKET"], env.env["EXPORTLAKE_GLUE_DATABASE"]
    objects = {
        o["Key"]: (o["ETag"], o["LastModified"].isoformat())
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    }
    partitions = {}
    for t in glue.get_tables(DatabaseName=db)["TableList"]:
        if t.get("TableType") != "EXTERNAL_TABLE":
            continue
        for p in glue.get_partitions(DatabaseName=db, TableName=t["Name"])["Partitions"]:
            partitions[(t["Name"], tuple(p["Values"]))] = p["StorageDescriptor"]["Location"]
    tables = {
        t["Name"]: [c["Name"] for c in t["StorageDescriptor"]["Columns"]]
        for t in glue.get_tables(DatabaseName=db)["TableList"]
    }
    return {"objects": objects, "partitions": partitions, "tables": tables}


def assert_lake_exact(env: Env, copied_notices: Counter[str]) -> None:
    """Contract points 1-4 and 6 on the lake after the clean sync."""
    s3 = env.client("s3")
    bucket = env.env["EXPORTLAKE_BUCKET"]
    state = lake_state(env)
    expected = {
        r["id"]: env.sim.result_info(r["id"])
        for e in env.sim.exports()
        if e["last_run"] is not None
        for r in env.sim.results(e["system_name"])
    }
    ledger = {
        item["result_id"]["S"]: item
        for item in env.client("dynamodb").scan(TableName=env.env["EXPORTLAKE_LEDGER_TABLE"])["Items"]
        if "state" in item
    }
    by_result = Counter(values[2] for (_, values) in state["partitions"])
    manifests_parts: set[str] = set()
    for rid, info in expected.items():
        entry = ledger.get(rid)
        assert entry is not None and entry["state"]["S"] == "copied", (rid, entry)  # convergence
        assert entry.get("notified", {}).get("BOOL") is True, rid
        assert by_result[rid] == 1, rid  # exactly once, in one partition
        manifest = json.loads(
            s3.get_object(Bucket=bucket, Key=f"manifests/{info.export.system_name}/{rid}.json")["Body"].read()
        )
        rows = 0
        for part in manifest["parts"]:
            manifests_parts.add(part["key"])
            body = s3.get_object(Bucket=bucket, Key=part["key"])["Body"].read()
            rows += pq.read_table(io.BytesIO(body)).num_rows  # every object is a whole Parquet file
        assert rows == info.n_records == manifest["rows"], rid
        assert copied_notices[rid] >= 1, rid  # at least once
    lake_keys = {k for k in state["objects"] if k.startswith("lake/")}
    assert lake_keys == manifests_parts  # nothing temporary, partial or orphaned beside a partition
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # no leftovers


def test_sync_killed_at_random_converges_exactly(env: Env) -> None:
    rng = random.Random(SEED)
    capture = subscribe(env)
    seen: list[dict[str, Any]] = []
    exports = [e["system_name"] for e in env.sim.exports() if e["last_run"] is not None]
    kills = 0
    started = time.monotonic()
    for _ in range(ROUNDS):
        proc = env.start_sync()
        delay = rng.uniform(0.8, 6.0)  # start-up is ~1-2 s: planning, downloads, uploads, registration follow
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
        # New results appear between runs.
        for name in rng.sample(exports, 2):
            env.sim.add_result(name, n_records=rng.randrange(RECORDS // 4, RECORDS))
    left = Counter(
        item["state"]["S"]
        for item in env.client("dynamodb").scan(TableName=env.env["EXPORTLAKE_LEDGER_TABLE"])["Items"]
        if "state" in item
    )
    uploads = len(env.client("s3").list_multipart_uploads(Bucket=env.env["EXPORTLAKE_BUCKET"]).get("Uploads", []))
    clean = env.run("sync")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    copied = Counter(n["result_id"] for n in notices(env, capture, seen) if n["event_type"] == "result.copied")
    assert_lake_exact(env, copied)

    before = lake_state(env)
    again = env.run("sync")
    assert again.returncode == 0, again.stdout + again.stderr
    assert lake_state(env) == before  # idempotent: no object or partition written, deleted or rewritten
    after = Counter(n["result_id"] for n in notices(env, capture, seen) if n["event_type"] == "result.copied")
    assert after == copied  # a crash-free run repeats no notice
    print(
        f"\ncrash soak: {ROUNDS} rounds, {kills} kills, {len(copied)} results, "
        f"{sum(copied.values()) - len(copied)} repeated notices, {time.monotonic() - started:.0f} s; "
        f"left by the kills: ledger {dict(left)}, {uploads} open uploads"
    )


def test_two_syncs_at_the_same_moment_copy_each_result_once(env: Env) -> None:
    capture = subscribe(env)
    for name in [e["system_name"] for e in env.sim.exports() if e["last_run"] is not None][:3]:
        env.sim.add_result(name, n_records=RECORDS)
    first, second = env.start_sync(), env.start_sync()
    codes = {first.wait(timeout=600), second.wait(timeout=600)}
    assert codes == {0}, codes  # both finish: the later one waits for or skips what the other holds
    copied = Counter(n["result_id"] for n in notices(env, capture, []) if n["event_type"] == "result.copied")
    assert_lake_exact(env, copied)
    assert set(copied.values()) == {1}  # no crash, so no repeat: exactly one notice per result
