"""Config validation: defaults are valid, every bad value is named with a clear message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra.app import build
from infra.config import DEFAULTS, KNOWN_KEYS, Config, ConfigError, unknown_keys

REPO = Path(__file__).resolve().parents[2]
KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_cdk_json_holds_every_key_with_its_default() -> None:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    assert {k: context[k] for k in DEFAULTS} == DEFAULTS


def test_defaults_are_valid() -> None:
    config = Config.from_mapping({})
    assert config.gateway_url == "https://gateway.example.neoday.com"
    assert config.copy_concurrency == 4
    assert config.copier_memory_mb == 1769
    assert config.existing_secret_name is None
    assert config.retain_data is True
    assert config.download_hosts == ("*.digitaloceanspaces.com",)
    assert (config.gateway_max_rps, config.expiry_warning_hours) == (20.0, 24)
    assert config.raw_archive is True


def test_cli_strings_are_accepted() -> None:
    """``cdk -c key=value`` passes strings."""
    config = Config.from_mapping(
        {
            "copyConcurrency": "8",
            "retainData": "false",
            "notificationEmails": "a@example.com, b@example.com",
            "downloadHosts": '["*.digitaloceanspaces.com", "files.example.com"]',
            "existingSecretName": "team/neoday",
            "gatewayUrl": "https://gw.example.com/",
            "gatewayMaxRequestsPerSecond": "2.5",
            "expiryWarningHours": "6",
        }
    )
    assert (config.gateway_max_rps, config.expiry_warning_hours) == (2.5, 6)
    assert config.copy_concurrency == 8
    assert config.retain_data is False
    assert config.notification_emails == ("a@example.com", "b@example.com")
    assert config.download_hosts == ("*.digitaloceanspaces.com", "files.example.com")
    assert config.existing_secret_name == "team/neoday"
    assert config.gateway_url == "https://gw.example.com"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("gatewayUrl", "http://gateway.example.com", "must be an https:// URL"),
        ("gatewayUrl", "gateway.example.com", "must be an https:// URL"),
        ("gatewayUrl", "https://user:pw@gw.example.com", "must not carry credentials"),
        ("schedule", "every hour", "EventBridge Scheduler expression"),
        ("schedule", "rate(1 hours)", "rate(1 hour)"),
        ("schedule", "rate(0 minutes)", "EventBridge Scheduler expression"),
        ("schedule", "cron(0 * * * *)", "six fields"),
        ("timeZone", "Mars/Olympus", "IANA time zone"),
        ("copyConcurrency", 1, "between 2 and 1000"),
        ("copyConcurrency", 5000, "between 2 and 1000"),
        ("copyConcurrency", "many", "whole number"),
        ("copyConcurrency", True, "whole number"),
        ("notificationEmails", ["not-an-email"], "not an email address"),
        ("downloadHosts", "https://x.example.com", "host name"),
        ("downloadHosts", "", "at least one"),
        ("rawRetentionDays", -1, "between 0"),
        ("athenaResultsRetentionDays", 0, "between 1"),
        ("freshnessHours", 48, "between 1 and 24"),
        ("copierMemoryMb", 20000, "between 512 and 10240"),
        ("bytesScannedCutoffMb", 1, "between 10"),
        ("retainData", "maybe", "true or false"),
        ("rawArchive", "sometimes", "true or false"),
        ("gatewayMaxRequestsPerSecond", -1, "between 0 and 1000"),
        ("gatewayMaxRequestsPerSecond", "nan", "between 0 and 1000"),
        ("gatewayMaxRequestsPerSecond", "quick", "must be a number"),
        ("gatewayMaxRequestsPerSecond", True, "must be a number"),
        ("expiryWarningHours", 0, "between 1 and 720"),
        ("existingSecretName", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x", "not an ARN"),
        ("lakeFormation", "yes please", "true or false"),
        ("lakeFormationReaders", ["analysts"], "not an IAM role or user ARN"),
        ("lakeFormationReaders", ["arn:aws:iam::123456789012:group/analysts"], "not an IAM role or user ARN"),
        ("lakeFormationReaders", ["arn:aws:iam::123456789012:role/analysts"], "needs lakeFormation=true"),
        ("existingSecretKmsKeyArn", "arn:aws:kms:eu-west-1:123456789012:alias/gw", "is an alias"),
        ("existingSecretKmsKeyArn", "1234abcd-12ab-34cd-56ef-1234567890ab", "must be a KMS key ARN"),
        ("existingSecretKmsKeyArn", KEY, "applies only with existingSecretName"),
    ],
)
def test_bad_values_are_named(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({key: value})
    text = str(info.value)
    assert key in text
    assert message in text


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({"gatewayUrl": "ftp://x", "schedule": "daily", "copyConcurrency": 0})
    text = str(info.value)
    assert "gatewayUrl" in text
    assert "schedule" in text
    assert "copyConcurrency" in text
    assert "cdk.json" in text


def test_removal_policy_follows_retain_data() -> None:
    assert Config.from_mapping({}).removal_policy == cdk.RemovalPolicy.RETAIN
    assert Config.from_mapping({"retainData": False}).removal_policy == cdk.RemovalPolicy.DESTROY
    assert Config.from_mapping({"retainData": "true"}).removal_policy == cdk.RemovalPolicy.RETAIN


def test_lake_formation_and_secret_key_settings() -> None:
    config = Config.from_mapping(
        {
            "lakeFormation": "true",
            "lakeFormationReaders": "arn:aws:iam::123456789012:role/analysts, arn:aws:iam::123456789012:user/a/ada",
            "existingSecretName": "team/neoday",
            "existingSecretKmsKeyArn": KEY,
        }
    )
    assert config.lake_formation is True
    assert config.lake_formation_readers == (
        "arn:aws:iam::123456789012:role/analysts",
        "arn:aws:iam::123456789012:user/a/ada",
    )
    assert config.existing_secret_kms_key_arn == KEY
    defaults = Config.from_mapping({})
    assert (defaults.lake_formation, defaults.lake_formation_readers, defaults.existing_secret_kms_key_arn) == (
        False,
        (),
        None,
    )
    mrk = "arn:aws:kms:eu-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"
    assert Config.from_mapping({"existingSecretName": "x", "existingSecretKmsKeyArn": mrk}).existing_secret_kms_key_arn


@pytest.mark.parametrize(
    ("key", "closest"),
    [
        ("gatewayURL", "gatewayUrl"),
        ("lakeformation", "lakeFormation"),
        ("lakeFormationReader", "lakeFormationReaders"),
        ("retaindata", "retainData"),
        ("stackname", "stackName"),
        ("existingSecretKey", "existingSecretName"),
    ],
)
def test_a_mistyped_setting_is_refused_naming_the_closest(key: str, closest: str) -> None:
    (line,) = unknown_keys({key: "x", **DEFAULTS})
    assert line == f"unknown setting {key} (cdk.json context or -c {key}=…): did you mean {closest}?"


def test_an_unknown_setting_far_from_any_is_refused_too() -> None:
    (line,) = unknown_keys({"xyzzy": "blue"})  # ("colour" is close enough to reconcileHours to be suggested it)
    assert "xyzzy" in line and "not an exportlake setting" in line and "\n" not in line


def test_cdks_own_context_keys_pass() -> None:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    context.update(
        {
            "aws:cdk:bundling-stacks": [],
            "aws:cdk:enable-path-metadata": True,
            "@aws-cdk/core:newStyleStackSynthesis": True,
            "@aws-cdk-containers/ecs-service-extensions:enableDefaultLogDriver": True,
            "availability-zones:account=123456789012:region=eu-west-1": ["eu-west-1a"],
            "acknowledged-issue-numbers": [32775],
            "cli-telemetry": False,
            "$dontSaveContext": True,
            "stackName": "ExportLake-staging",
            "allowExampleGateway": "true",
        }
    )
    assert unknown_keys(context) == []
    assert set(KNOWN_KEYS) >= set(DEFAULTS)


def test_synth_refuses_an_unknown_key_before_building() -> None:
    app = cdk.App(context={"lakeformation": "true", "aws:cdk:bundling-stacks": []})
    with pytest.raises(ConfigError) as info:
        build(app, nag=False)
    assert str(info.value) == (
        "unknown setting lakeformation (cdk.json context or -c lakeformation=…): did you mean lakeFormation?"
    )
    assert not app.node.children  # nothing was built


@pytest.mark.slow
def test_cdk_synth_exits_with_one_line_per_mistyped_setting(tmp_path: Path) -> None:
    """As ``cdk synth -c gatewayURL=…`` runs the app: the context arrives in CDK_CONTEXT_JSON."""
    context = {**json.loads((REPO / "cdk.json").read_text())["context"], "gatewayURL": "https://gw.example.com"}
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(tmp_path),
        "PYTHONPATH": os.pathsep.join((str(REPO), str(REPO / "functions"))),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    done = subprocess.run(
        [sys.executable, "-m", "infra.app"], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: unknown setting gatewayURL (cdk.json context or -c gatewayURL=…): did you mean gatewayUrl?"
    ]
    assert not list(tmp_path.glob("*.template.json"))
