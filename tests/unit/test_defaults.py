"""Defaults defined once, and a deploy that cannot work refused at synth (no CDK process needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exportlake.settings import DEFAULT_DOWNLOAD_HOSTS, Settings
from infra.config import DEFAULTS, EXAMPLE_GATEWAY_URL, Config, ConfigError, example_gateway_refusal, stack_name

REPO = Path(__file__).resolve().parents[2]


def test_download_host_default_is_one_value_for_runtime_cdk_json_and_infra() -> None:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    assert DEFAULTS["downloadHosts"] == DEFAULT_DOWNLOAD_HOSTS == context["downloadHosts"]
    runtime = Settings.from_env(
        {
            "EXPORTLAKE_GATEWAY_URL": "https://gw.example.com",
            "EXPORTLAKE_SECRET_ID": "s",
            "EXPORTLAKE_BUCKET": "bucket-a",
            "EXPORTLAKE_GLUE_DATABASE": "db",
            "EXPORTLAKE_LEDGER_TABLE": "ledger",
            "EXPORTLAKE_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:t",
            "EXPORTLAKE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
        }
    )
    assert runtime.download_hosts == Config.from_mapping({}).download_hosts


def test_the_example_gateway_is_refused_in_one_line_unless_allowed() -> None:
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    assert context["gatewayUrl"] == EXAMPLE_GATEWAY_URL
    config = Config.from_mapping(context)
    refusal = example_gateway_refusal(config, context.get)
    assert refusal is not None and "\n" not in refusal
    assert "gatewayUrl" in refusal and "-c gatewayUrl=" in refusal
    assert example_gateway_refusal(config, {"allowExampleGateway": "true"}.get) is None
    mine = Config.from_mapping({**context, "gatewayUrl": "https://gw.acme.example"})
    assert example_gateway_refusal(mine, context.get) is None


def test_stack_name_is_configurable_and_validated() -> None:
    assert stack_name({}.get, "ExportLake") == "ExportLake"
    assert stack_name({"stackName": "ExportLake-staging"}.get, "ExportLake") == "ExportLake-staging"
    with pytest.raises(ConfigError, match="stackName"):
        stack_name({"stackName": "no spaces"}.get, "ExportLake")


def test_the_placeholder_secret_is_named_by_the_first_failing_run() -> None:
    from exportlake.adapters.secrets import PLACEHOLDER_CLIENT_ID, SecretCredentials
    from exportlake.domain.errors import ConfigError as RuntimeConfigError

    stack_source = (REPO / "infra" / "constructs" / "secret.py").read_text()
    assert f'PLACEHOLDER_CLIENT_ID = "{PLACEHOLDER_CLIENT_ID}"' in stack_source  # the stack writes this one

    class Provider:
        def get(self, *args: object, **kwargs: object) -> dict[str, str]:
            return {"client_id": PLACEHOLDER_CLIENT_ID, "client_secret": "generated-by-secrets-manager"}

    credentials = SecretCredentials(None, "exportlake/neoday-api")
    credentials._provider = Provider()  # type: ignore[assignment]
    with pytest.raises(RuntimeConfigError, match="placeholder client_id REPLACE_ME") as caught:
        credentials()
    assert "generated-by-secrets-manager" not in str(caught.value)


def test_expiry_warning_window_is_an_optional_setting() -> None:
    base = {
        "EXPORTLAKE_GATEWAY_URL": "https://gw.example.com",
        "EXPORTLAKE_SECRET_ID": "s",
        "EXPORTLAKE_BUCKET": "bucket-a",
        "EXPORTLAKE_GLUE_DATABASE": "db",
        "EXPORTLAKE_LEDGER_TABLE": "ledger",
        "EXPORTLAKE_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:t",
        "EXPORTLAKE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/q",
    }
    assert Settings.from_env(base).expiry_warning_hours == 24
    assert Settings.from_env({**base, "EXPORTLAKE_EXPIRY_WARNING_HOURS": "48"}).expiry_warning_hours == 48
    with pytest.raises(Exception, match="EXPORTLAKE_EXPIRY_WARNING_HOURS"):
        Settings.from_env({**base, "EXPORTLAKE_EXPIRY_WARNING_HOURS": "soon"})
