"""``exportlake doctor``'s first-deploy links (docs/deploy.md's checklist) against moto: Lake Formation mode, the
secret's KMS key, the deployed stack and its alarms. Moto models the Lake Formation settings and grants, KMS keys,
CloudFormation outputs and alarm states (it enforces none of them: the template tests prove the grants)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from exportlake.cli import deploychecks
from exportlake.cli.deploychecks import Broken

DATABASE = "exportlake"
STACK = "ExportLake"
SECRET = "prod/neoday-gateway"


@dataclass
class Settings:
    glue_database: str = DATABASE
    secret_id: str = SECRET


@dataclass
class State:
    settings: Settings = field(default_factory=Settings)
    stack: str = ""
    outputs: dict[str, str] = field(default_factory=dict)


def clients(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1")


def deploy(outputs: dict[str, str]) -> None:
    """A stack with these outputs (all that doctor reads of it)."""
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    clients("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))


@pytest.fixture
def account(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("EXPORTLAKE_STACK", raising=False)
    clients("glue").create_database(DatabaseInput={"Name": DATABASE})
    yield


def governed() -> None:
    """The account's Data Catalog settings no longer default to IAM-only access control."""
    clients("lakeformation").put_data_lake_settings(
        DataLakeSettings={
            "DataLakeAdmins": [],
            "CreateDatabaseDefaultPermissions": [],
            "CreateTableDefaultPermissions": [],
        }
    )


def test_iam_only_defaults_need_no_lake_formation_grants(account: None) -> None:
    line = deploychecks.check_lake_formation(State(), clients)
    assert line == "new databases and tables use IAM access control only: lakeFormation=false is enough"


def test_a_governed_account_without_grants_is_told_to_deploy_with_lake_formation(account: None) -> None:
    governed()
    with pytest.raises(Broken) as info:
        deploychecks.check_lake_formation(State(), clients)
    assert "Lake Formation governs new databases and tables" in info.value.detail
    assert info.value.fix.startswith('set "lakeFormation": true in cdk.json, then cdk deploy')
    assert "docs/deploy.md#2-lake-formation" in info.value.fix
    assert "data lake administrator" in info.value.fix  # the deploy role is not one yet
    # Once the stack's grants exist (what lakeFormation=true deploys), the link holds.
    clients("lakeformation").grant_permissions(
        Principal={"DataLakePrincipalIdentifier": "arn:aws:iam::123456789012:role/ExportLake-CopierRole"},
        Resource={"Database": {"Name": DATABASE}},
        Permissions=["CREATE_TABLE"],
    )
    assert "1 principal(s) may create tables in exportlake" in deploychecks.check_lake_formation(State(), clients)


def test_the_deployed_stack_says_which_mode_it_was_deployed_in(account: None) -> None:
    governed()
    deploy({"LakeFormation": "off"})
    state = State(stack=STACK)
    assert deploychecks.check_stack(state, clients) == f"stack {STACK} is CREATE_COMPLETE"
    with pytest.raises(Broken, match="deployed without its grants"):
        deploychecks.check_lake_formation(state, clients)
    on = State(stack=STACK, outputs={"LakeFormation": "on"})
    assert "(lakeFormation=true)" in deploychecks.check_lake_formation(on, clients)


def test_the_missing_kms_grant_is_named(account: None) -> None:
    key = clients("kms").create_key(Description="gateway secret")["KeyMetadata"]["Arn"]
    clients("secretsmanager").create_secret(Name=SECRET, SecretString="{}", KmsKeyId=key)
    assert deploychecks.check_secret_key(State(), clients).endswith(f"deploy with existingSecretKmsKeyArn={key}")
    with pytest.raises(Broken) as info:
        deploychecks.check_secret_key(State(outputs={"LakeFormation": "off"}), clients)
    assert f"encrypted with the customer-managed key {key}" in info.value.detail
    assert "grants no kms:Decrypt" in info.value.detail
    assert info.value.fix.startswith(f'set "existingSecretKmsKeyArn": "{key}" in cdk.json')
    other = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    with pytest.raises(Broken, match=f"grants kms:Decrypt on {other}"):
        deploychecks.check_secret_key(State(outputs={"SecretKeyArn": other}), clients)
    granted = deploychecks.check_secret_key(State(outputs={"SecretKeyArn": key}), clients)
    assert granted == f"the functions may decrypt with {key}, through Secrets Manager only"


def test_a_secret_under_the_aws_managed_key_needs_no_grant(account: None) -> None:
    clients("secretsmanager").create_secret(Name=SECRET, SecretString="{}")
    assert "need no key grant" in deploychecks.check_secret_key(State(outputs={"LakeFormation": "off"}), clients)


def alarm(name: str, value: str = "ALARM") -> None:
    cloudwatch = clients("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="ResultsCopied",
        Namespace="exportlake",
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=value, StateReason="test")


def test_the_first_days_alarms_are_explained(account: None) -> None:
    state = State(stack=STACK, outputs={"LakeFormation": "off"})
    assert deploychecks.check_alarms(state, clients) == "no alarm in ALARM"
    alarm(f"{STACK}-AlertsFreshnessAlarm1A2B3C-XYZ")
    alarm("OtherStack-AlertsCopyDlqAlarm9-ABC")  # another stack's: not ours
    assert "expected on the first day" in deploychecks.check_alarms(state, clients)
    alarm(f"{STACK}-AlertsCopyDlqAlarm4D5E6F-XYZ")
    with pytest.raises(Broken) as info:
        deploychecks.check_alarms(state, clients)
    assert info.value.detail.startswith("1 alarm(s) in ALARM — CopyDlqAlarm: copy jobs failed every retry")
    assert "docs/deploy.md#5-the-alarms-on-the-first-day" in info.value.fix


class RolledBack:
    """CloudFormation answering for a stack stuck in ROLLBACK_FAILED (moto cannot get one there)."""

    def describe_stacks(self, StackName: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter name
        return {"Stacks": [{"StackName": StackName, "StackStatus": "UPDATE_ROLLBACK_FAILED"}]}


def test_a_stack_in_rollback_failed_points_at_the_recovery() -> None:
    with pytest.raises(Broken) as info:
        deploychecks.check_stack(State(stack=STACK), lambda service: RolledBack())
    assert info.value.detail == f"stack {STACK} is UPDATE_ROLLBACK_FAILED"
    assert "docs/deploy.md#recover-a-stack-in-rollback_failed" in info.value.fix


def test_without_a_stack_name_the_deployment_links_are_not_checked(account: None) -> None:
    assert deploychecks.check_stack(State(), clients).startswith("not checked: name the stack")
    assert deploychecks.check_alarms(State(), clients).startswith("not checked")
