"""``exportlake verify``: re-read a landed result and check that every record of it agrees.

Raw archive (gzip size, then the SHA-256 and length of the JSON inside), Parquet parts (sizes and row counts from
their footers), manifest, Glue partition (location) and ledger (rows, bytes, location) must tell one story.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import zlib
from dataclasses import asdict, dataclass, field
from datetime import UTC
from typing import Any

from exportlake import bootstrap
from exportlake.cli.doctor import preflight
from exportlake.cli.exitcodes import ExitCode, checks_exit
from exportlake.domain import wording
from exportlake.domain.models import ResultState
from exportlake.domain.naming import manifest_key, parse_timestamp, partition_values
from exportlake.domain.ports import LedgerEntry

_CHUNK = 8 << 20


@dataclass
class Verdict:
    """What ``verify`` found for one result."""

    export: str
    result_id: str
    rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing drifted."""
        return not self.problems

    def line(self) -> str:
        """One line for people."""
        head = f"{self.export} {self.result_id}"
        return f"ok    {head}: {self.rows} rows agree" if self.ok else f"DRIFT {head}: {'; '.join(self.problems)}"

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {**asdict(self), "ok": self.ok}


def _raw_digest(s3: Any, bucket: str, key: str) -> tuple[int, int, str]:
    """(gzip bytes, JSON bytes, SHA-256 of the JSON) of the raw archive, streamed."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    inflate = zlib.decompressobj(wbits=31)
    digest = hashlib.sha256()
    packed = unpacked = 0
    while chunk := body.read(_CHUNK):
        packed += len(chunk)
        data = inflate.decompress(chunk)
        while True:  # concatenated gzip members (a parallel gzip writes several)
            unpacked += len(data)
            digest.update(data)
            if not inflate.eof or not inflate.unused_data:
                break
            rest = inflate.unused_data
            inflate = zlib.decompressobj(wbits=31)
            data = inflate.decompress(rest)
    tail = inflate.flush()
    unpacked += len(tail)
    digest.update(tail)
    return packed, unpacked, digest.hexdigest()


def _parquet_rows(s3: Any, bucket: str, key: str) -> int:
    import pyarrow.parquet as pq

    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return int(pq.ParquetFile(io.BytesIO(data)).metadata.num_rows)


def check(s3: Any, catalog: Any, entry: LedgerEntry, bucket: str) -> Verdict:
    """Compare ledger, manifest, raw archive, parts and partition of one copied result."""
    verdict = Verdict(entry.export_name, entry.result_id, entry.rows)
    problems = verdict.problems
    try:
        manifest = json.loads(
            s3.get_object(Bucket=bucket, Key=manifest_key(entry.export_name, entry.result_id))["Body"].read()
        )
    except Exception as exc:
        problems.append(f"manifest unreadable: {wording.describe(exc)}")
        return verdict
    rows = int(manifest.get("rows", -1))
    location = str(manifest.get("location", ""))
    raw = manifest.get("raw", {})
    # The ledger keeps what the copy recorded; an erasure rewrote the result since and kept those figures.
    copied = (manifest.get("erasure") or {}).get("copied") or {}
    copied_rows = int(copied.get("rows", rows))
    copied_bytes = int(copied.get("json_bytes", raw.get("json_bytes", -1)))
    copied_location = str(copied.get("location", location))
    if copied_rows != entry.rows:
        problems.append(f"ledger rows {entry.rows} != manifest rows {copied_rows}")
    if entry.location and entry.location != copied_location:
        problems.append(f"ledger location {entry.location} != manifest {copied_location}")
    if entry.bytes and copied_bytes != entry.bytes:
        problems.append(f"ledger bytes {entry.bytes} != manifest json_bytes {copied_bytes}")
    try:
        if raw.get("key"):  # an empty key: copied with the raw archive turned off, nothing to compare
            packed, unpacked, sha = _raw_digest(s3, bucket, str(raw.get("key")))
            if packed != int(raw.get("gzip_bytes", -1)):
                problems.append(f"raw archive is {packed} bytes, manifest says {raw.get('gzip_bytes')}")
            if unpacked != int(raw.get("json_bytes", -1)) or sha != raw.get("sha256"):
                problems.append("raw JSON does not match the manifest's SHA-256/length")
    except Exception as exc:
        problems.append(f"raw archive unreadable: {wording.describe(exc)}")
    part_rows = 0
    for part in manifest.get("parts", []):
        key = str(part.get("key", ""))
        try:
            size = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
            if size != int(part.get("bytes", -1)):
                problems.append(f"part {key.rsplit('/', 1)[-1]} is {size} bytes, manifest says {part.get('bytes')}")
            counted = _parquet_rows(s3, bucket, key)
            if counted != int(part.get("rows", -1)):
                problems.append(f"part {key.rsplit('/', 1)[-1]} holds {counted} rows, manifest says {part.get('rows')}")
            part_rows += counted
        except Exception as exc:
            problems.append(f"part {key} unreadable: {wording.describe(exc)}")
    if part_rows != rows:
        problems.append(f"parts hold {part_rows} rows, manifest says {rows}")
    table = str(manifest.get("table", entry.table))
    day = parse_timestamp(manifest.get("created_at"), "created_at").astimezone(UTC).strftime("%Y-%m-%d")
    values = partition_values(entry.export_name, day, entry.result_id)
    found = [p for p in catalog.partitions(table) if p.get("Values") == values]
    if not found:
        problems.append(f"no Glue partition {values} in {table}")
    elif found[0].get("StorageDescriptor", {}).get("Location", "").rstrip("/") != location.rstrip("/"):
        problems.append(f"partition location {found[0]['StorageDescriptor'].get('Location')} != manifest {location}")
    return verdict


def verify(
    s3: Any, catalog: Any, ledger: Any, bucket: str, *, export: str | None = None, result_id: str | None = None
) -> list[Verdict]:
    """Check every copied result (of ``export``; or the one ``result_id``)."""
    retired = bootstrap.privacy_store().retired()  # removed by lakeRetentionDays: expected gone
    entries = [
        e
        for e in ledger.all_entries()
        if e.state == ResultState.COPIED
        and (e.export_name, e.result_id) not in retired
        and (export is None or e.export_name == export)
        and (result_id is None or e.result_id == result_id)
    ]
    return [check(s3, catalog, e, bucket) for e in sorted(entries, key=lambda e: (e.export_name, e.created_at))]


def cmd_verify(args: argparse.Namespace) -> ExitCode:
    """Re-read landed results and check that raw, parts, manifest, partition and ledger agree."""
    preflight(("settings", "aws", "resources"))
    s = bootstrap.settings()
    results = verify(
        bootstrap.client("s3"),
        bootstrap.catalog(),
        bootstrap.ledger(),
        s.bucket,
        export=args.export,
        result_id=args.result_id,
    )
    if getattr(args, "json", False):
        print(json.dumps([r.as_dict() for r in results], indent=1))
    else:
        for r in results:
            print(r.line())
        if not results:
            print("no copied result matches")
    return checks_exit(bool(results) and all(r.ok for r in results))
