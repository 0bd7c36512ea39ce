"""The AWS actions each Lambda function may use: the one source of the stack's IAM policies. Stdlib only.

``GRANTS`` holds what each function's code calls, derived from the adapter methods it uses (``USES``);
``LAMBDA_GRANTS`` what the Lambda service itself does with the function's role (logs, X-Ray, the SQS event
source, the planner's on-failure destination). The CDK stack builds every policy from these two;
tests/infra/test_permissions.py compares each synthesized role with them and scans the adapters' boto3 calls,
failing when a function uses a call that is not granted here.
"""

from __future__ import annotations

from dataclasses import dataclass

from exportlake.domain.erasure import INDEX_PREFIX
from exportlake.domain.schemas import LATEST_PREFIX, MANIFESTS_PREFIX, RAW_PREFIX, TABLES_PREFIX

PLANNER = "planner"
COPIER = "copier"
TABLES = "tables"  # the deploy-time custom resource of the raw Glue tables (invoked by CloudFormation)
ERASER = "eraser"  # erasure requests and their jobs (the erase-jobs queue)
FUNCTIONS = (PLANNER, COPIER, TABLES, ERASER)

# The resources a grant names; the stack maps each to its ARN(s).
SECRET = "secret"  # noqa: S105 - the name of a resource kind (the gateway credentials), not a value
LEDGER = "ledger"  # the DynamoDB table
COPY_QUEUE = "copy_queue"  # SQS copy-jobs
COPY_DLQ = "copy_dlq"  # its dead-letter queue
PLANNER_FAILURES = "planner_failures"  # the planner's on-failure destination (SQS)
TOPIC = "topic"  # SNS notifications
TOPIC_KEY = "topic_key"  # the topic's KMS key
BUCKET = "bucket"  # the lake bucket itself (bucket-level actions)
OBJECTS = "objects"  # objects of the lake bucket under ``Grant.prefixes``
GLUE = "glue"  # the catalog, the lake's database and its tables
DECLARED_TABLES = "declared_tables"  # the catalog, the lake's database and the tables the stack declares
LOG_GROUP = "log_group"  # the function's own log group
PRIVACY_SALT = "privacy_salt"  # the secret holding the salt of person keys
ERASE_QUEUE = "erase_queue"  # SQS erase-jobs
SECRET_KEY = "secret_key"  # noqa: S105 - the existing secret's customer-managed KMS key (none: no statement)
ANY = "*"  # actions that support no resource-level permissions


@dataclass(frozen=True)
class Grant:
    """One policy statement: ``actions`` on ``resource`` (for ``OBJECTS``: the keys under ``prefixes``)."""

    sid: str
    resource: str
    actions: tuple[str, ...]
    prefixes: tuple[str, ...] = ()
    #: Only through this AWS service (``kms:ViaService``), e.g. ``secretsmanager`` for a secret's key.
    via: str = ""


_SECRET = Grant("GatewaySecret", SECRET, ("secretsmanager:GetSecretValue",))
# An existing secret encrypted with a customer-managed key: Secrets Manager decrypts it with the caller's identity,
# so the caller needs kms:Decrypt on that key, through Secrets Manager only (existingSecretKmsKeyArn).
_SECRET_KEY = Grant("GatewaySecretKey", SECRET_KEY, ("kms:Decrypt",), via="secretsmanager")
# Publishing to a KMS-encrypted topic: SNS makes a data key and decrypts it under the publisher's identity.
_NOTIFY = (
    Grant("Notify", TOPIC, ("sns:Publish",)),
    Grant("NotifyKey", TOPIC_KEY, ("kms:Decrypt", "kms:GenerateDataKey")),
)

_SALT = Grant("PrivacySalt", PRIVACY_SALT, ("secretsmanager:GetSecretValue",))
#: Every generation of a result (parts, raw original, id index, manifest): erasure rewrites and purges them all.
_RESULT_PREFIXES = (TABLES_PREFIX, RAW_PREFIX, INDEX_PREFIX, MANIFESTS_PREFIX)
# A rewrite reads the result, writes its next generation, moves its partition and deletes every older version
# (DeleteObjects naming version ids needs s3:DeleteObjectVersion): the eraser, and the copier for suppression.
_REWRITE = (
    Grant("ResultsRead", OBJECTS, ("s3:GetObject",), _RESULT_PREFIXES),
    Grant("ResultsPurge", OBJECTS, ("s3:DeleteObject", "s3:DeleteObjectVersion"), _RESULT_PREFIXES),
    Grant("PartitionMove", GLUE, ("glue:GetPartition", "glue:UpdatePartition")),
)

