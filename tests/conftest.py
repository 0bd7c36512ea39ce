"""Shared fixtures: AWS on moto (in-process or a server on 127.0.0.1), never the network."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# No test may reach real AWS: fake credentials and a fixed region before any boto3 client exists.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_PROFILE", None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test outside tests/unit is ``slow``: it runs moto, a server, a subprocess or a synth.

    ``make unit`` runs ``-m "not slow"``: tests/unit less the few marked slow there (subprocesses, large data).
    """
    for item in items:
        if "/tests/unit/" not in item.path.as_posix():
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def aws() -> Iterator[None]:
    """In-process moto for every AWS service (with Glue partition indexes, which moto lacks: the emulator's)."""
    from moto import mock_aws

    from exportlake.emulator import motoglue

    motoglue.install()
    with mock_aws():
        yield
