"""Operating exportlake as a user does: one-line errors, doctor, backfill, progress, summary, status, verify.

One moto server and one simulator for the module (each test leaves the others' premises alone: only the last,
the scenario, copies anything).
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from exportlake.cli.main import build_parser
from exportlake.emulator.provision import LOCAL_ACCOUNT, LOCAL_REGION, MotoServer, demo_env
from exportlake.emulator.server import GatewaySimulator
from tests.e2e.conftest import ROOT, Stack


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    cache = tmp_path_factory.mktemp("cache")
    with MotoServer() as moto, GatewaySimulator(seed=5, records=(5, 12), results_per_export=1) as sim:
        env = demo_env(moto.endpoint, sim.url, LOCAL_REGION, LOCAL_ACCOUNT)
        env["EXPORTLAKE_CACHE_DIR"] = str(cache)
        secrets = boto3.client(
            "secretsmanager",
            endpoint_url=moto.endpoint,
            region_name=LOCAL_REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        good = {"client_id": sim.client_id, "client_secret": sim.client_secret}
        secrets.create_secret(Name=env["EXPORTLAKE_SECRET_ID"], SecretString=json.dumps(good))
        secrets.create_secret(Name="wrong", SecretString=json.dumps({**good, "client_secret": "not-it"}))
        secrets.create_secret(Name="placeholder", SecretString=json.dumps({**good, "client_id": "REPLACE_ME"}))
        secrets.create_secret(Name="not-json", SecretString="client_id=x")
        stack = Stack(moto, sim, env)
        done = stack.run("provision")
        assert done.returncode == 0, done.stderr
        yield stack


def one_line_error(done: subprocess.CompletedProcess[str], code: int) -> str:
    """The single stderr line of a failed command (and nothing like a traceback)."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_every_error_is_one_line_with_its_fix_and_exit_code(ops: Stack) -> None:
    no_region = {"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}
    cases: list[tuple[tuple[str, ...], dict[str, str], int, tuple[str, ...]]] = [
        (("sync",), {"EXPORTLAKE_BUCKET": "never-provisioned"}, 2, ("never-provisioned", "exportlake provision")),
        (("sync",), {"EXPORTLAKE_LEDGER_TABLE": "no-such-ledger"}, 2, ("no-such-ledger", "exportlake provision")),
        (("sync",), no_region, 2, ("AWS_DEFAULT_REGION",)),
        (("status",), no_region, 2, ("AWS_DEFAULT_REGION",)),
        (("sync",), {"EXPORTLAKE_SECRET_ID": "no/such/secret"}, 2, ("no/such/secret", "create-secret")),
        (("sync",), {"EXPORTLAKE_SECRET_ID": "placeholder"}, 2, ("placeholder", "REPLACE_ME", "put-secret-value")),
        (("sync",), {"EXPORTLAKE_SECRET_ID": "not-json"}, 2, ("not a JSON object",)),
        (("sync",), {"EXPORTLAKE_BUCKET": "Not_A_Bucket"}, 2, ("EXPORTLAKE_BUCKET",)),
        (("provision",), {"AWS_ENDPOINT_URL": ""}, 2, ("real AWS", "--real-aws")),
        (("query", "SELEC * FROM win_info"), {}, 2, ("query failed", "SELEC")),
        (("query", ""), {}, 2, ("SQL is empty",)),
        (("sync", "--since", "yesterday"), {}, 2, ("--since",)),
        (("status", "--bogus"), {}, 2, ("--bogus", "--help")),
        (("nonsense",), {}, 2, ("nonsense",)),
    ]
    for args, extra, code, words in cases:
        line = one_line_error(ops.run(*args, extra_env=extra), code)
        assert line.startswith("exportlake"), line
        for word in words:
            assert word in line, (args, line)
        assert ops.sim.client_secret not in line
    # -v gives the traceback, before or after the sub-command.
    for args in (("-v", "sync"), ("sync", "-v")):
        verbose = ops.run(*args, extra_env={"EXPORTLAKE_LEDGER_TABLE": "no-such-ledger"})
        assert verbose.returncode == 2 and "Traceback" in verbose.stderr


def test_version_and_help_with_an_example_on_every_command(ops: Stack) -> None:
    version = ops.run("--version")
    assert version.returncode == 0 and version.stdout.startswith("exportlake ")
    sim = ops.run("simulator", "--help")  # the simulator's own options reach it (--port, --download-port)
    assert sim.returncode == 0 and "--download-port" in sim.stdout
    # Every sub-command's help, in-process (argparse prints it and exits 0): an example that names the command.
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        if name == "simulator":
            continue
        text = command.format_help()
        assert "example:" in text and f"exportlake {name}" in text.split("example:")[1], name


def doctor(ops: Stack, **extra: str) -> list[dict[str, Any]]:
    done = ops.run("doctor", "--json", extra_env=extra)
    report = json.loads(done.stdout)
    assert done.returncode == (0 if report["ok"] else 1)
    checks: list[dict[str, Any]] = report["checks"]
    return checks


def test_doctor_pinpoints_each_broken_link_in_turn(ops: Stack) -> None:
    healthy = doctor(ops)
    assert [c["name"] for c in healthy] == [
        "settings",
        "aws",
        "bootstrap",
        "stack",
        "lake formation",
        "secret",
        "secret key",
        "token",
        "exports",
        "newest results",
        "download url",
        "allowlist",
        "resources",
        "reconcile",
        "expiry",
        "alarms",
    ]
    assert all(c["ok"] for c in healthy)
    reconcile = next(c for c in healthy if c["name"] == "reconcile")
    assert reconcile["detail"].startswith("full pass every 24 h (reconcileHours)")
    assert "local endpoint" in healthy[1]["detail"]
    broken = [
        ({"EXPORTLAKE_QUEUE_URL": ""}, "settings", "EXPORTLAKE_QUEUE_URL"),
        ({"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}, "aws", "AWS_DEFAULT_REGION"),
        ({"EXPORTLAKE_SECRET_ID": "no/such/secret"}, "secret", "create-secret"),
        ({"EXPORTLAKE_SECRET_ID": "placeholder"}, "secret", "put-secret-value"),
        ({"EXPORTLAKE_SECRET_ID": "wrong"}, "token", "client credentials"),
        ({"EXPORTLAKE_DOWNLOAD_HOSTS": "*.digitaloceanspaces.com"}, "allowlist", "EXPORTLAKE_DOWNLOAD_HOSTS=127.0.0.1"),
        ({"EXPORTLAKE_TOPIC_ARN": f"arn:aws:sns:{LOCAL_REGION}:{LOCAL_ACCOUNT}:nope"}, "resources", "provision"),
    ]
    for extra, name, fix in broken:
        checks = doctor(ops, **extra)
        assert [c["ok"] for c in checks[:-1]] == [True] * (len(checks) - 1), checks
        assert checks[-1]["name"] == name and not checks[-1]["ok"], checks[-1]
        assert fix in checks[-1]["detail"] + checks[-1]["fix"], checks[-1]
    text = ops.run("doctor", extra_env={"EXPORTLAKE_SECRET_ID": "placeholder"})
    assert text.returncode == 1
    assert text.stdout.splitlines()[-1].startswith("FAIL secret") and "REPLACE_ME" in text.stdout


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_in_pty(ops: Stack, *args: str) -> tuple[int, str]:
    """Run ``exportlake ARGS`` with its stdout on a pseudo-terminal; (exit code, everything it printed)."""
    master, slave = pty.openpty()
    env = {**os.environ, **ops.env, "COLUMNS": "160", "TERM": "xterm"}
    proc = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "exportlake.cli", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=300), b"".join(chunks).decode("utf-8", "replace")


def ledger_states(ops: Stack) -> dict[tuple[str, str], str]:
    ddb: Any = ops.client("dynamodb")
    items = ddb.scan(TableName=ops.env["EXPORTLAKE_LEDGER_TABLE"])["Items"]
    # Items under "#expiring#…" are the once-markers of result.expiring, not results.
    return {(i["export_name"]["S"], i["result_id"]["S"]): i["state"]["S"] for i in items if "state" in i}


def test_backfill_progress_summary_retry_expiring_status_and_verify(ops: Stack) -> None:
    sqs: Any = ops.client("sqs")
    sns: Any = ops.client("sns")
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=ops.env["EXPORTLAKE_TOPIC_ARN"], Protocol="sqs", Endpoint=inbox_arn)
    now = datetime.now(UTC)
    # --since the newest of the simulator's own win-info results: that one and the one added now are selected;
    # an older one, added here, is not.
    since = max(datetime.fromisoformat(r["created_at"]) for r in ops.sim.results("win-info"))
    older = ops.sim.add_result("win-info", n_records=3, created_at=since - timedelta(days=3))
    # A long result (10,000 records, ~1.5 MB, served at 1 MB/s): the display shows its own rows and bytes.
    soon_win = ops.sim.add_result("win-info", n_records=10_000, created_at=now, expires_at=now + timedelta(hours=5))
    ops.sim.faults.inject("throttled", target="download", path_prefix=f"/automated-exports/win-info/{soon_win}")
    soon_coupon = ops.sim.add_result("all-coupons", n_records=4, created_at=now, expires_at=now + timedelta(hours=3))
    selected = {r["id"] for r in ops.sim.results("win-info") if datetime.fromisoformat(r["created_at"]) >= since}
    assert soon_win in selected and older not in selected and len(selected) == 2

    # Dry run: names exactly the selected results and writes nothing.
    dry = ops.run("sync", "--export", "win-info", "--since", since.isoformat(), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert {w["result_id"] for w in json.loads(dry.stdout)["would_copy"]} == selected
    assert ledger_states(ops) == {}

    # The backfill on a terminal: a progress display, and exactly the selected results copied.
    code, screen = run_in_pty(ops, "sync", "--export", "win-info", "--since", since.isoformat())
    assert code == 0, screen
    assert "results ·" in screen and "rows" in screen and "ETA" in screen
    # ... and, while the long result streams, its rows so far, bytes of its declared size, bytes/s and an ETA.
    text = ANSI.sub("", screen)
    moving = re.findall(
        rf"win-info {soon_win} .*?([\d,]+) rows · ([\d.]+)/([\d.]+) MB · [\d.]+ [kM]B/s · ETA \d:\d\d:\d\d", text
    )
    assert moving, text[-3000:]
    rows_shown = {int(r.replace(",", "")) for r, _, _ in moving}
    assert any(0 < n < 10_000 for n in rows_shown), rows_shown  # seen mid-way, not only at the end
    assert {total for _, _, total in moving} == {f"{len(ops.sim.document_bytes(soon_win)) / 1e6:.1f}"}
    assert ledger_states(ops) == {("win-info", rid): "copied" for rid in selected}

    # Every other result fails (refused host): the summary names them and says how to retry; no progress in a pipe.
    refused = {"EXPORTLAKE_DOWNLOAD_HOSTS": "*.digitaloceanspaces.com"}
    failing = ops.run("sync", extra_env=refused)
    assert failing.returncode == 1
    assert "results ·" not in failing.stdout and "ETA" not in failing.stdout
    failed_lines = [line for line in failing.stdout.splitlines() if line.startswith("failed:")]
    total = sum(len(ops.sim.results(e["system_name"])) for e in ops.sim.exports())
    assert len(failed_lines) == total - len(selected)
    assert "exportlake sync --retry-failed" in failing.stdout
    # status names the next expiry among what is not copied yet.
    waiting = {r["export"]: r for r in json.loads(ops.run("--json", "status").stdout)}["all-coupons"]  # before or after
    assert waiting["next_expiry_result"] == soon_coupon and waiting["states"]["failed"] == 2
    assert datetime.fromisoformat(waiting["next_expiry"]) == datetime.fromisoformat(
        next(r["expires_at"] for r in ops.sim.results("all-coupons") if r["id"] == soon_coupon)
    )
    # The cause fixed, a plain sync copies only what is new (a long result: in a pipe, no progress display) and
    # does not pretend all is well.
    late = ops.sim.add_result("win-info", n_records=5_000)
    ops.sim.faults.inject("throttled", target="download", path_prefix=f"/automated-exports/win-info/{late}")
    plain = ops.run("sync")
    assert plain.returncode == 1
    assert "1 new results" in plain.stdout and f"still failed from earlier runs: {len(failed_lines)}" in plain.stdout
    assert "--retry-failed" in plain.stdout and ledger_states(ops)[("win-info", late)] == "copied"
    assert not re.search(r"rows ·|MB/s|ETA|\x1b\[", plain.stdout + plain.stderr), plain.stdout + plain.stderr
    retried = ops.run("sync", "--retry-failed", "--json")
    assert retried.returncode == 0, retried.stdout
    report = json.loads(retried.stdout)
    assert report["ok"] is True and len(report["copied"]) == len(failed_lines) and report["failed"] == []
    assert set(ledger_states(ops).values()) == {"copied"}

    # result.expiring went out once for each soon-expiring result, whatever the number of runs.
    messages = []
    while batch := sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", []):
        messages += [json.loads(json.loads(m["Body"])["Message"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=inbox, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    expiring = sorted(m["result_id"] for m in messages if m.get("event_type") == "result.expiring")
    assert expiring == sorted([soon_win, soon_coupon])

    # status --json: snake_case keys, typed values.
    status = ops.run("status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {r["export"]: r for r in json.loads(status.stdout)}
    win = rows["win-info"]
    assert win["rows_copied"] == sum(len(ops.sim.records(r["id"])) for r in ops.sim.results("win-info"))
    assert win["states"] == {"queued": 0, "copying": 0, "copied": 4, "failed": 0, "expired": 0}
    assert datetime.fromisoformat(win["newest_on_gateway"]) == datetime.fromisoformat(win["newest_copied"])
    assert win["lag_seconds"] == 0 and win["up_to_date"] is True and win["next_expiry"] is None
    assert all(" " not in key for r in rows.values() for key in r)

    # verify: every landed result agrees; a damaged Parquet part is drift, named, exit 1.
    verify = ops.run("verify", "--export", "win-info")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert len([line for line in verify.stdout.splitlines() if line.startswith("ok ")]) == 4
    s3: Any = ops.client("s3")
    manifest = json.loads(
        s3.get_object(Bucket=ops.env["EXPORTLAKE_BUCKET"], Key=f"manifests/win-info/{soon_win}.json")["Body"].read()
    )
    s3.put_object(Bucket=ops.env["EXPORTLAKE_BUCKET"], Key=manifest["parts"][0]["key"], Body=b"not parquet")
    drift = ops.run("verify", soon_win)
    assert drift.returncode == 1
    assert drift.stdout.startswith(f"DRIFT win-info {soon_win}") and "part-00000.parquet" in drift.stdout


def test_env_file_gives_the_settings(ops: Stack, tmp_path: Path) -> None:
    # exportlake.toml in the working directory supplies what the environment lacks.
    (tmp_path / "exportlake.toml").write_text(
        "[env]\n" + "\n".join(f'{k} = "{v}"' for k, v in ops.env.items() if k.startswith("EXPORTLAKE_")) + "\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTLAKE_")}
    env.update({k: v for k, v in ops.env.items() if not k.startswith("EXPORTLAKE_")})
    env["EXPORTLAKE_CACHE_DIR"] = ops.env["EXPORTLAKE_CACHE_DIR"]
    done = subprocess.run(
        [sys.executable, "-m", "exportlake.cli", "doctor"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   settings" in done.stdout
