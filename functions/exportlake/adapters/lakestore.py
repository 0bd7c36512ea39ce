"""The lake bucket on S3: manifests, listing and deleting under a prefix, multipart objects, open uploads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from exportlake.adapters.s3sink import MultipartSink
from exportlake.domain.ports import Sink

PART_SIZE = 5 << 20  # S3's minimum part: the least memory per object being written


class S3LakeStore:
    """``domain.ports.LakeStore`` on one S3 bucket, through an injected boto3 S3 client."""

    def __init__(self, s3_client: Any, bucket: str, *, part_size: int = PART_SIZE, max_in_flight: int = 2):
        self._s3 = s3_client
        self.bucket = bucket
        self._part_size = part_size
        self._max_in_flight = max_in_flight

    def get(self, key: str) -> bytes | None:
        """The object's bytes, or ``None`` if there is none."""
        try:
            resp = self._s3.get_object(Bucket=self.bucket, Key=key)
        except self._s3.exceptions.NoSuchKey:
            return None
        return bytes(resp["Body"].read())

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Write one small object (a manifest)."""
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag (for a later ``put_if``), or ``None`` if there is none."""
        try:
            resp = self._s3.get_object(Bucket=self.bucket, Key=key)
        except self._s3.exceptions.NoSuchKey:
            return None
        return bytes(resp["Body"].read()), str(resp["ETag"])

    def put_if(self, key: str, body: bytes, content_type: str, *, etag: str | None) -> str | None:
        """Write a small object only if unchanged since read (``etag``), or absent (``None``); its new ETag, or None.

        S3 conditional writes: ``If-Match`` / ``If-None-Match: *``. ``None`` when another writer got there first
        (412 PreconditionFailed, 409 ConditionalRequestConflict, or 404 when the object went away meanwhile).
        """
        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            resp = self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, **condition)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409"):
                return None
            raise
        return str(resp["ETag"])

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``."""
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return keys

    def delete(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` (1,000 per request, the S3 limit); raise if S3 refuses any."""
        for i in range(0, len(keys), 1000):
            resp = self._s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True}
            )
            errors = resp.get("Errors") or []
            if errors:
                raise RuntimeError(f"S3 refused to delete {len(errors)} objects, e.g. {errors[0]}")

    def open_object(self, key: str, content_type: str) -> Sink:
        """A multipart upload of ``key``: visible only once closed, discarded by ``abort()``."""
        return MultipartSink(
            self._s3,
            self.bucket,
            key,
            part_size=self._part_size,
            max_in_flight=self._max_in_flight,
            content_type=content_type,
        )

    def abort_uploads(self, prefix: str) -> int:
        """Abort every multipart upload still open under ``prefix`` (left by killed writers); return how many."""
        aborted = 0
        for page in self._s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                self._s3.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                aborted += 1
        return aborted

    def open_uploads(self, prefix: str = "") -> list[tuple[str, str]]:
        """(key, upload id) of every multipart upload open under ``prefix`` (for the local sync's sweep)."""
        out: list[tuple[str, str]] = []
        for page in self._s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend((u["Key"], u["UploadId"]) for u in page.get("Uploads", []))
        return out

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort one multipart upload."""
        self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
