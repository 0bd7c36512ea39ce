"""The lake bucket: data, raw originals, manifests and Athena results, plus its access-log bucket."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from exportlake.domain.schemas import ATHENA_RESULTS_PREFIX, RAW_PREFIX
from infra.config import Config

ACCESS_LOG_RETENTION_DAYS = 90
NONCURRENT_VERSION_DAYS = 30
INCOMPLETE_UPLOAD_DAYS = 7


class Lake(Construct):
    """S3: SSE-S3, versioned, TLS only, no public access, access logs, lifecycle for raw and Athena results."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        destroy = not config.retain_data
        common = {
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            "enforce_ssl": True,
            "minimum_tls_version": 1.2,
            "removal_policy": config.removal_policy,
            "auto_delete_objects": destroy,
        }
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-access-logs", expiration=cdk.Duration.days(ACCESS_LOG_RETENTION_DAYS))
            ],
            **common,  # type: ignore[arg-type]
        )
        rules = [
            s3.LifecycleRule(
                id="abort-incomplete-uploads",
                abort_incomplete_multipart_upload_after=cdk.Duration.days(INCOMPLETE_UPLOAD_DAYS),
            ),
            s3.LifecycleRule(
                id="expire-noncurrent-versions",
                noncurrent_version_expiration=cdk.Duration.days(NONCURRENT_VERSION_DAYS),
            ),
            s3.LifecycleRule(
                id="expire-athena-results",
                prefix=f"{ATHENA_RESULTS_PREFIX}/",
                expiration=cdk.Duration.days(config.athena_results_retention_days),
            ),
        ]
        if config.raw_retention_days:
            rules.append(
                s3.LifecycleRule(
                    id="expire-raw-originals",
                    prefix=f"{RAW_PREFIX}/",
                    expiration=cdk.Duration.days(config.raw_retention_days),
                )
            )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="lake-bucket/",
            lifecycle_rules=rules,
            **common,  # type: ignore[arg-type]
        )
