"""cdk-nag AwsSolutions checks, run as a CDK validation plugin: an unacknowledged finding fails the synth.

Each acknowledgment sits on the narrowest construct that needs it and states why the finding is accepted.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from exportlake import iam as permissions
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
    functions = stack.functions
    runtime_reason = (
        "Python 3.12 is pinned on purpose: the asset's wheels (pyarrow, msgspec, isal) are built for cp312 and "
        "the runtime is tested on 3.12; the runtime moves with requirements and the test interpreter together."
    )
    for fn, role in ((functions.planner, "PlannerRole"), (functions.copier, "CopierRole")):
        acknowledge(fn, "L1", runtime_reason)
        acknowledge(functions.node.find_child(role), "IAM5[Resource::*]", XRAY_REASON)

    acknowledge(functions.tables, "L1", runtime_reason)
    acknowledge(
        functions.node.find_child("TablesRole"),
        "IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/"
        f"{stack.catalog.database_name}/*]",
        "glue:DeleteTable only (create/get/update name each declared table): a table whose export type leaves the "
        "registry is deleted in CloudFormation's cleanup after the update, when the role already lists only the new "
        "names; limited to the tables of the lake's own Glue database, and called only with retainData=false.",
    )

    bucket_arn = stack.resolve(stack.lake.bucket.bucket_arn)["Fn::GetAtt"][0]
    for prefix in sorted({p for g in permissions.GRANTS[permissions.TABLES] for p in g.prefixes}):
        acknowledge(
            functions.node.find_child("TablesRole"),
            f"IAM5[Resource::<{bucket_arn}.Arn>/{prefix}/*]",
            f"The upgrade backfill of latest-result pointers reads manifests and reads/writes pointers whose keys are "
            f"made per export; the grant covers {prefix}/ of the lake bucket only, with explicit object actions.",
        )

    copier_role = functions.node.find_child("CopierRole")
    acknowledge(
        copier_role,
        "IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/"
        f"{stack.catalog.database_name}/*]",
        "The copier creates and updates tables of export types that appear at run time (an unknown export type can "
        "show up any day); the grant is limited to the tables of the lake's own Glue database.",
    )
    eraser_role = stack.eraser.node.find_child("EraserRole")
    acknowledge(stack.eraser.function, "L1", runtime_reason)
    acknowledge(eraser_role, "IAM5[Resource::*]", XRAY_REASON)
    for grantee, function in ((copier_role, permissions.COPIER), (eraser_role, permissions.ERASER)):
        for prefix in sorted({p for g in permissions.GRANTS[function] for p in g.prefixes}):
            acknowledge(
                grantee,
                f"IAM5[Resource::<{bucket_arn}.Arn>/{prefix}/*]",
                f"Object keys under {prefix}/ are made per export result at run time; the grant covers that prefix "
                "of the lake bucket only, with explicit object actions.",
            )
    acknowledge(
        eraser_role,
        "IAM5[Resource::arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/"
        f"{stack.catalog.database_name}/*]",
        "The eraser reads and moves partitions (GetPartition/UpdatePartition) of any table of the lake's own Glue "
        "database, including tables of export types that appear at run time.",
    )
    acknowledge(
        stack.salt.secret,
        "SMG4",
        "The salt of person keys must never change: the suppression list and every id index are keyed by it, so a "
        "rotation would let erased persons back in. It is generated at deploy time and never leaves AWS.",
    )
    if not stack.secret.imported:
        acknowledge(
            stack.secret.secret,
            "SMG4",
            "The client id/secret are issued by the NeoDay gateway's administrators; they cannot be rotated from "
            "AWS (no API to mint a new pair), so rotation is done by the vendor and pasted into the secret.",
        )
    acknowledge(
        stack.schedule.dlq,
        "SQS3",
        "This queue is itself a dead-letter queue: the EventBridge Scheduler target's DLQ (CDK names it only on "
        "the schedule, so the check does not see the redrive).",
    )
    acknowledge(
        stack.schedule.failed_runs,
        "SQS3",
        "This queue is itself a dead-letter queue: the planner's on-failure destination for async invocations "
        "that failed every retry (alarmed), so it needs no DLQ of its own.",
    )
    scheduler_role = next(c for c in stack.node.children if c.node.id.startswith("SchedulerRoleForTarget"))
    acknowledge(
        scheduler_role,
        f"IAM5[Resource::<{stack.resolve(functions.planner.function_arn)['Fn::GetAtt'][0]}.Arn>:*]",
        "Made by the Scheduler LambdaInvoke target: lambda:InvokeFunction on the planner and its versions/aliases "
        "(':*' qualifier), nothing else.",
    )
