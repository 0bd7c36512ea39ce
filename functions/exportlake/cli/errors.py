"""Turn any exception the CLI meets into one line that names the cause and the fix, and an exit code.

Exit codes: 2 for usage and configuration (the user must change something before a retry can work), 1 for a run
that failed (a retry may work), 130 for Ctrl-C. The traceback is for ``-v`` only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from exportlake.cli.exitcodes import ExitCode
from exportlake.domain import wording
from exportlake.domain.errors import (
    AuthError,
    ConfigError,
    DocumentError,
    ExportlakeError,
    GatewayError,
    TransientError,
    ValidationError,
)

USAGE, FAILED = ExitCode.USAGE, ExitCode.FAILED

#: AWS error codes that mean "the resource is not there": the stack was not deployed or provisioned here.
_MISSING = {
    "ResourceNotFoundException",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "NoSuchBucket",
    "EntityNotFoundException",
    "NotFound",
    "NotFoundException",
    "404",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId"}
_SERVICES = {
    "dynamodb": "ledger table (EXPORTLAKE_LEDGER_TABLE)",
    "sqs": "copy-jobs queue (EXPORTLAKE_QUEUE_URL)",
    "s3": "bucket (EXPORTLAKE_BUCKET)",
    "glue": "Glue database (EXPORTLAKE_GLUE_DATABASE)",
    "sns": "topic (EXPORTLAKE_TOPIC_ARN)",
    "secretsmanager": "secret (EXPORTLAKE_SECRET_ID)",
}


@dataclass(frozen=True)
class Explained:
    """One line for the user and the exit code that goes with it."""

    message: str
    code: ExitCode


def where() -> str:
    """The AWS the process talks to, for messages: the emulator endpoint or real AWS."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "").strip()
    return f"on {endpoint}" if endpoint else "on real AWS"


def _provision_hint() -> str:
    if os.environ.get("AWS_ENDPOINT_URL", "").strip():
        return "run `exportlake provision` first"
    return 'deploy the stack and load its outputs (`eval "$(exportlake env --stack NAME)"`)'


def secret_hint(secret_id: str) -> str:
    """How to create the secret the settings name."""
    return (
        f"create it: aws secretsmanager create-secret --name {secret_id} "
        '--secret-string \'{"client_id":"…","client_secret":"…"}\' (or fix EXPORTLAKE_SECRET_ID)'
    )


def explain(exc: BaseException) -> Explained:  # noqa: PLR0911 - one return per kind of cause
    """One line naming the cause and the fix of ``exc``; never the secret (messages never hold one)."""
    if isinstance(exc, KeyboardInterrupt):
        return Explained("interrupted", ExitCode.INTERRUPTED)
    try:
        import botocore.exceptions as bx
    except ImportError:  # pragma: no cover - botocore is a dependency
        bx = None  # type: ignore[assignment]
    if bx is not None:
        if isinstance(exc, bx.NoRegionError):
            return Explained("no AWS region is set: export AWS_DEFAULT_REGION=<region> (e.g. eu-west-1)", USAGE)
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
            return Explained(
                "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                "(for the local emulator any value works, e.g. testing)",
                USAGE,
            )
        if isinstance(exc, bx.EndpointConnectionError):
            return Explained(
                f"cannot reach the AWS endpoint {getattr(exc, 'kwargs', {}).get('endpoint_url', '')}: "
                "is the moto server running? check AWS_ENDPOINT_URL",
                USAGE,
            )
        if isinstance(exc, bx.ClientError):
            return _client_error(exc)
        if isinstance(exc, bx.BotoCoreError):
            return Explained(f"AWS: {wording.words(str(exc))}", FAILED)
    if isinstance(exc, ConfigError):
        return Explained(str(exc), USAGE)
    gateway = os.environ.get("EXPORTLAKE_GATEWAY_URL", "").strip()
    if isinstance(exc, AuthError):
        # The same fix as the sync.failed notice's (one source: exportlake.domain.wording).
        return Explained(wording.run_failure(exc, gateway) + " (exportlake doctor)", USAGE)
    if isinstance(exc, DocumentError | ValidationError):
        text = wording.describe(exc)
        return Explained(f"{text}: {wording.NO_RETRY}; report it to {wording.REPORT_TO}", FAILED)
    if isinstance(exc, TransientError | GatewayError):
        return Explained(wording.run_failure(exc, gateway), FAILED)
    if isinstance(exc, ExportlakeError):
        return Explained(wording.describe(exc), FAILED)
    module = type(exc).__module__ or ""
    if "duckdb" in module:  # the classes live in the C module ``_duckdb``
        first = (str(exc).strip().splitlines() or [""])[0]
        return Explained(f"query failed: {first} (check the SQL; `exportlake query --help`)", USAGE)
    if module.startswith(("requests", "urllib3")):
        return Explained(wording.run_failure(exc, gateway), FAILED)
    return Explained(f"unexpected failure: {wording.describe(exc)} (run with -v for the details)", FAILED)


def _client_error(exc: BaseException) -> Explained:
    response = getattr(exc, "response", {}) or {}
    error = response.get("Error", {}) or {}
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")).strip() or code
    operation = getattr(exc, "operation_name", "")
    service = ""
    meta = response.get("ResponseMetadata", {}) or {}
    host = str(meta.get("HTTPHeaders", {}).get("host", ""))
    for name in _SERVICES:
        if name in host or name in str(exc).lower():
            service = name
            break
    if code in _MISSING or "does not exist" in message or "not found" in message.lower():
        what = _SERVICES.get(service, "resource")
        if service == "secretsmanager":
            secret = os.environ.get("EXPORTLAKE_SECRET_ID", "?")
            return Explained(f"the secret {secret} does not exist {where()}: {secret_hint(secret)}", USAGE)
        return Explained(f"the {what} does not exist {where()} ({operation}: {code}): {_provision_hint()}", USAGE)
    if code in _DENIED and "KMS" in message:  # a secret under a key this identity may not decrypt with
        return Explained(
            f"AWS refused {operation} ({code}): {message}; the identity needs kms:Decrypt on the secret's key "
            "(deployed functions: existingSecretKmsKeyArn, docs/deploy.md#3-the-secret-and-its-key)",
            USAGE,
        )
    if code in _DENIED:
        return Explained(
            f"AWS refused {operation} ({code}): check the credentials and their permissions {where()}", USAGE
        )
    return Explained(f"AWS {operation} failed ({code}): {message}", FAILED)
