"""Config validation: defaults are valid, every bad value is named with a clear message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra.config import DEFAULTS, Config, ConfigError

REPO = Path(__file__).resolve().parents[2]


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
