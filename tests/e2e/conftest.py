"""End to end: a moto server and the simulator on loopback, the ``exportlake`` command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from exportlake.emulator.provision import LOCAL_ACCOUNT, LOCAL_REGION, MotoServer, demo_env
from exportlake.emulator.server import GatewaySimulator

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    """A moto server, a simulator and the environment that points the command at both."""

    moto: MotoServer
    sim: GatewaySimulator
    env: dict[str, str]

    def run(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``exportlake ARGS`` from the repo root, non-interactively."""
        env = {**os.environ, **self.env, **(extra_env or {})}
        return subprocess.run(  # noqa: S603 - our own command
            [sys.executable, "-m", "exportlake.cli", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def client(self, service: str) -> object:
        return boto3.client(service, endpoint_url=self.moto.endpoint, region_name=LOCAL_REGION)


def local_env(moto: MotoServer, sim: GatewaySimulator, cache: Path) -> dict[str, str]:
    """The settings that point the command at ``moto`` and ``sim`` (cache under ``cache``), its secret stored."""
    env = demo_env(moto.endpoint, sim.url, LOCAL_REGION, LOCAL_ACCOUNT)
    env["EXPORTLAKE_CACHE_DIR"] = str(cache / "cache")
    boto3.client("secretsmanager", endpoint_url=moto.endpoint, region_name=LOCAL_REGION).create_secret(
        Name=env["EXPORTLAKE_SECRET_ID"],
        SecretString=json.dumps({"client_id": sim.client_id, "client_secret": sim.client_secret}),
    )
    return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One moto server and simulator per test module (each test provisions for itself: provision is idempotent)."""
    tmp_path = tmp_path_factory.mktemp("stack")
    with MotoServer() as moto, GatewaySimulator(seed=21, records=(10, 30), max_per_page=3) as sim:
        yield Stack(moto, sim, local_env(moto, sim, tmp_path))
