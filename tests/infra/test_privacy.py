"""The synthesized template's erasure parts: salt secret, eraser, erase-jobs queue, grants, retention schedule."""

from __future__ import annotations

import json
from typing import Any

from exportlake import iam as permissions
from infra.constructs.functions import COPIER_HANDLER, PLANNER_HANDLER
from infra.constructs.privacy import ERASER_HANDLER
from tests.infra.conftest import Synthesized
from tests.infra.test_stack import actions_of, function, of_type, one, role_statements, statements_by_sid

Resources = dict[str, Any]


def test_the_salt_is_generated_at_deploy_time_and_only_two_functions_read_it(resources: Resources) -> None:
    salt_id, salt = one(resources, "AWS::SecretsManager::Secret", "PrivacySalt")
    assert "SecretString" not in salt["Properties"]
    assert salt["Properties"]["GenerateSecretString"]["PasswordLength"] >= 64
    readers = []
    for handler in (PLANNER_HANDLER, COPIER_HANDLER, ERASER_HANDLER):
        statement = statements_by_sid(resources, handler).get("PrivacySalt")
        if statement is not None:
            assert statement["Resource"] == {"Ref": salt_id}
            readers.append(handler)
    assert readers == [COPIER_HANDLER, ERASER_HANDLER]


def test_the_eraser_works_its_own_queue_in_parallel(resources: Resources) -> None:
    eraser_id, eraser = function(resources, ERASER_HANDLER)
    queue_id, queue = one(resources, "AWS::SQS::Queue", "EraserQueue")
    dlq_id, _ = one(resources, "AWS::SQS::Queue", "EraserDlq")
    assert queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
    env = eraser["Properties"]["Environment"]["Variables"]
    assert env["EXPORTLAKE_ERASE_QUEUE_URL"] == {"Ref": queue_id}
    (mapping,) = [
        m
        for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": eraser_id}
    ]
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"] >= 2
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert statements_by_sid(resources, ERASER_HANDLER)["EraseJobsSend"]["Resource"] == {
        "Fn::GetAtt": [queue_id, "Arn"]
    }


def test_only_the_eraser_and_the_copier_may_delete_object_versions(resources: Resources) -> None:
    holders = set()
    for handler in (PLANNER_HANDLER, COPIER_HANDLER, ERASER_HANDLER):
        actions = actions_of(role_statements(resources, function(resources, handler)[1]["Properties"]))
        if "s3:DeleteObjectVersion" in actions:
            holders.add(handler)
    assert holders == {COPIER_HANDLER, ERASER_HANDLER}
    purge = statements_by_sid(resources, ERASER_HANDLER)["ResultsPurge"]
    tails = sorted(r["Fn::Join"][1][1] for r in purge["Resource"])
    assert tails == ["/index/*", "/lake/*", "/manifests/*", "/raw/*"]  # never athena-results/ or the access logs
    assert "glue:UpdatePartition" in permissions.code_actions(permissions.ERASER)
    assert "glue:DeletePartition" not in permissions.code_actions(permissions.COPIER)


def test_retention_runs_daily_only_when_configured(resources: Resources, synth_alt: Synthesized) -> None:
    assert not of_type(resources, "AWS::Events::Rule")
    alt = synth_alt.raw["Resources"]
    (rule,) = of_type(alt, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 day)"
    (target,) = rule["Properties"]["Targets"]
    eraser_id, eraser = function(alt, ERASER_HANDLER)
    assert target["Arn"] == {"Fn::GetAtt": [eraser_id, "Arn"]}
    assert json.loads(target["Input"]) == {"action": "retire"}
    assert eraser["Properties"]["Environment"]["Variables"]["EXPORTLAKE_LAKE_RETENTION_DAYS"] == "400"
    outputs = synth_alt.raw["Outputs"]
    assert "EraserFunction" in outputs
