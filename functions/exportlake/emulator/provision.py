"""Local AWS: a moto server on loopback and the provisioning of every resource the pipeline uses."""

from __future__ import annotations

import json
import logging
import secrets as secrets_module
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from exportlake.adapters.catalog import GlueCatalog
from exportlake.adapters.lakestore import S3LakeStore
from exportlake.adapters.ledgerindex import INDEX_ATTRIBUTES, INDEX_DEFINITION
from exportlake.domain import latest
from exportlake.domain.erasure import SALT_BYTES
from exportlake.domain.errors import ConfigError
from exportlake.domain.limits import COPIER_TIMEOUT_SECONDS, MAX_RECEIVES
from exportlake.domain.schemas import EXPORT_TYPES, LATEST_TABLE
from exportlake.settings import Settings, queue_name, topic_name

log = logging.getLogger(__name__)

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"  # moto's default account


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto's threaded server on 127.0.0.1 (the local stand-in for AWS)."""

    def __init__(self, port: int = 0):
        from moto.server import ThreadedMotoServer  # local mode only: never imported in Lambda

        self.port = port or free_port()
        # werkzeug logs every request at INFO on its own handler; that would drown the demo's output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        """The URL to put in ``AWS_ENDPOINT_URL``."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoServer:
        from exportlake.emulator import motoglue

        motoglue.install()  # Glue partition indexes, which moto lacks (the server runs in this process)
        self._server.start()
        # moto keeps its state per process, not per server: start from an empty account every time.
        import requests

        requests.post(f"{self.endpoint}/moto-api/reset", timeout=30).raise_for_status()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


@dataclass
class Provisioned:
    """What ``provision`` created or found."""

    queue_url: str
    dlq_url: str
    topic_arn: str


def add_ledger_index(ddb: Any, table: str) -> bool:
    """Add the index of unfinished results to a ledger table made before it (what ``cdk deploy`` does to a deployed
    stack's table: UpdateTable, in place); False when it is there already."""
    described = ddb.describe_table(TableName=table)["Table"]
    if any(i["IndexName"] == INDEX_DEFINITION["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])):
        return False
    ddb.update_table(
        TableName=table,
        AttributeDefinitions=INDEX_ATTRIBUTES,
        GlobalSecondaryIndexUpdates=[{"Create": INDEX_DEFINITION}],
    )
    return True


def provision(settings: Settings, clients: Any) -> Provisioned:
    """Create bucket, ledger, queue (+DLQ), topic and Glue database with its tables (merged); idempotent.

    ``clients`` is a callable ``service -> boto3 client``. The queue and the topic are named after the configured
    URL and ARN, so the created resources have exactly those.
    """
    s3, ddb, sqs, sns, glue = (clients(n) for n in ("s3", "dynamodb", "sqs", "sns", "glue"))
    region = s3.meta.region_name or LOCAL_REGION
    try:
        kwargs: dict[str, Any] = {"Bucket": settings.bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    # Versioned, as the stack's bucket is: erasure must (and can) delete noncurrent versions locally too.
    s3.put_bucket_versioning(Bucket=settings.bucket, VersioningConfiguration={"Status": "Enabled"})
    _ensure_salt(clients("secretsmanager"), settings.privacy_salt_id)
    try:
        ddb.create_table(
            TableName=settings.ledger_table,
            AttributeDefinitions=[
                {"AttributeName": "export_name", "AttributeType": "S"},
                {"AttributeName": "result_id", "AttributeType": "S"},
                *INDEX_ATTRIBUTES,
            ],
            KeySchema=[
                {"AttributeName": "export_name", "KeyType": "HASH"},
                {"AttributeName": "result_id", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[INDEX_DEFINITION],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        add_ledger_index(ddb, settings.ledger_table)
    name = queue_name(settings.queue_url)
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(COPIER_TIMEOUT_SECONDS * 6),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}),
        },
    )["QueueUrl"]
    topic_arn = sns.create_topic(Name=topic_name(settings.topic_arn))["TopicArn"]
    for want, got, what in ((settings.queue_url, queue_url, "queue URL"), (settings.topic_arn, topic_arn, "topic")):
        if want != got:
            log.warning("configured %s %s differs from the created %s", what, want, got)
    catalog = GlueCatalog(glue, settings.glue_database, settings.bucket)
    catalog.ensure_database()
    for export_type in EXPORT_TYPES.values():  # the deployed stack's merge: added columns survive a re-provision
        catalog.ensure_table(export_type.table_name, export_type.columns, export_type.description)
    catalog.ensure_latest_table()
    backfill_latest(catalog, S3LakeStore(s3, settings.bucket))
    return Provisioned(queue_url, dlq_url, topic_arn)


def _ensure_salt(secrets: Any, secret_id: str) -> None:
    """Create the secret holding the salt of person keys with a random value, unless it exists (never rotated:
    the suppression list is keyed by it)."""
    try:
        secrets.create_secret(
            Name=secret_id,
            Description="exportlake: salt of person keys (erasure, suppression); never change it",
            SecretString=secrets_module.token_hex(SALT_BYTES),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceExistsException":
            raise


def backfill_latest(catalog: GlueCatalog, store: S3LakeStore) -> int:
    """Give every export a latest-result pointer it lacks (a lake copied before pointers existed); how many written.

    Reads each table's partitions once and the manifests of each export's newest day only.
    """
    written = 0
    for table in catalog.tables():
        if table != LATEST_TABLE:
            written += len(latest.backfill_table(store, table, catalog.partition_values(table)))
    return written


def refuse_real_aws(env: Mapping[str, str], *, real_aws: bool) -> None:
    """Stop ``provision`` from creating resources on real AWS by accident: it needs an endpoint or ``--real-aws``."""
    if not env.get("AWS_ENDPOINT_URL", "").strip() and not real_aws:
        raise ConfigError(
            "provision would create resources on real AWS (AWS_ENDPOINT_URL is not set): set AWS_ENDPOINT_URL to "
            "the local emulator, deploy with `make deploy`, or pass --real-aws if you mean it"
        )


def demo_env(aws_endpoint: str, gateway_url: str, region: str, account: str) -> dict[str, str]:
    """The settings contract for a local run (moto + simulator)."""
    return {
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "EXPORTLAKE_GATEWAY_URL": gateway_url,
        "EXPORTLAKE_SECRET_ID": "exportlake/neoday-api",
        "EXPORTLAKE_BUCKET": "exportlake-local",
        "EXPORTLAKE_GLUE_DATABASE": "exportlake",
        "EXPORTLAKE_LEDGER_TABLE": "exportlake-ledger",
        "EXPORTLAKE_TOPIC_ARN": f"arn:aws:sns:{region}:{account}:exportlake-events",
        "EXPORTLAKE_QUEUE_URL": f"{aws_endpoint}/{account}/exportlake-copy-jobs",
        "EXPORTLAKE_DOWNLOAD_HOSTS": "127.0.0.1,localhost",
    }
