"""``make bench ARGS=--year-two``: what a run costs in year two, beside the merge-base with main, in the same run.

Two measurements, each of the whole ``exportlake sync`` process (the command a user runs; CPU = user + system of
all its threads from ``os.wait4``), worktree and baseline interleaved:

* **No-op run, year two**: the gateway lists 10 exports x 8,760 hourly results (newest first, at most 10 per page,
  the vendor's example page size; ``gatewayMaxRequestsPerSecond`` at its default 20/s) and the ledger holds every
  one as copied and announced, written in the adapter's own item shape (BatchWriteItem: the same items a copy
  leaves), plus each export's state as the first run leaves it (through ``DynamoLedger.save_export_state``; the
  baseline ignores those items). Printed: wall, CPU, gateway requests by endpoint, AWS calls by operation.
* **Backfill**: 1,000 new small results (10 exports x 100, 50-300 records of ``win_info``) on a fresh moto per code
  version: CPU-ms and AWS calls per result.

AWS calls are counted in the child by a botocore ``before-call`` hook (``bench/hook/sitecustomize.py``); gateway
requests by the harness's server, by endpoint. Nothing here asserts anything.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from bench.run import BENCH_DIR, REPO_ROOT, SEED, MotoProcess, _child_env, exportlake_exe, measure, provision_aws

EXPORTS = 10
YEAR = 8_760
PAGE_CAP = 10
BACKFILL_EXPORTS, BACKFILL_PER_EXPORT = 10, 100
HOOK_DIR = REPO_ROOT / "bench" / "hook"
BASE = "/api/1/data-exporter/automated"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _rid(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(25))


class Gateway:
    """Token, export list, results pages (newest first, capped at ``PAGE_CAP``), fetch, files; counts by endpoint."""

    def __init__(self) -> None:
        self.listing: dict[str, list[dict[str, str]]] = {}  # export -> results, newest first
        self.files: dict[str, Path] = {}  # result id -> document
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, body: object, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                outer.count("token")
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._json({"token_type": "Bearer", "expires_in": 3600, "access_token": "bench"})

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                path = parts.path
                if path == BASE:
                    outer.count("exports")
                    self._json(
                        [
                            {"id": str(i), "system_name": name, "last_run": items[0] if items else None}
                            for i, (name, items) in enumerate(sorted(outer.listing.items()))
                        ]
                    )
                elif path.startswith(BASE + "/fetch/"):
                    outer.count("fetch")
                    rid = path.rsplit("/", 1)[-1]
                    self._json({"result": {"id": rid, "download_url": f"{outer.base_url}/files/{rid}"}})
                elif path.startswith(BASE + "/") and path.endswith("/results"):
                    outer.count("results")
                    query = parse_qs(parts.query)
                    page = int(query.get("page", ["1"])[0])
                    size = min(int(query.get("perPage", ["10"])[0]), PAGE_CAP)
                    items = outer.listing.get(unquote(path[len(BASE) + 1 : -len("/results")]), [])
                    self._json({"results": items[(page - 1) * size : page * size], "total": len(items)})
                elif path.startswith("/files/") and path[len("/files/") :] in outer.files:
                    outer.count("download")
                    body = outer.files[path[len("/files/") :]].read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self._json({"error": "not found"}, 404)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def count(self, endpoint: str) -> None:
        with self._lock:
            self.counts[endpoint] += 1

    def __enter__(self) -> Gateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def year_listing(now: datetime) -> dict[str, list[dict[str, str]]]:
    """10 exports x 8,760 hourly results, newest first, expiring two years after creation."""
    rng = random.Random(SEED)
    out: dict[str, list[dict[str, str]]] = {}
    for e in range(EXPORTS):
        items = []
        for h in range(YEAR):
            created = now - timedelta(hours=h + 1, minutes=e)
            expires = _stamp(created + timedelta(days=730))
            items.append({"id": _rid(rng), "created_at": _stamp(created), "expires_at": expires})
        out[f"year-{e:02d}"] = items
    return out


def seed_ledger(clients: Any, table: str, listing: dict[str, list[dict[str, str]]], now: datetime) -> float:
    """Write every result as copied and announced (the adapter's item shape) and each export's state; seconds."""
    from exportlake.adapters.ledger import DynamoLedger
    from exportlake.domain.ports import ExportState

    started = time.perf_counter()
    ddb = clients("dynamodb")
    stamp = _stamp(now)
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        request = {table: batch[:]}
        while request:
            request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        batch.clear()

    for name, items in listing.items():
        for item in items:
            table_name = "win_info"
            batch.append(
                {
                    "PutRequest": {
                        "Item": {
                            "export_name": {"S": name},
                            "result_id": {"S": item["id"]},
                            "state": {"S": "copied"},
                            "created_at": {"S": item["created_at"]},
                            "expires_at": {"S": item["expires_at"]},
                            "updated_at": {"S": stamp},
                            "copied_at": {"S": stamp},
                            "attempts": {"N": "1"},
                            "enqueued": {"BOOL": True},
                            "notified": {"BOOL": True},
                            "rows": {"N": "120"},
                            "bytes": {"N": "17000"},
                            "table": {"S": table_name},
                            "v": {"N": "2"},
                            "starts": {"N": "1"},
                            "location": {
                                "S": f"s3://bench/lake/{table_name}/export_name={name}/result_id={item['id']}/"
                            },
                        }
                    }
                }
            )
            if len(batch) == 25:
                flush()
    if batch:
        flush()
    ledger = DynamoLedger(ddb, table)
    for name, items in listing.items():
        ledger.save_export_state(
            ExportState(
                name,
                newest_id=items[0]["id"],
                newest_created=items[0]["created_at"],
                total=len(items),
                order="newest_first",
                page_size=PAGE_CAP,
                recon_at=stamp,
            )
        )
    return time.perf_counter() - started


def counted_sync(env: dict[str, str], pythonpath: str) -> dict[str, Any]:
    """One ``exportlake sync`` child with the AWS-call hook; wall, CPU, calls by operation, its summary line."""
    with tempfile.NamedTemporaryFile(prefix="bench-calls-", suffix=".json", delete=False) as f:
        calls_file = f.name
    child = _child_env(env)
    child["PYTHONPATH"] = os.pathsep.join([str(HOOK_DIR), pythonpath])
    child["EXPORTLAKE_BENCH_AWS_CALLS"] = calls_file
    m = measure([exportlake_exe(), "sync"], child)
    calls = json.loads(Path(calls_file).read_text() or "{}")
    os.unlink(calls_file)
    return {
        "wall_s": m.wall_s,
        "cpu_s": m.cpu_s,
        "rss_mb": m.rss_mb,
        "aws_calls": calls,
        "stdout": m.stdout.strip().splitlines()[:3],
    }


def _env(moto: MotoProcess, gw: Gateway) -> dict[str, str]:
    from exportlake.emulator.provision import LOCAL_ACCOUNT, LOCAL_REGION, demo_env

    return demo_env(moto.endpoint, gw.base_url, LOCAL_REGION, LOCAL_ACCOUNT)


def no_op(versions: list[tuple[str, str]]) -> dict[str, Any]:
    """The year-two no-op run of each version (label, PYTHONPATH) on one seeded moto."""
    now = datetime.now(UTC)
    out: dict[str, Any] = {"exports": EXPORTS, "results": EXPORTS * YEAR, "runs": {}}
    with Gateway() as gw, MotoProcess() as moto:
        env = _env(moto, gw)
        clients = provision_aws(env)
        gw.listing = year_listing(now)
        out["seed_s"] = seed_ledger(clients, env["EXPORTLAKE_LEDGER_TABLE"], gw.listing, now)
        print(f"  year two: ledger seeded with {EXPORTS * YEAR:,} copied results in {out['seed_s']:.0f} s", flush=True)
        for label_, path in versions:
            gw.counts.clear()
            run = counted_sync(env, path)
            run["gateway_requests"] = dict(gw.counts)
            out["runs"][label_] = run
            requests, calls = sum(gw.counts.values()), sum(run["aws_calls"].values())
            print(
                f"  year two no-op, {label_}: {run['wall_s']:.1f} s wall, {run['cpu_s']:.2f} CPU-s,"
                f" {requests} gateway requests, {calls} AWS calls",
                flush=True,
            )
    return out


def _documents() -> list[Path]:
    from bench.realdata import write_document

    BENCH_DIR.mkdir(exist_ok=True)
    docs = []
    for n in (50, 100, 150, 200, 250, 300):
        path = BENCH_DIR / f"win_info-{n}-backfill.json"
        if not path.exists():
            write_document(path, "win_info", n, SEED + n)
        docs.append(path)
    return docs


def backfill(versions: list[tuple[str, str]]) -> dict[str, Any]:
    """1,000 new small results, copied by one sync of each version on a fresh moto; per-result figures."""
    docs = _documents()
    total = BACKFILL_EXPORTS * BACKFILL_PER_EXPORT
    out: dict[str, Any] = {"results": total, "runs": {}}
    for label_, path in versions:
        rng = random.Random(SEED)
        now = datetime.now(UTC)
        with Gateway() as gw, MotoProcess() as moto:
            env = _env(moto, gw)
            provision_aws(env)
            for e in range(BACKFILL_EXPORTS):
                items = []
                for h in range(BACKFILL_PER_EXPORT):
                    rid, created = _rid(rng), now - timedelta(hours=h + 1, minutes=e)
                    gw.files[rid] = rng.choice(docs)
                    items.append(
                        {"id": rid, "created_at": _stamp(created), "expires_at": _stamp(created + timedelta(days=90))}
                    )
                gw.listing[f"backfill-{e:02d}"] = items
            run = counted_sync(env, path)
            run["gateway_requests"] = dict(gw.counts)
            calls = sum(run["aws_calls"].values())
            run["cpu_ms_per_result"] = run["cpu_s"] * 1000 / total
            run["aws_calls_per_result"] = calls / total
            out["runs"][label_] = run
            print(
                f"  backfill {total:,}, {label_}: {run['cpu_ms_per_result']:.1f} CPU-ms and"
                f" {run['aws_calls_per_result']:.1f} AWS calls per result ({run['wall_s']:.0f} s wall)",
                flush=True,
            )
    return out


def _by_service(calls: dict[str, int], per: float = 1.0) -> str:
    services: Counter[str] = Counter()
    for op, n in calls.items():
        services[op.split(".", 1)[0]] += n
    return ", ".join(f"{s} {n / per:.1f}" if per != 1 else f"{s} {n}" for s, n in services.most_common())


def report(result: dict[str, Any]) -> None:
    """Print the year-two tables (worktree first, the baseline beside it)."""
    noop, fill = result.get("no_op"), result.get("backfill")
    if noop:
        size = f"{noop['exports']} exports x {YEAR:,} results, {PAGE_CAP} per page"
        print(f"\nYear two, a sync with nothing new ({size}):")
        print("| code | wall s | CPU s | gateway requests (by endpoint) | AWS calls (by operation) |")
        print("|---|---:|---:|---|---|")
        for label_, run in noop["runs"].items():
            gw = run["gateway_requests"]
            ops = ", ".join(f"{k} {v}" for k, v in sorted(run["aws_calls"].items(), key=lambda kv: -kv[1]))
            endpoints = ", ".join(f"{k} {v}" for k, v in sorted(gw.items()))
            calls = sum(run["aws_calls"].values())
            print(
                f"| {label_} | {run['wall_s']:.1f} | {run['cpu_s']:.2f} | {sum(gw.values())} ({endpoints}) "
                f"| {calls} ({ops}) |"
            )
    if fill:
        print(f"\nBackfill of {fill['results']:,} small results (50-300 records), one sync on a fresh moto:")
        print("| code | CPU-ms per result | AWS calls per result (by service) | wall s |")
        print("|---|---:|---|---:|")
        for label_, run in fill["runs"].items():
            per = fill["results"]
            print(
                f"| {label_} | {run['cpu_ms_per_result']:.1f} | {run['aws_calls_per_result']:.1f} "
                f"({_by_service(run['aws_calls'], per)}) | {run['wall_s']:.0f} |"
            )
            ops = ", ".join(f"{k} {v / per:.2f}" for k, v in sorted(run["aws_calls"].items(), key=lambda kv: -kv[1]))
            print(f"|   | | {ops} | |")


def run(against: tuple[str, Path] | None, *, no_op_run: bool = True, backfill_run: bool = True) -> dict[str, Any]:
    """Both measurements for the worktree and (when given) the baseline; the dict written to results.json."""
    here = os.pathsep.join([str(REPO_ROOT / "functions"), str(REPO_ROOT)])
    versions = [("worktree", here)]
    if against is not None:
        versions.append((f"@{against[0]}", str(against[1])))
    result: dict[str, Any] = {}
    if backfill_run:
        result["backfill"] = backfill(versions)
    if no_op_run:
        result["no_op"] = no_op(versions)
    return result
