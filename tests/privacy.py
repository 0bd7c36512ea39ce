"""Readers for the erasure tests: every object version of the lake bucket, the visible records, the ledger."""

from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from typing import Any

import pyarrow.parquet as pq

from exportlake.domain.erasure import decode_index, person_key, short_key


def versions(s3: Any, bucket: str) -> list[tuple[str, str, bool]]:
    """(key, version id, is latest) of every object version (delete markers aside) in the bucket."""
    out: list[tuple[str, str, bool]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        out.extend((v["Key"], v["VersionId"], bool(v["IsLatest"])) for v in page.get("Versions", []))
    return out


def version_ids(s3: Any, bucket: str) -> set[tuple[str, str]]:
    """Every version and delete marker, by (key, version id)."""
    out: set[tuple[str, str]] = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        out |= {(v["Key"], v["VersionId"]) for v in page.get("Versions", []) + page.get("DeleteMarkers", [])}
    return out


def holders(s3: Any, bucket: str, values: set[str], salt: bytes) -> list[str]:
    """Every object version (key@version) that holds any of ``values``, by content, whatever its kind."""
    found: list[str] = []
    wanted_keys = {short_key(person_key(salt, c, v)) for v in values for c in ("userid", "client_id")}
    for key, version, _ in versions(s3, bucket):
        body = s3.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read()
        if key.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(body))
            hit = any(v in values for col in table.column_names for v in table[col].to_pylist())
        elif key.endswith(".gz"):
            hit = any(v.encode() in gzip.decompress(body) for v in values)
        elif key.endswith(".idx"):
            hit = bool(decode_index(body) & wanted_keys)
        else:
            hit = any(v.encode() in body for v in values)
        if hit:
            found.append(f"{key}@{version}")
    return found


def visible(s3: Any, glue: Any, bucket: str, database: str) -> Counter[tuple[str, str, tuple[tuple[str, Any], ...]]]:
    """Every record Athena would read (through the registered partitions): (table, result id, row) → count."""
    out: Counter[tuple[str, str, tuple[tuple[str, Any], ...]]] = Counter()
    for t in glue.get_tables(DatabaseName=database)["TableList"]:
        if t.get("TableType") != "EXTERNAL_TABLE":
            continue
        for p in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=t["Name"]):
            for part in p["Partitions"]:
                prefix = part["StorageDescriptor"]["Location"].split(f"s3://{bucket}/", 1)[1]
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                    for o in page.get("Contents", []):
                        body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                        for row in pq.read_table(io.BytesIO(body)).to_pylist():
                            out[(t["Name"], part["Values"][2], tuple(sorted(row.items())))] += 1
    return out


def without(records: Counter[Any], column: str, values: set[str]) -> Counter[Any]:
    """``records`` minus the rows whose ``column`` holds one of ``values``."""
    return Counter({k: n for k, n in records.items() if dict(k[2]).get(column) not in values})


def userids_by_results(records: Counter[Any]) -> Counter[str]:
    """userid → in how many results it appears."""
    seen = {(dict(k[2]).get("userid"), k[1]) for k in records if dict(k[2]).get("userid")}
    return Counter(u for u, _ in seen)


def ledger_text(ddb: Any, table: str) -> str:
    """Every ledger item as text (to prove no clear id is stored)."""
    items = [i for page in ddb.get_paginator("scan").paginate(TableName=table) for i in page.get("Items", [])]
    return json.dumps(items)