#: What each function's code calls.
GRANTS: dict[str, tuple[Grant, ...]] = {
    PLANNER: (
        _SECRET,
        _SECRET_KEY,
        Grant(
            "Ledger",
            LEDGER,
            ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"),
        ),
        Grant("CopyJobsSend", COPY_QUEUE, ("sqs:SendMessage",)),
        # ``--retry-failed``: a re-queued result's old message is taken off the DLQ.
        Grant("CopyJobsDlqClear", COPY_DLQ, ("sqs:DeleteMessage", "sqs:ReceiveMessage")),
        *_NOTIFY,
    ),
    COPIER: (
        _SECRET,
        _SALT,
        _SECRET_KEY,
        # PutItem: a job whose result expired while it waited is recorded as expired (never copied).
        # Query: the suppression list (privacy items in the same table); UpdateItem also counts suppressed rows.
        Grant("Ledger", LEDGER, ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem")),
        *_NOTIFY,
        # list_objects_v2 (stale parts of a partition) and list_multipart_uploads (uploads of killed runs).
        # ListBucket also makes a missing manifest answer NoSuchKey (404) instead of AccessDenied (403).
        # ListBucketVersions: a result rewritten without suppressed persons loses every older version.
        Grant("LakeBucket", BUCKET, ("s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:ListBucketVersions")),
        # Parts, raw originals, id indexes and manifests (multipart uploads included: Create/UploadPart/Complete),
        # and the latest-result pointers (conditional PutObject: If-Match / If-None-Match).
        Grant("LakeWrite", OBJECTS, ("s3:PutObject",), (*_RESULT_PREFIXES, LATEST_PREFIX)),
        Grant("LakeAbortUploads", OBJECTS, ("s3:AbortMultipartUpload",), (TABLES_PREFIX, RAW_PREFIX)),
        Grant("PointersRead", OBJECTS, ("s3:GetObject",), (LATEST_PREFIX,)),
        # Reads of a result's objects, its stale parts and failed attempts deleted, and (suppression) every version.
        *_REWRITE,
        Grant(
            "GlueCatalogOfTheLake",
            GLUE,
            ("glue:BatchCreatePartition", "glue:CreateTable", "glue:GetTable", "glue:UpdateTable"),
        ),
    ),
    ERASER: (
        _SALT,
        _SECRET_KEY,  # kms:Decrypt for a secret read (the salt's key is AWS managed: no statement unless configured)
        # Holds, requests, the suppression list (its own items) and the ledger's entries (a result's state).
        Grant(
            "Ledger",
            LEDGER,
            ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"),
        ),
        *_NOTIFY,
        Grant("LakeBucket", BUCKET, ("s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:ListBucketVersions")),
        Grant("LakeWrite", OBJECTS, ("s3:PutObject",), _RESULT_PREFIXES),
        Grant("LakeAbortUploads", OBJECTS, ("s3:AbortMultipartUpload",), (TABLES_PREFIX, RAW_PREFIX)),
        *_REWRITE,
        Grant("EraseJobsSend", ERASE_QUEUE, ("sqs:SendMessage",)),
        # Retention (lakeRetentionDays): the lake's tables, their partitions older than the period, deregistering one.
        Grant("Retention", GLUE, ("glue:DeletePartition", "glue:GetPartitions", "glue:GetTables")),
    ),
    TABLES: (
        # Create a declared table or merge its declaration into it: the declared tables only, by name.
        # ... each with its created_date partition index (added to a table that lacks it).
        Grant(
            "DeclaredTables",
            DECLARED_TABLES,
            (
                "glue:CreatePartitionIndex",
                "glue:CreateTable",
                "glue:GetPartitionIndexes",
                "glue:GetTable",
                "glue:UpdateTable",
            ),
        ),
        # The upgrade backfill of latest-result pointers (domain.latest): each declared table's partition values,
        # the manifests of each export's newest day, the pointer objects (conditional PutObject). ListBucket makes
        # a missing manifest or pointer answer 404 instead of 403.
        Grant("DeclaredTablesPartitions", DECLARED_TABLES, ("glue:GetPartitions",)),
        Grant("LakeBucketList", BUCKET, ("s3:ListBucket",)),
        Grant("PointersRead", OBJECTS, ("s3:GetObject",), (LATEST_PREFIX, MANIFESTS_PREFIX)),
        Grant("PointersWrite", OBJECTS, ("s3:PutObject",), (LATEST_PREFIX,)),
        # A table leaving the stack (its export type removed or renamed) is deleted in the cleanup after the update,
        # when this role already holds the new list of names: so any table of the lake's database. Called only
        # with retainData=false (removal policy destroy).
        Grant("TablesLeavingTheStack", GLUE, ("glue:DeleteTable",)),
    ),
}

_LOGS = Grant("OwnLogGroup", LOG_GROUP, ("logs:CreateLogStream", "logs:PutLogEvents"))
# Added by CDK itself for Tracing.ACTIVE (the stack does not add it again).
TRACING = Grant("Tracing", ANY, ("xray:PutTelemetryRecords", "xray:PutTraceSegments"))

#: What the Lambda service does with each function's role.
LAMBDA_GRANTS: dict[str, tuple[Grant, ...]] = {
    PLANNER: (_LOGS, TRACING, Grant("FailedRunsSend", PLANNER_FAILURES, ("sqs:SendMessage",))),
    COPIER: (
        _LOGS,
        TRACING,
        # The event source mapping polls for the function (Lambda documents exactly these three).
        Grant("CopyJobsConsume", COPY_QUEUE, ("sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage")),
    ),
    # Not traced (a few Glue calls at deploy time): no X-Ray.
    TABLES: (_LOGS,),
    ERASER: (
        _LOGS,
        TRACING,
        Grant("EraseJobsConsume", ERASE_QUEUE, ("sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage")),
    ),
}

ALL_METHODS = ("*",)

#: The lake store methods a copy uses (the copier, and the eraser that rewrites a copy).
_LAKE_STORE_COPY = ("get", "put", "list_keys", "delete", "open_object", "abort_uploads")
#: The adapter methods each function calls, by class; the source of ``GRANTS`` (the adapter scan checks it).
#: A method of a listed class that is named nowhere here is taken as used by every function using the class.
USES: dict[str, dict[str, tuple[str, ...]]] = {
    PLANNER: {
        "exportlake.adapters.secrets.SecretCredentials": ("__call__",),
        "exportlake.adapters.ledger.DynamoLedger": (
            "entries",
            "claim_queued",
            "mark_enqueued",
            "release_queued",
            "mark_expired",
            "claim_notification",
            "release_notification",
            "mark_notified",
        ),
        # Queries the index of unfinished results (the stack grants it by name with the table).
        "exportlake.adapters.ledgerindex.LedgerIndex": (
            "open_entries",
            "adopt",
            "export_states",
            "save_export_state",
            "claim_alert",
            "release_alert",
            "alerts",
            "cursor",
            "save_cursor",
            "claim_expiring_notice",
            "release_expiring_notice",
        ),
        "exportlake.adapters.queue.SqsJobQueue": ALL_METHODS,
        "exportlake.adapters.notifier.SnsNotifier": ALL_METHODS,
    },
    COPIER: {
        "exportlake.adapters.secrets.SecretCredentials": ("__call__",),
        "exportlake.adapters.ledger.DynamoLedger": (
            "start_copy",
            "renew_lease",
            "get",
            "mark_expired",
            "mark_copied",
            "end_attempt",
            "mark_failed",
            "claim_notification",
            "release_notification",
            "mark_notified",
        ),
        "exportlake.adapters.notifier.SnsNotifier": ALL_METHODS,
        "exportlake.adapters.catalog.GlueCatalog": ("columns", "create_table", "add_columns", "register_partition"),
        "exportlake.adapters.s3sink.MultipartSink": ALL_METHODS,
        # The id index of each result, and the suppression of erased persons before a partition is registered.
        "exportlake.adapters.privacy.SaltSecret": ALL_METHODS,
        "exportlake.adapters.privacy.DynamoPrivacy": ("suppressed", "count_suppressed"),
        "exportlake.adapters.lakeversions.VersionedLakeStore": ("get_range", "sweep"),
        "exportlake.adapters.partitions.GluePartitions": ("partition_location", "move_partition"),
        "exportlake.adapters.lakestore.S3LakeStore": (*_LAKE_STORE_COPY, "get_versioned", "put_if"),
    },
    TABLES: {
        "exportlake.adapters.catalog.GlueCatalog": (
            "ensure_table",
            "ensure_partition_index",
            "drop_table",
            "partition_values",
        ),
        "exportlake.adapters.lakestore.S3LakeStore": ("get", "get_versioned", "put_if"),
    },
    ERASER: {
        "exportlake.adapters.privacy.SaltSecret": ALL_METHODS,
        "exportlake.adapters.ledger.DynamoLedger": ("get", "entries"),
        "exportlake.adapters.privacy.DynamoPrivacy": (
            "suppressed",
            "suppress",
            "take_hold",
            "renew_hold",
            "hold_owner",
            "release_hold",
            "record_result",
            "request_results",
            "save_request",
            "claim_notice",
            "mark_noticed",
            "open_run",
            "settle",
            "mark_retired",
            "record_sweep",
            "swept",
        ),
        "exportlake.adapters.notifier.SnsNotifier": ALL_METHODS,
        "exportlake.adapters.erasequeue.SqsEraseQueue": ALL_METHODS,
        "exportlake.adapters.partitions.GluePartitions": (
            "partition_location",
            "move_partition",
            "tables",
            "older_than",
            "drop_partition",
        ),
        "exportlake.adapters.s3sink.MultipartSink": ALL_METHODS,
        "exportlake.adapters.lakestore.S3LakeStore": _LAKE_STORE_COPY,
        "exportlake.adapters.lakeversions.VersionedLakeStore": ("get_range", "sweep"),
    },
}

#: Adapter methods only the CLI and the local mode call (they run with the user's credentials, not a role).
CLI_ONLY: dict[str, tuple[str, ...]] = {
    "exportlake.adapters.privacy.DynamoPrivacy": ("lift", "requests", "suppressed_rows", "retired"),
    "exportlake.adapters.ledger.DynamoLedger": ("all_entries",),
    "exportlake.adapters.ledgerindex.LedgerIndex": ("get_many",),
    "exportlake.adapters.lakestore.S3LakeStore": ("open_uploads", "abort_upload"),
    "exportlake.adapters.catalog.GlueCatalog": (
        "ensure_database",
        "ensure_latest_table",
        "tables",
        "partitions",
        "partition_exists",
    ),
    "exportlake.query.lake.LakeQuery": ALL_METHODS,
}

#: IAM actions of API operations whose action is not ``<service>:<Operation>``.
_ACTION_OF_OPERATION: dict[tuple[str, str], str] = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjects"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("s3", "CreateMultipartUpload"): "s3:PutObject",
    ("s3", "UploadPart"): "s3:PutObject",
    ("s3", "CompleteMultipartUpload"): "s3:PutObject",
    ("s3", "ListMultipartUploads"): "s3:ListBucketMultipartUploads",
    ("s3", "ListParts"): "s3:ListMultipartUploadParts",
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    ("sns", "PublishBatch"): "sns:Publish",
}

