"""Every failure the simulator can stage, as a person meets it on a terminal: each message one line, in words, with the
fix that fits (issue 20).

One moto server and one simulator; every fault kind of ``emulator.faults`` is injected for good on the port it
applies to, a sync runs as the ``exportlake`` command, and every line it prints is held to the rules: no exception
class names, no codec or library internals, no library warnings, and a fix that names what to do.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import boto3
import pytest

from exportlake.domain import wording
from exportlake.emulator.faults import FAULT_KINDS
from exportlake.emulator.provision import LOCAL_ACCOUNT, LOCAL_REGION, MotoServer, demo_env
from exportlake.emulator.server import GatewaySimulator
from tests.e2e.conftest import ROOT, Stack

pytestmark = pytest.mark.slow

CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*(Error|Exception)\b")
INTERNALS = ("codec", "Traceback", "urllib3", "requests.", "botocore", "Warning", "No application metrics")
#: Where each fault kind applies (and its parameters, so that persistent faults end quickly).
PLACES: dict[str, tuple[str, dict[str, object]]] = {
    "rate_limit": ("gateway", {"retry_after": 0}),
    "server_error": ("gateway", {"status": 503}),
    "unauthorized": ("gateway", {}),
    "slow": ("gateway", {"seconds": 0.05}),
    "truncated": ("download", {"fraction": 0.5}),
    "url_expired": ("download", {}),
    "throttled": ("download", {"bytes_per_second": 1e7}),
}


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with MotoServer() as moto, GatewaySimulator(seed=9, records=(5, 9), results_per_export=1) as sim:
        env = demo_env(moto.endpoint, sim.url, LOCAL_REGION, LOCAL_ACCOUNT)
        env["EXPORTLAKE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
        boto3.client(
            "secretsmanager",
            endpoint_url=moto.endpoint,
            region_name=LOCAL_REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_secret(
            Name=env["EXPORTLAKE_SECRET_ID"],
            SecretString=json.dumps({"client_id": sim.client_id, "client_secret": sim.client_secret}),
        )
        stack = Stack(moto, sim, env)
        assert stack.run("provision").returncode == 0
        yield stack


def as_user(ops: Stack, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``exportlake ARGS`` with a user's environment: none of the test session's Powertools settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_")}
    return subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "exportlake.cli", *args],
        cwd=ROOT,
        env={**env, **ops.env, **(extra_env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def held_to_the_rules(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines a person reads, after checking each against the rules; returns them for specific checks."""
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    for line in lines:
        assert not CLASS_NAME.search(line), line
        for internal in INTERNALS:
            assert internal not in line, line
    assert len([x for x in done.stderr.splitlines() if x.strip()]) <= 1, done.stderr
    return lines


def failure_lines(lines: list[str]) -> list[str]:
    return [x for x in lines if x.startswith(("failed:", "planner:", "exportlake:"))]


def test_every_fault_of_the_simulator_reads_as_words_with_its_fix(ops: Stack) -> None:
    assert set(PLACES) == set(FAULT_KINDS), "a new fault kind: say where it applies"
    for kind in FAULT_KINDS:
        target, params = PLACES[kind]
        ops.sim.faults.clear()
        if target == "download":
            ops.sim.add_result("win-info", n_records=5)  # a result no earlier case has touched
        ops.sim.faults.inject(kind, times=None, target=target, **params)  # type: ignore[arg-type]
        done = as_user(ops, "sync", "--export", "win-info")
        lines = held_to_the_rules(done)
        failures = failure_lines(lines)
        if kind in ("slow", "throttled"):  # slowness is no failure (results failed by earlier cases stay failed)
            assert not [x for x in failures if x.startswith(("failed:", "planner:"))], lines
            continue
        assert done.returncode != 0 and failures, (kind, lines)
        for line in failures:
            assert re.search(r"check|retry|report|tell|run |exportlake ", line), (kind, line)
        text = "\n".join(failures)
        if kind == "unauthorized":
            assert wording.CREDENTIALS_FIX in text  # the same fix as its sync.failed notice
        elif kind in ("rate_limit", "server_error"):
            assert ops.sim.url in text and wording.REPORT_TO in text, text
        elif kind == "truncated":
            assert "the connection broke before the whole body arrived" in text
            assert "exportlake sync --retry-failed" in text
        elif kind == "url_expired":
            assert "fresh download URL" in text
    ops.sim.faults.clear()


def test_a_gateway_that_does_not_answer_is_named_with_what_to_check(ops: Stack) -> None:
    down = "http://127.0.0.1:9"  # the discard port: nothing listens
    for args in (("sync",), ("status",)):
        done = as_user(ops, *args, extra_env={"EXPORTLAKE_GATEWAY_URL": down})
        failures = failure_lines(held_to_the_rules(done))
        assert done.returncode != 0
        (line,) = [x for x in failures if down in x]
        assert f"the gateway {down} does not answer" in line, line
        assert "check EXPORTLAKE_GATEWAY_URL" in line, line
