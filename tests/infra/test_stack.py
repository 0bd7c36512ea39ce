"""Template assertions for every part of the exportlake stack (default configuration unless noted)."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk.assertions import Match, Template

from exportlake import iam as permissions
from exportlake.domain import metricnames
from exportlake.domain.limits import VISIBILITY_TIMEOUT_SECONDS
from exportlake.domain.schemas import ATHENA_RESULTS_PREFIX, EXPORT_TYPES, RAW_PREFIX
from exportlake.settings import ENV_VARS, OPTIONAL_VARS
from infra.constructs.functions import COPIER_HANDLER, PLANNER_HANDLER, TABLES_HANDLER
from infra.constructs.privacy import ERASER_HANDLER

from .conftest import Synthesized

Resources = dict[str, Any]
POWERTOOLS = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}


def of_type(resources: Resources, cfn_type: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v["Type"] == cfn_type}


def one(resources: Resources, cfn_type: str, logical_prefix: str) -> tuple[str, dict[str, Any]]:
    found = [(k, v) for k, v in of_type(resources, cfn_type).items() if k.startswith(logical_prefix)]
    assert len(found) == 1, (cfn_type, logical_prefix, [k for k, _ in found])
    return found[0]


def function(resources: Resources, handler: str) -> tuple[str, dict[str, Any]]:
    found = [
        (k, v)
        for k, v in of_type(resources, "AWS::Lambda::Function").items()
        if v["Properties"].get("Handler") == handler
    ]
    assert len(found) == 1, handler
    return found[0]


def role_statements(resources: Resources, function_props: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = function_props["Role"]["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    for inline in resources[role_id]["Properties"].get("Policies", []):
        statements += inline["PolicyDocument"]["Statement"]
    assert "ManagedPolicyArns" not in resources[role_id]["Properties"]
    return statements


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for s in statements:
        acts = s["Action"]
        out |= {acts} if isinstance(acts, str) else set(acts)
    return out


def listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- lake -------------------------------------------------------------------------------------------------------


def test_lake_bucket_is_encrypted_versioned_private_logged(resources: Resources) -> None:
    _lake_id, lake = one(resources, "AWS::S3::Bucket", "LakeBucket")
    logs_id, logs = one(resources, "AWS::S3::Bucket", "LakeAccessLogs")
    for bucket in (lake, logs):
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "AES256"
        }
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert bucket["DeletionPolicy"] == "Retain"
        assert bucket["UpdateReplacePolicy"] == "Retain"
        assert "BucketName" not in props
    assert lake["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    assert lake["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_id}


def test_buckets_deny_insecure_transport(resources: Resources) -> None:
    policies = of_type(resources, "AWS::S3::BucketPolicy")
    secured = set()
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition", {}).get("Bool") == {
                "aws:SecureTransport": "false"
            }:
                secured.add(policy["Properties"]["Bucket"]["Ref"])
    assert secured == set(of_type(resources, "AWS::S3::Bucket"))


def test_lake_lifecycle(resources: Resources) -> None:
    _, lake = one(resources, "AWS::S3::Bucket", "LakeBucket")
    rules = {r["Id"]: r for r in lake["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-raw-originals"]["Prefix"] == f"{RAW_PREFIX}/"
    assert rules["expire-raw-originals"]["ExpirationInDays"] == 90
    assert rules["expire-athena-results"]["Prefix"] == f"{ATHENA_RESULTS_PREFIX}/"
    assert rules["expire-athena-results"]["ExpirationInDays"] == 7
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert all(r["Status"] == "Enabled" for r in rules.values())


def test_the_ledger_keeps_its_keys_and_gains_the_sparse_index_in_place(resources: Resources) -> None:
    """Upgrading a deployed stack: same logical id and key schema (no replacement, no item lost); the one change is
    an added global secondary index, which CloudFormation applies with UpdateTable."""
    table_id, table = one(resources, "AWS::DynamoDB::Table", "Ledger")
    assert table_id.startswith("LedgerTable")
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "export_name", "KeyType": "HASH"},
        {"AttributeName": "result_id", "KeyType": "RANGE"},
    ]
    assert "TableName" not in props
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "unfinished",
            "KeySchema": [
                {"AttributeName": "unfinished", "KeyType": "HASH"},
                {"AttributeName": "result_id", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]


def test_retain_data_false_destroys_and_raw_zero_keeps_forever(synth_alt: Synthesized) -> None:
    resources = synth_alt.raw["Resources"]
    _, lake = one(resources, "AWS::S3::Bucket", "LakeBucket")
    assert lake["DeletionPolicy"] == "Delete"
    assert of_type(resources, "Custom::S3AutoDeleteObjects")
    rules = {r["Id"] for r in lake["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert "expire-raw-originals" not in rules
    _, table = one(resources, "AWS::DynamoDB::Table", "Ledger")
    assert table["DeletionPolicy"] == "Delete"
    assert table["Properties"]["DeletionProtectionEnabled"] is False


# --- catalog ----------------------------------------------------------------------------------------------------


def test_glue_tables_match_the_schema_registry(resources: Resources) -> None:
    db_id, db = one(resources, "AWS::Glue::Database", "CatalogDatabase")
    assert db["Properties"]["DatabaseInput"]["Name"] == "exportlake"
    assert db["Properties"]["CatalogId"] == {"Ref": "AWS::AccountId"}
    lake_id, _ = one(resources, "AWS::S3::Bucket", "LakeBucket")
    # The raw tables are custom resources (tests/infra/test_catalog_tables.py): Glue tables are views, and the
    # latest-result pointer table (its columns are ours alone, so CloudFormation may own them).
    kinds = {t["Properties"]["TableInput"]["Name"]: t for t in of_type(resources, "AWS::Glue::Table").values()}
    pointers = kinds.pop("latest_results")["Properties"]["TableInput"]
    assert {t["Properties"]["TableInput"]["TableType"] for t in kinds.values()} == {"VIRTUAL_VIEW"}
    assert pointers["TableType"] == "EXTERNAL_TABLE" and pointers["PartitionKeys"] == []
    assert pointers["StorageDescriptor"]["Location"] == {"Fn::Join": ["", ["s3://", {"Ref": lake_id}, "/latest/"]]}
    tables = {t["Properties"]["TableName"]: t for t in of_type(resources, "Custom::ExportlakeTable").values()}
    assert set(tables) == set(EXPORT_TYPES)
    assert len(tables) == 10
    for name, export_type in EXPORT_TYPES.items():
        props = tables[name]["Properties"]
        assert props["DatabaseName"] == "exportlake"
        assert db_id in tables[name]["DependsOn"]
        assert props["Columns"] == list(export_type.columns)
        assert props["Bucket"] == {"Ref": lake_id}


def test_athena_workgroup_is_enforced_encrypted_and_capped(resources: Resources) -> None:
    lake_id, _ = one(resources, "AWS::S3::Bucket", "LakeBucket")
    wg_id, wg = one(resources, "AWS::Athena::WorkGroup", "CatalogWorkGroup")
    conf = wg["Properties"]["WorkGroupConfiguration"]
    assert conf["EnforceWorkGroupConfiguration"] is True
    assert conf["BytesScannedCutoffPerQuery"] == 10240 * 1024 * 1024
    assert conf["EngineVersion"] == {"SelectedEngineVersion": "AUTO"}
    result = conf["ResultConfiguration"]
    assert result["EncryptionConfiguration"] == {"EncryptionOption": "SSE_S3"}
    assert result["OutputLocation"] == {"Fn::Join": ["", ["s3://", {"Ref": lake_id}, "/athena-results/"]]}
    queries = of_type(resources, "AWS::Athena::NamedQuery")
    assert {q["Properties"]["Name"] for q in queries.values()} >= {"WinRatePerGameType", "LatestResultPerExport"}
    for query in queries.values():
        assert query["Properties"]["WorkGroup"] == {"Ref": wg_id}
        assert query["Properties"]["Database"] == "exportlake"
        for table in re.findall(r'"exportlake"\."([a-z_]+)"', query["Properties"]["QueryString"]):
            assert table == "latest_results" or table.removesuffix("_typed").removesuffix("_latest") in EXPORT_TYPES


# --- ledger -----------------------------------------------------------------------------------------------------


def test_ledger_table(template: Template) -> None:
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "DeletionPolicy": "Retain",
            "Properties": {
                "KeySchema": [
                    {"AttributeName": "export_name", "KeyType": "HASH"},
                    {"AttributeName": "result_id", "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": Match.array_with([{"AttributeName": "export_name", "AttributeType": "S"}]),
                "BillingMode": "PAY_PER_REQUEST",
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "DeletionProtectionEnabled": True,
                "TableName": Match.absent(),
            },
        },
    )


# --- pipeline ---------------------------------------------------------------------------------------------------


def test_functions_runtime_and_sizing(resources: Resources) -> None:
    expected = {
        PLANNER_HANDLER: (512, 300),
        COPIER_HANDLER: (1769, 900),
        TABLES_HANDLER: (256, 120),
        ERASER_HANDLER: (1769, 900),
    }
    for handler, (memory, timeout) in expected.items():
        _, fn = function(resources, handler)
        props = fn["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        if handler != TABLES_HANDLER:  # a few Glue calls at deploy time: not traced
            assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["MemorySize"] == memory
        assert props["Timeout"] == timeout
        assert "FunctionName" not in props
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert resources[log_group]["Properties"]["RetentionInDays"] == 30
    assert len(of_type(resources, "AWS::Lambda::Function")) == 4


def test_function_environment_is_exactly_the_settings_contract(resources: Resources) -> None:
    ids = {
        t: one(resources, t, p)[0]
        for t, p in [
            ("AWS::S3::Bucket", "LakeBucket"),
            ("AWS::DynamoDB::Table", "Ledger"),
            ("AWS::SNS::Topic", "AlertsTopic"),
            ("AWS::SecretsManager::Secret", "GatewaySecret"),
        ]
    }
    # The copy-jobs queue's DLQ is its redrive's target.
    queue_id, queue = one(resources, "AWS::SQS::Queue", "CopyJobsQueue")
    salt_id, _ = one(resources, "AWS::SecretsManager::Secret", "PrivacySalt")
    dlq_id = queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    expected = {
        "EXPORTLAKE_GATEWAY_URL": "https://gateway.example.neoday.com",
        "EXPORTLAKE_SECRET_ID": {"Ref": ids["AWS::SecretsManager::Secret"]},
        "EXPORTLAKE_BUCKET": {"Ref": ids["AWS::S3::Bucket"]},
        "EXPORTLAKE_GLUE_DATABASE": "exportlake",
        "EXPORTLAKE_LEDGER_TABLE": {"Ref": ids["AWS::DynamoDB::Table"]},
        "EXPORTLAKE_TOPIC_ARN": {"Ref": ids["AWS::SNS::Topic"]},
        "EXPORTLAKE_QUEUE_URL": {"Ref": queue_id},
        "EXPORTLAKE_DLQ_URL": {"Ref": dlq_id},
        "EXPORTLAKE_DOWNLOAD_HOSTS": "*.digitaloceanspaces.com",
        "EXPORTLAKE_GATEWAY_MAX_RPS": "20",
        "EXPORTLAKE_EXPIRY_WARNING_HOURS": "24",
        "EXPORTLAKE_RECONCILE_HOURS": "24",
        "EXPORTLAKE_RAW_ARCHIVE": "on",
        "EXPORTLAKE_PRIVACY_SALT_ID": {"Ref": salt_id},
        "EXPORTLAKE_LAKE_RETENTION_DAYS": "0",
        "POWERTOOLS_SERVICE_NAME": "exportlake",
        "POWERTOOLS_METRICS_NAMESPACE": "exportlake",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    for handler in (PLANNER_HANDLER, COPIER_HANDLER):
        env = function(resources, handler)[1]["Properties"]["Environment"]["Variables"]
        # EXPORTLAKE_DLQ_URL: the planner's --retry-failed clears the DLQ (the runtime's settings add it).
        # EXPORTLAKE_RAW_ARCHIVE: the copier's switch (bootstrap reads it), set from cdk.json's rawArchive.
        assert set(env) - POWERTOOLS == set(ENV_VARS) | set(OPTIONAL_VARS) | {
            "EXPORTLAKE_DLQ_URL",
            "EXPORTLAKE_RAW_ARCHIVE",
        }
        assert set(env) & POWERTOOLS == POWERTOOLS
        assert env == expected


def test_imported_secret_is_passed_by_name(synth_alt: Synthesized) -> None:
    resources = synth_alt.raw["Resources"]
    assert [k for k in of_type(resources, "AWS::SecretsManager::Secret") if k.startswith("GatewaySecret")] == []
    for handler in (PLANNER_HANDLER, COPIER_HANDLER):
        env = function(resources, handler)[1]["Properties"]["Environment"]["Variables"]
        assert env["EXPORTLAKE_SECRET_ID"] == "prod/neoday-gateway"
        assert env["EXPORTLAKE_GATEWAY_MAX_RPS"] == "7.5" and env["EXPORTLAKE_EXPIRY_WARNING_HOURS"] == "48"
        assert env["EXPORTLAKE_RAW_ARCHIVE"] == "off"


def copier_mapping(resources: Resources) -> dict[str, Any]:
    """The copier's event source mapping (the eraser has its own)."""
    copier_id, _ = function(resources, COPIER_HANDLER)
    (mapping,) = [
        m
        for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": copier_id}
    ]
    return mapping


