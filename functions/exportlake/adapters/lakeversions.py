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

    def sweep(self, prefixes: Sequence[str]) -> int:
        """Delete every noncurrent version and delete marker under ``prefixes``; how many (current objects stay).

        Versions first, then the markers (a marker deleted before the version under it would bring that version
        back as current). Prefixes sharing a parent (``raw/<export>/`` …) four or more times are listed through
        the parent once and filtered: one listing per export instead of one per result.
        """
        wanted = tuple(dict.fromkeys(prefixes))
        doomed: list[dict[str, str]] = []
        markers: list[dict[str, str]] = []
        for listing in _listings(wanted):
            for page in self._client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=listing):
                for v in page.get("Versions", []):
                    if not v.get("IsLatest") and v["Key"].startswith(wanted):
                        doomed.append({"Key": v["Key"], "VersionId": v["VersionId"]})
                for m in page.get("DeleteMarkers", []):
                    if m["Key"].startswith(wanted):
                        markers.append({"Key": m["Key"], "VersionId": m["VersionId"]})
        self._delete_versions(doomed)
        self._delete_versions(markers)
        return len(doomed) + len(markers)

    def _delete_versions(self, versions: list[dict[str, str]]) -> None:
        for i in range(0, len(versions), 1000):
            resp = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": versions[i : i + 1000], "Quiet": True}
            )
            errors = resp.get("Errors") or []
            if errors:
                raise RuntimeError(f"S3 refused to delete {len(errors)} object versions, e.g. {errors[0]}")


#: Requested prefixes that share a parent at least this often are listed through the parent.
_GROUP_AT = 4


def _parent(prefix: str) -> str:
    """``lake/<table>/export_name=E/`` for a partition prefix, ``<top>/<export>/`` for the others."""
    depth = 3 if prefix.startswith("lake/") else 2
    cut = 0
    for _ in range(depth):
        cut = prefix.find("/", cut) + 1
        if cut == 0:
            return prefix
    return prefix[:cut]


def _listings(prefixes: tuple[str, ...]) -> list[str]:
    """The prefixes to list: a parent for groups of ``_GROUP_AT`` or more, else each prefix itself."""
    groups: dict[str, list[str]] = {}
    for p in prefixes:
        groups.setdefault(_parent(p), []).append(p)
    out: list[str] = []
    for parent, members in groups.items():
        out.extend([parent] if len(members) >= _GROUP_AT else members)
    return out
