"""Working against a deployed stack, on fakes: settings from the stack, exportlake.toml, the planner payload."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from exportlake.cli import stackenv
from exportlake.domain.errors import ConfigError
from exportlake.settings import ENV_VARS, Settings

DEPLOYED = {
    "EXPORTLAKE_GATEWAY_URL": "https://gw.acme.example",
    "EXPORTLAKE_SECRET_ID": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:exportlake-AbCdEf",
    "EXPORTLAKE_BUCKET": "exportlake-lake-1a2b",
    "EXPORTLAKE_GLUE_DATABASE": "exportlake",
    "EXPORTLAKE_LEDGER_TABLE": "ExportLake-Ledger-XYZ",
    "EXPORTLAKE_TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:ExportLake-Topic",
    "EXPORTLAKE_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/ExportLake-CopyJobs",
    "EXPORTLAKE_DOWNLOAD_HOSTS": "*.digitaloceanspaces.com",
}


class CloudFormation:
    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 - boto3's spelling
        if StackName != "ExportLake-staging":
            raise RuntimeError(f"Stack with id {StackName} does not exist")
        return {"Stacks": [{"Outputs": [{"OutputKey": "PlannerFunction", "OutputValue": "ExportLake-Planner"}]}]}


class Lambda:
    def __init__(self) -> None:
        self.invoked: list[tuple[str, dict[str, Any]]] = []

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:  # noqa: N803
        assert FunctionName == "ExportLake-Planner"
        return {"Environment": {"Variables": {**DEPLOYED, "POWERTOOLS_SERVICE_NAME": "exportlake"}}}

    def invoke(self, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        self.invoked.append((FunctionName, json.loads(Payload)))
        return {"Payload": io.BytesIO(b'{"exports": 10, "enqueued": 3, "expired": 0, "errors": []}')}


def test_env_of_a_stack_is_its_planners_settings_as_shell_and_toml(tmp_path: Path) -> None:
    env = stackenv.from_stack(CloudFormation(), "ExportLake-staging", Lambda())
    assert env == DEPLOYED and list(env) == list(ENV_VARS)
    shell = stackenv.as_shell(env)
    assert "export EXPORTLAKE_BUCKET=exportlake-lake-1a2b" in shell.splitlines()
    (tmp_path / "exportlake.toml").write_text(stackenv.as_toml(env, "ExportLake-staging"))
    environ: dict[str, str] = {"EXPORTLAKE_BUCKET": "mine-wins"}
    assert stackenv.load_config_file(environ, str(tmp_path / "exportlake.toml")) is not None
    assert environ["EXPORTLAKE_BUCKET"] == "mine-wins"  # the environment wins over the file
    assert Settings.from_env({**environ, "EXPORTLAKE_BUCKET": DEPLOYED["EXPORTLAKE_BUCKET"]}).as_env() == DEPLOYED


def test_a_missing_stack_or_config_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stack ExportLake does not exist"):
        stackenv.from_stack(CloudFormation(), "ExportLake", Lambda())
    with pytest.raises(ConfigError, match="does not exist"):
        stackenv.load_config_file({"EXPORTLAKE_CONFIG": str(tmp_path / "nope.toml")})
    (tmp_path / "bad.toml").write_text("[env]\nEXPORTLAKE_BUKET = 'typo'\n")
    with pytest.raises(ConfigError, match="unknown keys EXPORTLAKE_BUKET"):
        stackenv.load_config_file({}, str(tmp_path / "bad.toml"))


def test_deployed_retry_sends_the_planner_payload() -> None:
    assert stackenv.planner_payload() == {}
    assert stackenv.planner_payload(retry_failed=True) == {"retry_failed": True}
    client = Lambda()
    answer = stackenv.invoke(client, "ExportLake-Planner", stackenv.planner_payload(retry_failed=True))
    assert client.invoked == [("ExportLake-Planner", {"retry_failed": True})] and answer["enqueued"] == 3