def test_copy_queue_wiring(resources: Resources) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    main_id, main = one(resources, "AWS::SQS::Queue", "CopyJobsQueue")
    dlq_id = main["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert main["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5
    # At least the copier's timeout (Lambda's rule), far below the old 6 x 900 s: a killed copier's job returns soon.
    assert main["Properties"]["VisibilityTimeout"] == VISIBILITY_TIMEOUT_SECONDS
    assert 900 <= VISIBILITY_TIMEOUT_SECONDS < 6 * 900
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    # copy jobs, its DLQ, the schedule's DLQ, the planner's failed runs, erase jobs and their DLQ
    assert len(queues) == 6
    assert dlq_id in queues
    copier_id, _ = function(resources, COPIER_HANDLER)
    mapping = copier_mapping(resources)
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": copier_id}
    assert props["EventSourceArn"] == {"Fn::GetAtt": [main_id, "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"] == {"MaximumConcurrency": 4}
    assert props["BatchSize"] == 1
    tls_denied = set()
    for policy in of_type(resources, "AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(statement.get("Condition")):
                tls_denied |= {q["Ref"] for q in policy["Properties"]["Queues"]}
    assert tls_denied == set(queues)


def test_copy_concurrency_and_memory_from_config(synth_alt: Synthesized) -> None:
    resources = synth_alt.raw["Resources"]
    mapping = copier_mapping(resources)
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 10}
    assert function(resources, COPIER_HANDLER)[1]["Properties"]["MemorySize"] == 3008


def test_schedule(resources: Resources) -> None:
    planner_id, _ = function(resources, PLANNER_HANDLER)
    (schedule,) = of_type(resources, "AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == "rate(1 hour)"
    assert props["ScheduleExpressionTimezone"] == "UTC"
    assert props["State"] == "ENABLED"
    target = props["Target"]
    assert target["Arn"] == {"Fn::GetAtt": [planner_id, "Arn"]}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}
    dlq_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert dlq_id.startswith("ScheduleDlq")
    role = resources[target["RoleArn"]["Fn::GetAtt"][0]]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "scheduler.amazonaws.com"
    }


def test_schedule_from_config(synth_alt: Synthesized) -> None:
    (schedule,) = of_type(synth_alt.raw["Resources"], "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["ScheduleExpression"] == "cron(15 6 * * ? *)"
    assert schedule["Properties"]["ScheduleExpressionTimezone"] == "Europe/Amsterdam"


def test_failed_planner_runs_land_in_an_alarmed_queue(resources: Resources) -> None:
    planner_id, _ = function(resources, PLANNER_HANDLER)
    (config,) = [
        c
        for c in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": planner_id}
    ]
    props = config["Properties"]
    assert props["Qualifier"] == "$LATEST"
    assert props["MaximumRetryAttempts"] == 2
    queue_id = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert resources[queue_id]["Type"] == "AWS::SQS::Queue"
    assert queue_id.startswith("ScheduleFailedRuns")
    # The planner's role may send there (Lambda sends as the function), and an alarm watches the queue.
    statements = role_statements(resources, function(resources, PLANNER_HANDLER)[1]["Properties"])
    sends = [s for s in statements if s.get("Sid") == "FailedRunsSend"]
    assert sends == [
        {
            "Sid": "FailedRunsSend",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
        }
    ]
    watched = [
        a["Properties"]
        for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Dimensions", [{}])[0].get("Value") == {"Fn::GetAtt": [queue_id, "QueueName"]}
    ]
    assert len(watched) == 1
    assert watched[0]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert watched[0]["Threshold"] == 0


# --- IAM --------------------------------------------------------------------------------------------------------

XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_no_wildcard_actions_or_resources_on_data(resources: Resources) -> None:
    for logical_id, policy in of_type(resources, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = listify(statement["Action"])
            for action in actions:
                assert action != "*", logical_id
                assert not action.endswith(":*"), (logical_id, action)
                service, name = action.split(":")
                if service in ("s3", "dynamodb", "glue", "secretsmanager", "sqs", "sns"):
                    assert "*" not in name, (logical_id, action)
            if "*" in listify(statement["Resource"]):
                assert set(actions) <= XRAY, (logical_id, actions)


def statements_by_sid(resources: Resources, handler: str) -> dict[str | None, dict[str, Any]]:
    statements = role_statements(resources, function(resources, handler)[1]["Properties"])
    by_sid = {s.get("Sid"): s for s in statements}
    assert len(by_sid) == len(statements), "one statement per Sid"
    return by_sid


def test_each_role_holds_exactly_the_permissions_list(resources: Resources) -> None:
    """Both roles: the actions are exactly those of exportlake.iam (code + Lambda service)."""
    for name, handler in ((permissions.PLANNER, PLANNER_HANDLER), (permissions.COPIER, COPIER_HANDLER)):
        _, fn = function(resources, handler)
        actions = actions_of(role_statements(resources, fn["Properties"]))
        assert actions == permissions.role_actions(name), name
        by_sid = statements_by_sid(resources, handler)
        for grant in permissions.GRANTS[name] + permissions.LAMBDA_GRANTS[name]:
            if grant == permissions.TRACING:  # CDK's own statement, no Sid
                (tracing,) = [s for s in by_sid.values() if s.get("Resource") == "*"]
                assert sorted(listify(tracing["Action"])) == sorted(grant.actions)
                continue
            if grant.resource == permissions.SECRET_KEY:  # only with existingSecretKmsKeyArn (test_governance.py)
                assert grant.sid not in by_sid
                continue
            statement = by_sid[grant.sid]
            assert statement["Effect"] == "Allow"
            assert sorted(listify(statement["Action"])) == sorted(grant.actions), (name, grant.sid)
            assert "*" not in listify(statement["Resource"]), (name, grant.sid)


def test_grants_are_scoped_to_their_resources(resources: Resources) -> None:
    ids = {
        "bucket": one(resources, "AWS::S3::Bucket", "LakeBucket")[0],
        "ledger": one(resources, "AWS::DynamoDB::Table", "Ledger")[0],
        "topic": one(resources, "AWS::SNS::Topic", "AlertsTopic")[0],
        "key": one(resources, "AWS::KMS::Key", "AlertsTopicKey")[0],
        "secret": one(resources, "AWS::SecretsManager::Secret", "GatewaySecret")[0],
        "queue": one(resources, "AWS::SQS::Queue", "CopyJobsQueue")[0],
        "dlq": one(resources, "AWS::SQS::Queue", "CopyJobsDlq")[0],
    }
    planner = statements_by_sid(resources, PLANNER_HANDLER)
    copier = statements_by_sid(resources, COPIER_HANDLER)
    for by_sid in (planner, copier):
        assert by_sid["GatewaySecret"]["Resource"] == {"Ref": ids["secret"]}
        table_arn = {"Fn::GetAtt": [ids["ledger"], "Arn"]}
        assert by_sid["Ledger"]["Resource"] == [table_arn, {"Fn::Join": ["", [table_arn, "/index/unfinished"]]}]
        assert by_sid["Notify"]["Resource"] == {"Ref": ids["topic"]}
        assert by_sid["NotifyKey"]["Resource"] == {"Fn::GetAtt": [ids["key"], "Arn"]}
    assert planner["CopyJobsSend"]["Resource"] == {"Fn::GetAtt": [ids["queue"], "Arn"]}
    assert planner["CopyJobsDlqClear"]["Resource"] == {"Fn::GetAtt": [ids["dlq"], "Arn"]}
    assert copier["CopyJobsConsume"]["Resource"] == {"Fn::GetAtt": [ids["queue"], "Arn"]}
    assert copier["LakeBucket"]["Resource"] == {"Fn::GetAtt": [ids["bucket"], "Arn"]}

    def object_prefixes(statement: dict[str, Any]) -> list[str]:
        out = []
        for resource in listify(statement["Resource"]):
            head, tail = resource["Fn::Join"][1]
            assert head == {"Fn::GetAtt": [ids["bucket"], "Arn"]}
            out.append(tail)
        return sorted(out)

    # Reads, writes and deletes (every version, for suppression) of a result's own objects, writes and reads of the
    # latest-result pointers; never athena-results/.
    result_prefixes = ["/index/*", "/lake/*", "/manifests/*", "/raw/*"]
    assert object_prefixes(copier["LakeWrite"]) == sorted([*result_prefixes, "/latest/*"])
    assert object_prefixes(copier["LakeAbortUploads"]) == ["/lake/*", "/raw/*"]
    assert object_prefixes(copier["PointersRead"]) == ["/latest/*"]
    assert object_prefixes(copier["ResultsRead"]) == result_prefixes
    assert object_prefixes(copier["ResultsPurge"]) == result_prefixes
    glue = json.dumps(copier["GlueCatalogOfTheLake"]["Resource"])
    for part in (":catalog", ":database/exportlake", ":table/exportlake/*"):
        assert part in glue
    assert len(copier["GlueCatalogOfTheLake"]["Resource"]) == 3
    # The planner touches neither the bucket nor the catalog, the copier never queues a job.
    assert not {a for a in permissions.role_actions(permissions.PLANNER) if a.startswith(("s3:", "glue:"))}
    assert "sqs:SendMessage" not in permissions.role_actions(permissions.COPIER)


def test_the_copy_queue_mapping_gets_no_extra_grant(resources: Resources) -> None:
    """The event source mapping is plain: the copier's role holds exactly the three actions Lambda polls with."""
    statements = role_statements(resources, function(resources, COPIER_HANDLER)[1]["Properties"])
    sqs_actions = {a for a in actions_of(statements) if a.startswith("sqs:")}
    assert sqs_actions == {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}


def test_imported_secret_is_granted_by_name_with_the_random_suffix(synth_alt: Synthesized) -> None:
    resources = synth_alt.raw["Resources"]
    for handler in (PLANNER_HANDLER, COPIER_HANDLER):
        statement = statements_by_sid(resources, handler)["GatewaySecret"]
        assert json.dumps(statement["Resource"]).endswith(':secret:prod/neoday-gateway-??????"]]}')


# --- secret -----------------------------------------------------------------------------------------------------


def test_secret_has_no_value_in_the_template(resources: Resources) -> None:
    _, secret = one(resources, "AWS::SecretsManager::Secret", "GatewaySecret")
    props = secret["Properties"]
    assert "SecretString" not in props
    assert "Name" not in props
    generated = props["GenerateSecretString"]
    assert json.loads(generated["SecretStringTemplate"]) == {"client_id": "REPLACE_ME"}
    assert generated["GenerateStringKey"] == "client_secret"


# --- alerts -----------------------------------------------------------------------------------------------------


def test_topic_is_kms_encrypted_and_tls_only(resources: Resources) -> None:
    _topic_id, topic = one(resources, "AWS::SNS::Topic", "AlertsTopic")
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    assert resources[key_id]["Properties"]["EnableKeyRotation"] is True
    key_policy = json.dumps(resources[key_id]["Properties"]["KeyPolicy"])
    assert "cloudwatch.amazonaws.com" in key_policy
    (policy,) = of_type(resources, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s.get("Condition")) for s in statements)
    assert not of_type(resources, "AWS::SNS::Subscription")


def test_topic_policy_lets_this_stacks_alarms_publish(resources: Resources) -> None:
    """A topic policy replaces SNS's default: without this Allow no alarm could deliver its message."""
    topic_id, _ = one(resources, "AWS::SNS::Topic", "AlertsTopic")
    (policy,) = of_type(resources, "AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": topic_id}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arns = allow["Condition"]["ArnLike"]["aws:SourceArn"]
    assert sorted(a["Fn::GetAtt"][0] for a in source_arns) == sorted(of_type(resources, "AWS::CloudWatch::Alarm"))
    assert all(a["Fn::GetAtt"][1] == "Arn" for a in source_arns)


def test_email_subscriptions_from_config(synth_alt: Synthesized) -> None:
    subs = of_type(synth_alt.raw["Resources"], "AWS::SNS::Subscription").values()
    assert sorted(s["Properties"]["Endpoint"] for s in subs) == ["data@example.com", "ops@example.com"]
    assert {s["Properties"]["Protocol"] for s in subs} == {"email"}


def test_alarms_route_to_the_topic(resources: Resources) -> None:
    topic_id, _ = one(resources, "AWS::SNS::Topic", "AlertsTopic")
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    assert len(alarms) == 11
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic_id}]
    by_metric = {a["Properties"].get("MetricName"): a["Properties"] for a in alarms.values()}
    fresh = by_metric["ResultsCopied"]
    assert fresh["Namespace"] == "exportlake"
    assert fresh["Dimensions"] == [{"Name": "service", "Value": "exportlake"}]
    assert fresh["Statistic"] == "Sum"
    assert fresh["Period"] == 24 * 3600
    assert fresh["ComparisonOperator"] == "LessThanThreshold"
    assert fresh["Threshold"] == 1
    assert fresh["TreatMissingData"] == "breaching"
    dlq_alarms = [
        a for a in alarms.values() if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    ]
    dlq_ids = {a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in dlq_alarms}
    # Every queue but the two job queues is a dead-letter queue of some kind, and each is watched.
    queues = of_type(resources, "AWS::SQS::Queue")
    assert dlq_ids == {k for k, v in queues.items() if "RedrivePolicy" not in v["Properties"]}
    assert len(dlq_ids) == 4  # copy jobs, schedule, failed runs, erase jobs
    error_alarms = [a["Properties"] for a in alarms.values() if a["Properties"].get("MetricName") == "Errors"]
    assert {a["Dimensions"][0]["Value"]["Ref"] for a in error_alarms} == {
        function(resources, PLANNER_HANDLER)[0],
        function(resources, COPIER_HANDLER)[0],
    }
    zero_metrics = {
        metricnames.RESULTS_EXPIRED,
        metricnames.RESULTS_EXPIRING,
        metricnames.RUNS_FAILED,
        metricnames.ITEMS_INVALID,
    }
    metric_alarms = [a for name, a in by_metric.items() if name in zero_metrics]
    assert len(metric_alarms) == 4
    for props in metric_alarms:
        assert props["Namespace"] == "exportlake"
        assert props["Dimensions"] == [{"Name": "service", "Value": "exportlake"}]
        assert props["Statistic"] == "Sum"
        assert props["TreatMissingData"] == "notBreaching"
    for props in [a["Properties"] for a in dlq_alarms] + error_alarms + metric_alarms:
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["Threshold"] == 0


