"""First deploy in a real account: Lake Formation grants, the existing secret's KMS key, CloudFormation's order.

Moto enforces none of IAM, KMS or Lake Formation, so these hold the synthesized template to what AWS documents
(docs/deploy.md cites the pages).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from exportlake import iam as permissions
from infra.constructs.functions import COPIER_HANDLER, PLANNER_HANDLER, TABLES_HANDLER
from infra.constructs.privacy import ERASER_HANDLER

from .conftest import READERS, SECRET_KEY_ARN, Synthesized
from .test_stack import function, of_type, one, role_statements

Resources = dict[str, Any]
LF = "AWS::LakeFormation::PrincipalPermissions"


def lf_grants(resources: Resources) -> dict[tuple[str, str], set[str]]:
    """(principal, "database" | "tables") → permissions, from the template's PrincipalPermissions."""
    out: dict[tuple[str, str], set[str]] = {}
    for grant in of_type(resources, LF).values():
        props = grant["Properties"]
        assert props["PermissionsWithGrantOption"] == []
        principal = props["Principal"]["DataLakePrincipalIdentifier"]
        who = principal["Fn::GetAtt"][0] if isinstance(principal, dict) else principal
        resource = props["Resource"]
        if "Database" in resource:
            assert resource["Database"] == {"CatalogId": {"Ref": "AWS::AccountId"}, "Name": "exportlake"}
            where = permissions.LF_DATABASE
        else:
            assert resource["Table"] == {
                "CatalogId": {"Ref": "AWS::AccountId"},
                "DatabaseName": "exportlake",
                "TableWildcard": {},
            }
            where = permissions.LF_TABLES
        assert (who, where) not in out, "one grant per principal and resource"
        out[(who, where)] = set(props["Permissions"])
    return out


def role_of(resources: Resources, handler: str) -> str:
    return str(function(resources, handler)[1]["Properties"]["Role"]["Fn::GetAtt"][0])


# --- Lake Formation -----------------------------------------------------------------------------------------------


def test_without_the_option_no_lake_formation_resource(synth: Synthesized, synth_alt: Synthesized) -> None:
    for synthesized in (synth, synth_alt):
        resources = synthesized.raw["Resources"]
        assert not [r for r in resources.values() if r["Type"].startswith("AWS::LakeFormation::")]
        (database,) = of_type(resources, "AWS::Glue::Database").values()
        assert "LocationUri" not in database["Properties"]["DatabaseInput"]
        assert synthesized.raw["Outputs"]["LakeFormation"]["Value"] == "off"


def test_each_role_gets_exactly_the_lake_formation_permissions_its_glue_calls_need(
    synth_governed: Synthesized,
) -> None:
    resources = synth_governed.raw["Resources"]
    grants = lf_grants(resources)
    roles = {
        permissions.PLANNER: role_of(resources, PLANNER_HANDLER),
        permissions.COPIER: role_of(resources, COPIER_HANDLER),
        permissions.TABLES: role_of(resources, TABLES_HANDLER),
        permissions.ERASER: role_of(resources, ERASER_HANDLER),
    }
    expected: dict[tuple[str, str], set[str]] = {
        (roles[permissions.COPIER], permissions.LF_DATABASE): {"CREATE_TABLE"},
        (roles[permissions.COPIER], permissions.LF_TABLES): {"ALTER", "DESCRIBE", "INSERT"},
        (roles[permissions.TABLES], permissions.LF_DATABASE): {"CREATE_TABLE"},
        (roles[permissions.TABLES], permissions.LF_TABLES): {"ALTER", "DESCRIBE", "DROP"},
        # Erasure moves partitions (ALTER), retention deletes them (ALTER, DELETE), both read them (DESCRIBE).
        (roles[permissions.ERASER], permissions.LF_TABLES): {"ALTER", "DELETE", "DESCRIBE"},
    }
    for reader in READERS:
        expected[(reader, permissions.LF_DATABASE)] = {"DESCRIBE"}
        expected[(reader, permissions.LF_TABLES)] = {"DESCRIBE", "SELECT"}
    assert grants == expected
    # The planner makes no Glue call: it gets nothing.
    assert not [k for k in grants if k[0] == roles[permissions.PLANNER]]
    assert synth_governed.raw["Outputs"]["LakeFormation"]["Value"] == "on"


def test_lake_formation_permissions_follow_the_iam_grants() -> None:
    """Derived, not listed twice: every Glue action a role holds has its Lake Formation permission."""
    for function_name in permissions.FUNCTIONS:
        glue = {a for a in permissions.code_actions(function_name) if a.startswith("glue:")}
        assert glue <= set(permissions.LF_OF_ACTION), function_name
        needed = permissions.lf_permissions(function_name)
        derived = {p for a in glue for _, p in permissions.LF_OF_ACTION[a]}
        assert {p for perms in needed.values() for p in perms} == derived
    assert permissions.lf_permissions(permissions.PLANNER) == {}