#: Actions an action needs besides itself on this stack's resources.
IMPLIED: dict[str, tuple[str, ...]] = {
    "sns:Publish": ("kms:Decrypt", "kms:GenerateDataKey"),
    # Reading a key that may be missing (a manifest, a pointer): without ListBucket S3 answers 403, not 404.
    "s3:GetObject": ("s3:ListBucket",),
    "secretsmanager:GetSecretValue": ("kms:Decrypt",),  # a secret under a customer-managed key
    # Versions are listed to be deleted by version id (DeleteObjects with VersionId: s3:DeleteObjectVersion).
    "s3:ListBucketVersions": ("s3:DeleteObjectVersion",),
}

# Lake Formation (``lakeFormation`` in cdk.json): in an account whose Data Catalog is governed by Lake Formation, each
# Glue call also needs a Lake Formation permission on the database or on its tables (docs/deploy.md#2-lake-formation;
# AWS's Lake Formation permissions reference). Derived from ``GRANTS`` so that a role holds exactly what its calls
# need: ALTER is the permission to change a table's metadata, INSERT/DELETE to add/remove data at its location (a
# partition is both), DESCRIBE to read its definition, DROP to delete it, CREATE_TABLE (on the database) to create one.
LF_DATABASE = "database"
LF_TABLES = "tables"  # every table and view of the database (TableWildcard: current and future ones)
LF_OF_ACTION: dict[str, tuple[tuple[str, str], ...]] = {
    "glue:GetDatabase": ((LF_DATABASE, "DESCRIBE"),),
    "glue:CreateTable": ((LF_DATABASE, "CREATE_TABLE"),),
    "glue:GetTable": ((LF_TABLES, "DESCRIBE"),),
    "glue:GetTables": ((LF_TABLES, "DESCRIBE"),),
    "glue:UpdateTable": ((LF_TABLES, "ALTER"),),
    "glue:DeleteTable": ((LF_TABLES, "DROP"),),
    "glue:CreatePartitionIndex": ((LF_TABLES, "ALTER"),),
    "glue:GetPartitionIndexes": ((LF_TABLES, "DESCRIBE"),),
    "glue:GetPartition": ((LF_TABLES, "DESCRIBE"),),
    "glue:GetPartitions": ((LF_TABLES, "DESCRIBE"),),
    "glue:BatchGetPartition": ((LF_TABLES, "DESCRIBE"),),
    "glue:CreatePartition": ((LF_TABLES, "ALTER"), (LF_TABLES, "INSERT")),
    "glue:BatchCreatePartition": ((LF_TABLES, "ALTER"), (LF_TABLES, "INSERT")),
    "glue:UpdatePartition": ((LF_TABLES, "ALTER"),),
    "glue:BatchUpdatePartition": ((LF_TABLES, "ALTER"),),
    "glue:DeletePartition": ((LF_TABLES, "ALTER"), (LF_TABLES, "DELETE")),
    "glue:BatchDeletePartition": ((LF_TABLES, "ALTER"), (LF_TABLES, "DELETE")),
}
#: What ``lakeFormationReaders`` get: see the database, describe and query its tables and views.
LF_READERS: dict[str, tuple[str, ...]] = {LF_DATABASE: ("DESCRIBE",), LF_TABLES: ("DESCRIBE", "SELECT")}