def test_dashboard_shows_runtime_metrics(resources: Resources) -> None:
    (dashboard,) = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in metricnames.ALL:
        assert metric in body


# --- stack-wide -------------------------------------------------------------------------------------------------


def test_outputs(synth: Synthesized) -> None:
    assert set(synth.raw["Outputs"]) >= {
        "BucketName",
        "SecretId",
        "TopicArn",
        "AthenaWorkGroup",
        "GlueDatabase",
        "QueueUrl",
    }


def test_nothing_hard_coded_to_an_account_or_region(synth: Synthesized) -> None:
    text = json.dumps(synth.raw)
    assert not re.search(r"\b\d{12}\b", text)
    assert not re.search(
        r"\b(us|eu|ap|sa|ca|me|af|il|mx)-(north|south|east|west|central|northeast|southeast)-\d\b", text
    )
    assert "arn:aws:" not in text  # partitions come from AWS::Partition


def test_only_required_physical_names(resources: Resources) -> None:
    named = {
        "AWS::S3::Bucket": "BucketName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::SNS::Topic": "TopicName",
        "AWS::DynamoDB::Table": "TableName",
        "AWS::Lambda::Function": "FunctionName",
        "AWS::IAM::Role": "RoleName",
        "AWS::Scheduler::Schedule": "Name",
        "AWS::Logs::LogGroup": "LogGroupName",
    }
    for cfn_type, prop in named.items():
        for logical_id, resource in of_type(resources, cfn_type).items():
            assert prop not in resource.get("Properties", {}), (logical_id, prop)
