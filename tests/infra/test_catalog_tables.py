"""The synthesized raw tables: custom resources with the declaration's fingerprint, views after them, a tight role."""

from __future__ import annotations

import json
from typing import Any

from exportlake import iam as permissions
from exportlake.adapters.catalog import declared_fingerprint
from exportlake.domain.schemas import EXPORT_TYPES, LATEST_TABLE
from exportlake.domain.tableresource import RESOURCE_TYPE, RemovalPolicy, TableDeclaration
from infra.constructs.functions import TABLES_HANDLER

from .conftest import Synthesized
from .test_stack import Resources, actions_of, function, listify, of_type, one, role_statements, statements_by_sid


def raw_tables(resources: Resources) -> dict[str, tuple[str, dict[str, Any]]]:
    return {r["Properties"]["TableName"]: (k, r) for k, r in of_type(resources, RESOURCE_TYPE).items()}


def test_no_raw_table_is_an_aws_glue_table(resources: Resources) -> None:
    tables = of_type(resources, "AWS::Glue::Table").values()
    glue_tables = [t for t in tables if t["Properties"]["TableInput"]["Name"] != LATEST_TABLE]
    assert glue_tables, "the views are still Glue tables"
    assert all(t["Properties"]["TableInput"]["TableType"] == "VIRTUAL_VIEW" for t in glue_tables)
    assert not {t["Properties"]["TableInput"]["Name"] for t in glue_tables} & set(EXPORT_TYPES)


def test_each_declared_table_is_a_custom_resource_carrying_its_fingerprint(resources: Resources) -> None:
    tables_fn, _ = function(resources, TABLES_HANDLER)
    lake_id, _ = one(resources, "AWS::S3::Bucket", "LakeBucket")
    db_id, _ = one(resources, "AWS::Glue::Database", "CatalogDatabase")
    tables_role = resources[tables_fn]["Properties"]["Role"]["Fn::GetAtt"][0]
    (tables_policy,) = [
        k
        for k, v in resources.items()
        if v["Type"] == "AWS::IAM::Policy" and {"Ref": tables_role} in v["Properties"]["Roles"]
    ]
    found = raw_tables(resources)
    assert set(found) == set(EXPORT_TYPES)
    for name, export_type in EXPORT_TYPES.items():
        logical_id, resource = found[name]
        assert logical_id.startswith("CatalogRawTable")  # never the old AWS::Glue::Table's "CatalogTable…" id
        expected = TableDeclaration(
            "exportlake", name, "<bucket>", export_type.columns, export_type.description,
            declared_fingerprint(name, export_type.columns, export_type.description), RemovalPolicy.RETAIN,
        ).properties()  # fmt: skip
        props = resource["Properties"]
        assert {k: v for k, v in props.items() if k not in ("ServiceToken", "ServiceTimeout")} == {
            **expected,
            "Bucket": {"Ref": lake_id},
        }
        assert props["ServiceToken"] == {"Fn::GetAtt": [tables_fn, "Arn"]}
        assert props["ServiceTimeout"] == "300"  # CloudFormation's wait is bounded even if nobody answers
        # The database, and the tables function's policy (a new table's name is in it: test_governance.py).
        assert sorted(resource["DependsOn"]) == sorted([db_id, tables_policy])
        assert resource["DeletionPolicy"] == "Delete"  # CloudFormation always asks; the RemovalPolicy decides


def test_the_properties_change_only_with_the_declaration(synth: Synthesized, synth_alt: Synthesized) -> None:
    """Another configuration, same registry: the same properties but the removal policy (no Update sent)."""
    default, alt = raw_tables(synth.raw["Resources"]), raw_tables(synth_alt.raw["Resources"])
    for name in EXPORT_TYPES:
        a, b = default[name][1]["Properties"], alt[name][1]["Properties"]
        assert (a["RemovalPolicy"], b["RemovalPolicy"]) == ("retain", "destroy")
        assert {k: v for k, v in a.items() if k != "RemovalPolicy"} == {
            k: v for k, v in b.items() if k != "RemovalPolicy"
        }
    assert len({r[1]["Properties"]["Fingerprint"] for r in default.values()}) == len(EXPORT_TYPES)


