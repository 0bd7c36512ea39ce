"""Build the exportlake app once per session: no bundling, no CDK template validation, cdk-nag on."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before aws_cdk starts its jsii node process (it inherits this environment).
os.environ.setdefault("CDK_VALIDATION", "false")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_DEPRECATED", "quiet")

REPO = Path(__file__).resolve().parents[2]
for path in (str(REPO), str(REPO / "functions")):
    if path not in sys.path:
        sys.path.insert(0, path)

import aws_cdk as cdk  # noqa: E402
import pytest  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from infra.app import STACK_NAME, build  # noqa: E402
from infra.stack import ExportLakeStack  # noqa: E402


def cdk_json_context() -> dict[str, Any]:
    """The context of ``cdk.json`` (defaults and feature flags), as the CLI would pass it."""
    context: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())["context"]
    return {k: v for k, v in context.items() if v is not None}


@dataclass
class Synthesized:
    """One synthesized app: the stack, its template and the validation (cdk-nag) report."""

    stack: ExportLakeStack
    template: Template
    raw: dict[str, Any]
    report: dict[str, Any]
    error: str | None
    outdir: Path


def synthesize(outdir: Path, **overrides: Any) -> Synthesized:
    context = {**cdk_json_context(), **overrides, "aws:cdk:bundling-stacks": []}
    app = cdk.App(outdir=str(outdir), context=context)
    stack = build(app)
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag findings fail the synth; the report tells which
        error = str(exc)
    raw = json.loads((outdir / f"{STACK_NAME}.template.json").read_text())
    report_file = outdir / "validation-report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {"pluginReports": []}
    return Synthesized(stack, Template.from_json(raw), raw, report, error, outdir)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    """The default configuration of ``cdk.json``."""
    return synthesize(tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def synth_alt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    """The other branches: imported secret, data destroyed with the stack, emails, raw kept forever."""
    return synthesize(
        tmp_path_factory.mktemp("cdk-alt"),
        existingSecretName="prod/neoday-gateway",
        retainData=False,
        notificationEmails=["ops@example.com", "data@example.com"],
        rawRetentionDays=0,
        schedule="cron(15 6 * * ? *)",
        timeZone="Europe/Amsterdam",
        copyConcurrency=10,
        copierMemoryMb=3008,
        gatewayMaxRequestsPerSecond=7.5,
        expiryWarningHours=48,
        rawArchive=False,
        lakeRetentionDays=400,
    )


#: A key of the existing secret, and a reader, for the governed synth.
SECRET_KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
READERS = ["arn:aws:iam::111122223333:role/analysts", "arn:aws:iam::111122223333:user/data/ada"]


@pytest.fixture(scope="session")
def synth_governed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    """An account governed by Lake Formation, with readers, and an existing secret under a customer-managed key."""
    return synthesize(
        tmp_path_factory.mktemp("cdk-governed"),
        lakeFormation=True,
        lakeFormationReaders=READERS,
        existingSecretName="prod/neoday-gateway",
        existingSecretKmsKeyArn=SECRET_KEY_ARN,
    )


@pytest.fixture(scope="session")
def template(synth: Synthesized) -> Template:
    return synth.template


@pytest.fixture(scope="session")
def resources(synth: Synthesized) -> dict[str, Any]:
    res: dict[str, Any] = synth.raw["Resources"]
    return res