def test_grants_wait_for_the_database_and_tables_wait_for_the_grants(synth_governed: Synthesized) -> None:
    resources = synth_governed.raw["Resources"]
    db_id, database = one(resources, "AWS::Glue::Database", "CatalogDatabase")
    for grant in of_type(resources, LF).values():
        assert db_id in grant["DependsOn"]
    tables_role = role_of(resources, TABLES_HANDLER)
    tables_grants = {
        k
        for k, v in of_type(resources, LF).items()
        if v["Properties"]["Principal"]["DataLakePrincipalIdentifier"] == {"Fn::GetAtt": [tables_role, "Arn"]}
    }
    assert len(tables_grants) == 2
    for table in of_type(resources, "Custom::ExportlakeTable").values():
        assert tables_grants <= set(table["DependsOn"])
    copier_role = role_of(resources, COPIER_HANDLER)
    copier_grants = {
        k
        for k, v in of_type(resources, LF).items()
        if v["Properties"]["Principal"]["DataLakePrincipalIdentifier"] == {"Fn::GetAtt": [copier_role, "Arn"]}
    }
    copier_id, _ = function(resources, COPIER_HANDLER)
    (mapping,) = [
        m
        for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": copier_id}
    ]
    assert copier_grants <= set(mapping["DependsOn"])
    # Tables live under the database's location: no data location permission needed where the bucket is registered.
    lake_id, _ = one(resources, "AWS::S3::Bucket", "LakeBucket")
    assert database["Properties"]["DatabaseInput"]["LocationUri"] == {
        "Fn::Join": ["", ["s3://", {"Ref": lake_id}, "/lake/"]]
    }
    assert not [g for g in of_type(resources, LF).values() if "DataLocation" in g["Properties"]["Resource"]]


# --- the existing secret's key ------------------------------------------------------------------------------------


def test_the_secret_readers_may_decrypt_with_its_key_through_secrets_manager_only(
    synth_governed: Synthesized,
) -> None:
    resources = synth_governed.raw["Resources"]
    for handler, reads_secret in ((PLANNER_HANDLER, True), (COPIER_HANDLER, True), (TABLES_HANDLER, False)):
        statements = role_statements(resources, function(resources, handler)[1]["Properties"])
        on_key = [s for s in statements if SECRET_KEY_ARN in json.dumps(s.get("Resource"))]
        if not reads_secret:
            assert on_key == []
            continue
        (statement,) = on_key
        assert statement["Sid"] == "GatewaySecretKey"
        assert statement["Action"] == "kms:Decrypt"
        assert statement["Resource"] == SECRET_KEY_ARN
        condition = statement["Condition"]
        assert condition["StringEquals"] == {
            "kms:ViaService": {"Fn::Join": ["", ["secretsmanager.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
        }
        secret_arn = json.dumps(condition["StringLike"]["kms:EncryptionContext:SecretARN"])
        assert ":secret:prod/neoday-gateway-??????" in secret_arn
    assert synth_governed.raw["Outputs"]["SecretKeyArn"]["Value"] == SECRET_KEY_ARN


def test_no_key_grant_without_the_setting(synth: Synthesized, synth_alt: Synthesized) -> None:
    for synthesized in (synth, synth_alt):
        resources = synthesized.raw["Resources"]
        for handler in (PLANNER_HANDLER, COPIER_HANDLER):
            sids = {s.get("Sid") for s in role_statements(resources, function(resources, handler)[1]["Properties"])}
            assert "GatewaySecretKey" not in sids
        assert "SecretKeyArn" not in synthesized.raw["Outputs"]


# --- CloudFormation's order (IAM is eventually consistent) ----------------------------------------------------------


@pytest.mark.parametrize("which", ["synth", "synth_governed"])
def test_resources_that_use_a_new_grant_wait_for_it(which: str, request: pytest.FixtureRequest) -> None:
    resources = request.getfixturevalue(which).raw["Resources"]
    policies = {
        role: k
        for k, v in of_type(resources, "AWS::IAM::Policy").items()
        for role in [r["Ref"] for r in v["Properties"]["Roles"]]
    }
    tables_policy = policies[role_of(resources, TABLES_HANDLER)]
    tables = of_type(resources, "Custom::ExportlakeTable")
    assert len(tables) == 10
    for table in tables.values():
        assert tables_policy in table["DependsOn"]
    planner_id, _ = function(resources, PLANNER_HANDLER)
    (invoke_config,) = [
        c
        for c in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": planner_id}
    ]
    planner_policy = policies[role_of(resources, PLANNER_HANDLER)]
    assert planner_policy in invoke_config["DependsOn"]
    # That policy is the one holding the on-failure destination's grant.
    statements = resources[planner_policy]["Properties"]["PolicyDocument"]["Statement"]
    assert any(s.get("Sid") == "FailedRunsSend" for s in statements)
