"""The lake bucket with its object versions: ranged reads and purging every version of a result's keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exportlake.adapters.lakestore import S3LakeStore


class VersionedLakeStore(S3LakeStore):
    """``S3LakeStore`` plus what erasure needs on a versioned bucket (``domain.erasing.VersionedStore``)."""

    def __init__(self, s3_client: Any, bucket: str, **kwargs: Any) -> None:
        super().__init__(s3_client, bucket, **kwargs)
        self._client = s3_client

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of an object."""
        resp = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")
        return bytes(resp["Body"].read())

    def versions(self, prefix: str) -> list[tuple[str, str, bool]]:
        """(key, version id, is latest) of every version and delete marker under ``prefix``."""
        out: list[tuple[str, str, bool]] = []
        for page in self._client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            for v in page.get("Versions", []):
                out.append((v["Key"], v["VersionId"], bool(v.get("IsLatest"))))
            for m in page.get("DeleteMarkers", []):
                out.append((m["Key"], m["VersionId"], False))  # a marker is never a version to keep
        return out

    def purge(self, prefixes: Sequence[str], keep: set[str]) -> tuple[int, int]:
        """Delete every version under ``prefixes`` except the latest of each ``keep`` key; (objects, versions).

        "Objects" counts keys that had a current version and lost it; "versions" every version or delete marker
        removed. In an unversioned bucket this deletes the objects themselves (version id ``null``).
        """
        doomed: list[dict[str, str]] = []
        gone: set[str] = set()
        for prefix in dict.fromkeys(prefixes):
            for key, version, latest in self.versions(prefix):
                if latest and key in keep:
                    continue
                doomed.append({"Key": key, "VersionId": version})
                if latest:
                    gone.add(key)
        for i in range(0, len(doomed), 1000):
            resp = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": doomed[i : i + 1000], "Quiet": True}
            )
            errors = resp.get("Errors") or []
            if errors:
                raise RuntimeError(f"S3 refused to delete {len(errors)} object versions, e.g. {errors[0]}")
        return len(gone), len(doomed)
