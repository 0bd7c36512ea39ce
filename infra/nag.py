"""cdk-nag AwsSolutions checks, run as a CDK validation plugin: an unacknowledged finding fails the synth.

Each acknowledgment sits on the narrowest construct that needs it and states why the finding is accepted.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from infra.stack import ExportLakeStack

XRAY_REASON = (
    "X-Ray tracing (Tracing.ACTIVE) adds xray:PutTraceSegments/PutTelemetryRecords, which support no "
    "resource-level permissions: AWS documents Resource '*' for them."
)


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding (``IAM5[Resource::*]`` style ids included) on ``scope``."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions::AwsSolutions-{finding}", reason=reason))


def add_nag(app: cdk.App, stack: ExportLakeStack) -> None:
    """Add the checks to ``app`` and acknowledge the findings the design accepts, each with its reason."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    pipeline = stack.pipeline
    runtime_reason = (
        "Python 3.12 is pinned on purpose: the asset's wheels (pyarrow, msgspec, isal) are built for cp312 and "
        "the runtime is tested on 3.12; the runtime moves with requirements and the test interpreter together."
    )
    kms_reason = (
        "Publishing to the KMS-encrypted topic needs kms:GenerateDataKey* and kms:Decrypt on that one key "
        "(grant made by topic.grant_publish); the resource is the topic's key only."
    )
    for fn, role in ((pipeline.planner, "PlannerRole"), (pipeline.copier, "CopierRole")):
        acknowledge(fn, "L1", runtime_reason)
        policy = pipeline.node.find_child(role)
        acknowledge(policy, "IAM5[Resource::*]", XRAY_REASON)
        acknowledge(policy, "IAM5[Action::kms:GenerateDataKey*]", kms_reason)

    copier_role = pipeline.node.find_child("CopierRole")
    bucket_arn = stack.resolve(stack.lake.bucket.bucket_arn)["Fn::GetAtt"][0]
    for prefix in ("lake", "raw", "manifests"):
        acknowledge(
            copier_role,
            f"IAM5[Resource::<{bucket_arn}.Arn>/{prefix}/*]",
            f"Object keys under {prefix}/ are made per export result at run time; the grant covers that prefix of "
            "the lake bucket only, with explicit object actions.",
        )
    acknowledge(
        copier_role,
        "IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/"
        f"{stack.catalog.database_name}/*]",
        "The copier creates and updates tables of export types that appear at run time (an unknown export type can "
        "show up any day); the grant is limited to the tables of the lake's own Glue database.",
    )
    if not stack.secret.imported:
        acknowledge(
            stack.secret.secret,
            "SMG4",
            "The client id/secret are issued by the NeoDay gateway's administrators; they cannot be rotated from "
            "AWS (no API to mint a new pair), so rotation is done by the vendor and pasted into the secret.",
        )
    acknowledge(
        pipeline.schedule_dlq,
        "SQS3",
        "This queue is itself a dead-letter queue: the EventBridge Scheduler target's DLQ (CDK names it only on "
        "the schedule, so the check does not see the redrive).",
    )
    scheduler_role = next(c for c in stack.node.children if c.node.id.startswith("SchedulerRoleForTarget"))
    acknowledge(
        scheduler_role,
        f"IAM5[Resource::<{stack.resolve(pipeline.planner.function_arn)['Fn::GetAtt'][0]}.Arn>:*]",
        "Made by the Scheduler LambdaInvoke target: lambda:InvokeFunction on the planner and its versions/aliases "
        "(':*' qualifier), nothing else.",
    )
