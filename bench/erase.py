"""``make bench``: erase one person from a lake of 1,000 results (moto server + simulator, the CLI in a subprocess).

Lands 10 exports x 100 results of 50-300 records with ``exportlake sync``, picks the user whose results number
closest to 50, and times ``exportlake erase --user-id`` as a whole process: wall and CPU seconds, results touched
(read from its JSON report) and object versions deleted. A measurement, never a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq

from exportlake.emulator.provision import LOCAL_ACCOUNT, LOCAL_REGION, MotoServer, demo_env
from exportlake.emulator.server import GatewaySimulator

ROOT = Path(__file__).resolve().parents[1]


def _run(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run the CLI; (process, wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "exportlake.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done, wall, cpu


def _users_by_results(s3: Any, bucket: str) -> Counter[str]:
    """userid → the number of results holding it (read from every current Parquet part)."""
    seen: set[tuple[str, str]] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="lake/"):
        for obj in page.get("Contents", []):
            table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
            if "userid" in table.column_names:
                result = obj["Key"].split("result_id=", 1)[1].split("/", 1)[0]
                seen |= {(u, result) for u in table["userid"].to_pylist() if u}
    return Counter(u for u, _ in seen)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results-per-export", type=int, default=100)
    p.add_argument("--target", type=int, default=50, help="results the erased person should appear in")
    args = p.parse_args(argv)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # moto's: never real credentials
        os.environ[key] = "testing"
    with (
        MotoServer() as moto,
        GatewaySimulator(
            seed=190, results_per_export=args.results_per_export, records=(50, 300), max_per_page=50
        ) as sim,
    ):
        env = demo_env(moto.endpoint, sim.url, LOCAL_REGION, LOCAL_ACCOUNT)
        env["EXPORTLAKE_CACHE_DIR"] = str(ROOT / ".bench" / "erase-cache")
        boto3.client("secretsmanager", endpoint_url=moto.endpoint, region_name=LOCAL_REGION).create_secret(
            Name=env["EXPORTLAKE_SECRET_ID"],
            SecretString=json.dumps({"client_id": sim.client_id, "client_secret": sim.client_secret}),
        )
        _run(env, "provision")
        synced, sync_wall, sync_cpu = _run(env, "sync")
        if synced.returncode != 0:
            print(synced.stdout + synced.stderr)
            return 1
        s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name=LOCAL_REGION)
        counts = _users_by_results(s3, env["EXPORTLAKE_BUCKET"])
        ranked = sorted(counts.items(), key=lambda kv: (abs(kv[1] - args.target), kv[0]))
        total = args.results_per_export * len(sim.exports())
        print(f"lake: {total} results landed by exportlake sync in {sync_wall:.1f} s wall, {sync_cpu:.1f} CPU-s")
        # The first request meets results without an index (copies do not index): it reads their id columns once
        # and writes their indexes; the next request, for another person, reads the indexes only.
        for label, (person, holding) in (("first request (builds the indexes)", ranked[0]), ("next person", ranked[1])):
            done, wall, cpu = _run(env, "erase", "--user-id", person, "--json")
            if done.returncode != 0:
                print(done.stdout + done.stderr)
                return 1
            report = json.loads(done.stdout)
            print(
                f"erase, {label}: one person in {holding} of {total} results -> {len(report['results'])} results "
                f"rewritten, {sum(report['rows_removed'].values())} rows removed, {report['objects_deleted']} objects "
                f"and {report['versions_deleted']} object versions deleted, in {wall:.1f} s wall, {cpu:.1f} CPU-s "
                "(target <= 60 s)"
            )
        again, wall2, _ = _run(env, "erase", "--user-id", ranked[1][0], "--json")
        print(f"the same request again: {wall2:.1f} s wall, exit {again.returncode} (changes nothing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