def lf_permissions(function: str) -> dict[str, tuple[str, ...]]:
    """The Lake Formation permissions ``function``'s Glue calls need: {LF_DATABASE/LF_TABLES: permissions}."""
    out: dict[str, set[str]] = {}
    for action in sorted(code_actions(function)):
        if not action.startswith("glue:"):
            continue
        if action not in LF_OF_ACTION:
            raise KeyError(f"{action}: add the Lake Formation permission it needs to exportlake.iam.LF_OF_ACTION")
        for where, permission in LF_OF_ACTION[action]:
            out.setdefault(where, set()).add(permission)
    return {where: tuple(sorted(perms)) for where, perms in sorted(out.items())}


def iam_action(service: str, operation: str) -> str:
    """The IAM action that authorizes API ``operation`` (e.g. ``PutItem``) of ``service`` (e.g. ``dynamodb``)."""
    return _ACTION_OF_OPERATION.get((service, operation), f"{service}:{operation}")


def code_actions(function: str) -> frozenset[str]:
    """Every action ``function``'s code is granted."""
    return frozenset(a for g in GRANTS[function] for a in g.actions)


def role_actions(function: str) -> frozenset[str]:
    """Every action ``function``'s role holds: its code's and the Lambda service's."""
    return code_actions(function) | frozenset(a for g in LAMBDA_GRANTS[function] for a in g.actions)
