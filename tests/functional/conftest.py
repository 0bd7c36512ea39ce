"""A whole local pipeline per test: in-process moto, the gateway simulator on loopback, the real handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from exportlake import bootstrap
from exportlake.emulator.provision import provision
from exportlake.emulator.server import GatewaySimulator
from exportlake.runner import SyncReport, sync
from exportlake.settings import Settings
from tests.helpers import local_settings


@dataclass
class Lake:
    """Handles on one local pipeline, and readers for what it stored."""

    sim: GatewaySimulator
    settings: Settings
    capture_url: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def sync(self, **kw: Any) -> SyncReport:
        return sync(**kw)

    def client(self, service: str) -> Any:
        return bootstrap.client(service)

    def notifications(self) -> list[dict[str, Any]]:
        """Every SNS message published so far (through an SQS subscription, envelope and attributes)."""
        sqs = self.client("sqs")
        while True:
            got = sqs.receive_message(QueueUrl=self.capture_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                break
            for m in got:
                envelope = json.loads(m["Body"])
                self.messages.append(
                    {
                        "subject": envelope.get("Subject"),
                        "attributes": {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()},
                        "body": json.loads(envelope["Message"]),
                    }
                )
                sqs.delete_message(QueueUrl=self.capture_url, ReceiptHandle=m["ReceiptHandle"])
        return list(self.messages)

    def events(self, event_type: str) -> list[dict[str, Any]]:
        return [m for m in self.notifications() if m["attributes"]["event_type"] == event_type]

    def objects(self, prefix: str = "") -> dict[str, str]:
        """Key → ETag of every object in the lake bucket under ``prefix``."""
        out: dict[str, str] = {}
        for page in (
            self.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.settings.bucket, Prefix=prefix)
        ):
            out.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
        return out

    def read_parquet_rows(self, key: str) -> list[dict[str, Any]]:
        body = self.client("s3").get_object(Bucket=self.settings.bucket, Key=key)["Body"].read()
        import io

        return pq.read_table(io.BytesIO(body)).to_pylist()

    def manifest(self, export_name: str, result_id: str) -> dict[str, Any]:
        body = (
            self.client("s3")
            .get_object(Bucket=self.settings.bucket, Key=f"manifests/{export_name}/{result_id}.json")["Body"]
            .read()
        )
        return dict(json.loads(body))

    def stored_rows(self, export_name: str, result_id: str) -> list[dict[str, Any]]:
        """The rows of one result as stored, in order, through its manifest."""
        rows: list[dict[str, Any]] = []
        for part in self.manifest(export_name, result_id)["parts"]:
            rows.extend(self.read_parquet_rows(part["key"]))
        return rows

    def partitions(self) -> dict[tuple[str, ...], str]:
        """(table, *values) → location of every registered partition."""
        glue = self.client("glue")
        out: dict[tuple[str, ...], str] = {}
        for table in glue.get_tables(DatabaseName=self.settings.glue_database)["TableList"]:
            for p in glue.get_partitions(DatabaseName=self.settings.glue_database, TableName=table["Name"])[
                "Partitions"
            ]:
                out[(table["Name"], *p["Values"])] = p["StorageDescriptor"]["Location"]
        return out


# In-process moto answers with its default queue URL; the settings name exactly that queue.
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/exportlake-copy-jobs"


def start_lake(monkeypatch: pytest.MonkeyPatch, sim: GatewaySimulator, **env: str) -> Lake:
    settings = local_settings(gateway_url=sim.url)
    for k, v in {**settings.as_env(), "EXPORTLAKE_QUEUE_URL": QUEUE_URL, **env}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    bootstrap.reset()
    settings = bootstrap.settings()
    boto3.client("secretsmanager").create_secret(
        Name=settings.secret_id,
        SecretString=json.dumps({"client_id": sim.client_id, "client_secret": sim.client_secret}),
    )
    made = provision(settings, boto3.client)
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    capture = sqs.create_queue(QueueName="capture")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=made.topic_arn, Protocol="sqs", Endpoint=arn)
    return Lake(sim, settings, capture)


@pytest.fixture
def sim() -> Iterator[GatewaySimulator]:
    with GatewaySimulator(seed=7, records=(20, 60), max_per_page=1, results_per_export=2) as s:
        yield s


@pytest.fixture
def lake(aws: None, sim: GatewaySimulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lake]:
    yield start_lake(monkeypatch, sim)
    bootstrap.reset()