def test_views_depend_on_their_table_resource(resources: Resources) -> None:
    found = raw_tables(resources)
    tables = {v["Properties"]["TableInput"]["Name"]: (k, v) for k, v in of_type(resources, "AWS::Glue::Table").items()}
    pointers_id, pointers = tables.pop(LATEST_TABLE)
    assert pointers["Properties"]["TableInput"]["PartitionKeys"] == []
    assert tables
    for name, (_, view) in tables.items():
        source = name.removesuffix("_typed").removesuffix("_latest")
        assert found[source][0] in view["DependsOn"], name
        # A latest view reads the pointer table too: created after it, deleted before it.
        assert (pointers_id in view["DependsOn"]) == name.endswith("_latest"), name


def test_the_tables_role_holds_only_the_glue_calls_it_makes_scoped_to_the_lake(resources: Resources) -> None:
    _, fn = function(resources, TABLES_HANDLER)
    props = fn["Properties"]
    actions = actions_of(role_statements(resources, props))
    assert actions == permissions.role_actions(permissions.TABLES)
    assert actions == {
        "glue:CreatePartitionIndex",
        "glue:GetPartitionIndexes",
        "glue:GetPartitions",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
        "glue:CreateTable",
        "glue:GetTable",
        "glue:UpdateTable",
        "glue:DeleteTable",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    by_sid = statements_by_sid(resources, TABLES_HANDLER)
    declared = [json.dumps(r) for r in listify(by_sid["DeclaredTables"]["Resource"])]
    assert len(declared) == 2 + len(EXPORT_TYPES)
    assert any(":catalog" in r for r in declared) and any(":database/exportlake" in r for r in declared)
    assert sorted(r.split(":table/")[1] for r in declared if ":table/" in r) == sorted(
        f'exportlake/{t}"]]}}' for t in EXPORT_TYPES
    )
    leaving = json.dumps(by_sid["TablesLeavingTheStack"]["Resource"])
    assert listify(by_sid["TablesLeavingTheStack"]["Action"]) == ["glue:DeleteTable"]
    assert ":table/exportlake/*" in leaving and ":database/exportlake" in leaving
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert by_sid["OwnLogGroup"]["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]}
    # Invoked by CloudFormation only, untraced, no settings, never run twice for one request.
    assert "TracingConfig" not in props
    assert "Environment" not in props  # no settings, no Powertools: each request names what it touches
    invoke = [
        c["Properties"]
        for c in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": function(resources, TABLES_HANDLER)[0]}
    ]
    assert invoke == [{"FunctionName": invoke[0]["FunctionName"], "MaximumRetryAttempts": 0, "Qualifier": "$LATEST"}]


def test_the_upgrade_deploy_keeps_the_old_tables_exactly_and_retains_them(tmp_path_factory: Any) -> None:
    """``upgradeFromGlueTables``: the raw tables as the previous version declared them (same ids and properties,
    recorded in ``legacy_raw_tables.json`` from that version's synth), only marked Retain; the next, normal
    deploy drops these ids from the template, so CloudFormation leaves the tables to the merging resources."""
    from pathlib import Path

    from .conftest import synthesize

    legacy = json.loads((Path(__file__).parent / "legacy_raw_tables.json").read_text())
    upgrade = synthesize(tmp_path_factory.mktemp("cdk-upgrade"), upgradeFromGlueTables=True)
    assert upgrade.error is None, upgrade.error  # cdk-nag clean
    resources = upgrade.raw["Resources"]
    assert not of_type(resources, RESOURCE_TYPE)
    for logical_id, old in legacy.items():
        now = resources[logical_id]
        assert now["Type"] == old["Type"] and now["Properties"] == old["Properties"], logical_id
        assert (now["DeletionPolicy"], now["UpdateReplacePolicy"]) == ("Retain", "Retain")
    views = [
        r
        for r in of_type(resources, "AWS::Glue::Table").values()
        if "ViewOriginalText" in r["Properties"]["TableInput"]
    ]
    assert views and all(set(v["DependsOn"]) & set(legacy) for v in views)


def test_the_normal_deploy_no_longer_holds_the_old_table_ids(resources: Resources) -> None:
    from pathlib import Path

    legacy = json.loads((Path(__file__).parent / "legacy_raw_tables.json").read_text())
    assert len(legacy) == len(EXPORT_TYPES) and not set(legacy) & set(resources)
