"""The first-deploy checklist of docs/deploy.md as ``exportlake doctor`` links: bootstrap, the stack, Lake Formation
mode, the secret's key, and what the alarms mean on the first day.

Each check reads the account (and, when the stack is named with ``--stack`` or ``EXPORTLAKE_STACK``, the deployed
stack's outputs) and returns one line, or raises ``Broken`` naming the fix and the checklist's section. A check that
cannot apply (a local emulator, no stack named, no permission to read a setting) passes with "not checked: …".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from exportlake.domain.wording import describe

DOCS = "docs/deploy.md"
#: The principal Lake Formation's "Use only IAM access control" defaults grant ALL.
IAM_ALLOWED = "IAM_ALLOWED_PRINCIPALS"
#: What each alarm of the stack means, and what to do (by the alarm's logical id; CloudFormation names an alarm
#: ``<stack>-<logical id>-<suffix>``).
ALARMS: dict[str, str] = {
    "FreshnessAlarm": "no result copied within freshnessHours: expected on the first day until the first copy lands",
    "CopyDlqAlarm": "copy jobs failed every retry: fix the cause (doctor), then exportlake sync --retry-failed",
    "ScheduleDlqAlarm": "the scheduler could not invoke the planner: read the schedule DLQ's message",
    "FailedRunsAlarm": "planner runs failed after Lambda's retries: read the sync.failed notice for the cause",
    "PlannerErrorsAlarm": "the planner function reported errors: read its log group",
    "CopierErrorsAlarm": "the copier function reported errors: read its log group",
    "ResultsExpiredAlarm": "results expired on the gateway before they were copied (lost): check the copier's errors",
    "ResultsExpiringAlarm": "uncopied results expire soon: run exportlake sync now",
    "RunsFailedAlarm": "a sync run failed as a whole: read the sync.failed notice for the cause",
    "ItemsInvalidAlarm": "items from the gateway failed validation and were skipped: read the *.invalid notices",
}
Clients = Callable[[str], Any]


class Broken(Exception):
    """A check failed: ``detail`` and ``fix`` say why and what to do."""

    def __init__(self, detail: str, fix: str = ""):
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


def _local() -> bool:
    return bool(os.environ.get("AWS_ENDPOINT_URL", "").strip())


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _denied(exc: BaseException) -> bool:
    return _code(exc) in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")


def check_bootstrap(state: Any, clients: Clients) -> str:
    """The account and region are bootstrapped for CDK (the CDKToolkit stack)."""
    if _local():
        return "not checked: a local endpoint needs no CDK bootstrap"
    try:
        stacks = clients("cloudformation").describe_stacks(StackName="CDKToolkit")["Stacks"]
    except Exception as exc:
        if _denied(exc):
            return f"not checked: {describe(exc)}"
        raise Broken(
            "this account and region are not bootstrapped for CDK (no CDKToolkit stack)",
            f"npx cdk bootstrap aws://<account>/<region> ({DOCS}#1-bootstrap-the-account)",
        ) from None
    return f"CDKToolkit is {stacks[0]['StackStatus']}"


def check_stack(state: Any, clients: Clients) -> str:
    """The named stack is deployed and settled; its outputs are read for the checks after this one."""
    name = state.stack or os.environ.get("EXPORTLAKE_STACK", "").strip()
    if not name:
        return "not checked: name the stack (doctor --stack NAME, or EXPORTLAKE_STACK) to check the deployment"
    state.stack = name
    try:
        stack = clients("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    except Exception as exc:
        if _denied(exc):
            return f"not checked: {describe(exc)}"
        raise Broken(f"stack {name} does not exist here", f"deploy it: make deploy ({DOCS})") from None
    status = str(stack["StackStatus"])
    if status.endswith("ROLLBACK_FAILED"):
        raise Broken(f"stack {name} is {status}", f"recover it as {DOCS}#recover-a-stack-in-rollback_failed says")
    if status == "ROLLBACK_COMPLETE":
        raise Broken(
            f"stack {name}'s first deploy failed and was rolled back",
            f"read why: aws cloudformation describe-stack-events --stack-name {name}; delete the stack, fix, deploy",
        )
    if status.endswith("IN_PROGRESS"):
        raise Broken(f"stack {name} is {status}", "wait until it settles, then run doctor again")
    state.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return f"stack {name} is {status}"


def _iam_only(defaults: list[dict[str, Any]]) -> bool:
    return any(
        d.get("Principal", {}).get("DataLakePrincipalIdentifier") == IAM_ALLOWED and "ALL" in d.get("Permissions", [])
        for d in defaults
    )


def check_lake_formation(state: Any, clients: Clients) -> str:
    """Which permission model the account's Data Catalog uses for new databases and tables, and whether the stack
    was deployed for it (``lakeFormation``)."""
    try:
        settings = clients("lakeformation").get_data_lake_settings()["DataLakeSettings"]
    except Exception as exc:
        if _denied(exc) or _local():
            return (
                f"not checked: cannot read the Lake Formation settings ({describe(exc)}); see {DOCS}#2-lake-formation"
            )
        raise
    iam_only = _iam_only(settings.get("CreateDatabaseDefaultPermissions", [])) and _iam_only(
        settings.get("CreateTableDefaultPermissions", [])
    )
    deployed = state.outputs.get("LakeFormation")
    if iam_only:
        return "new databases and tables use IAM access control only: lakeFormation=false is enough"
    fix = f'set "lakeFormation": true in cdk.json, then cdk deploy ({DOCS}#2-lake-formation)'
    if not any("cfn-exec-role" in a.get("DataLakePrincipalIdentifier", "") for a in settings.get("DataLakeAdmins", [])):
        fix += "; first make the CDK deploy role (cdk-hnb659fds-cfn-exec-role-…) a data lake administrator"
    needs = "Lake Formation governs new databases and tables in this account"
    if deployed == "off":
        raise Broken(f"{needs}, and the stack was deployed without its grants (lakeFormation=false)", fix)
    if deployed == "on":
        return f"{needs}: the stack grants its roles their Lake Formation permissions (lakeFormation=true)"
    database = state.settings.glue_database
    granted = clients("lakeformation").list_permissions(Resource={"Database": {"Name": database}})
    creators = [
        p
        for p in granted.get("PrincipalResourcePermissions", [])
        if "CREATE_TABLE" in p.get("Permissions", []) or "ALL" in p.get("Permissions", [])
    ]
    if not creators:
        raise Broken(f"{needs}, and nobody may create tables in {database}", fix)
    return f"{needs}: {len(creators)} principal(s) may create tables in {database}"


_AWS_MANAGED_KEY = "alias/aws/secretsmanager"


def check_secret_key(state: Any, clients: Clients) -> str:
    """The secret's KMS key: a customer-managed one needs kms:Decrypt for the functions (existingSecretKmsKeyArn)."""
    secret_id = state.settings.secret_id
    key = clients("secretsmanager").describe_secret(SecretId=secret_id).get("KmsKeyId") or ""
    if not key or key == _AWS_MANAGED_KEY:
        return "encrypted with Secrets Manager's AWS managed key: the functions need no key grant"
    try:
        metadata = clients("kms").describe_key(KeyId=key)["KeyMetadata"]
    except Exception as exc:
        if _denied(exc):
            return f"not checked: {describe(exc)}"
        raise
    if metadata.get("KeyManager") == "AWS":
        return "encrypted with an AWS managed key: the functions need no key grant"
    arn = str(metadata["Arn"])
    granted = state.outputs.get("SecretKeyArn")
    fix = f'set "existingSecretKmsKeyArn": "{arn}" in cdk.json, then cdk deploy ({DOCS}#3-the-secret-and-its-key)'
    if not state.outputs:
        return f"encrypted with the customer-managed key {arn}: deploy with existingSecretKmsKeyArn={arn}"
    if not granted:
        raise Broken(
            f"secret {secret_id} is encrypted with the customer-managed key {arn}, and the stack grants no "
            "kms:Decrypt on it: every run would fail to read it",
            fix,
        )
    if granted != arn:
        raise Broken(f"secret {secret_id} is encrypted with {arn}, but the stack grants kms:Decrypt on {granted}", fix)
    return f"the functions may decrypt with {arn}, through Secrets Manager only"


def check_alarms(state: Any, clients: Clients) -> str:
    """The stack's alarms in ALARM, each with what it means (the first day's FreshnessAlarm is expected)."""
    if not state.stack or not state.outputs:
        return "not checked: name the stack (doctor --stack NAME) to read its alarms"
    found = clients("cloudwatch").describe_alarms(AlarmNamePrefix=f"{state.stack}-", StateValue="ALARM")
    firing = []
    for alarm in found.get("MetricAlarms", []):
        logical = next((k for k in ALARMS if k in alarm["AlarmName"]), "")
        firing.append((logical or alarm["AlarmName"], ALARMS.get(logical, "see its description")))
    serious = [(name, meaning) for name, meaning in firing if name != "FreshnessAlarm"]
    if serious:
        detail = "; ".join(f"{name}: {meaning}" for name, meaning in serious)
        raise Broken(f"{len(serious)} alarm(s) in ALARM — {detail}", f"see {DOCS}#5-the-alarms-on-the-first-day")
    if firing:
        return f"FreshnessAlarm: {ALARMS['FreshnessAlarm']}"
    return "no alarm in ALARM"
