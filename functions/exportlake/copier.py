"""The copier: one result per job, streamed from the object store to S3 (raw + Parquet), then catalogued.

Order of visible effects, each step idempotent so a crash anywhere is completed or replaced by a re-run:
parts and raw original (invisible: no partition yet) → manifest → Glue partition → ledger ``copied`` → SNS.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from exportlake.adapters.catalog import GlueCatalog
from exportlake.adapters.jsonrecords import DEFAULT_BATCH_BYTES, RecordStream
from exportlake.adapters.parquetsink import PartInfo, write_parquet
from exportlake.adapters.rawarchive import gzip_writer, tee
from exportlake.adapters.s3sink import MultipartSink
from exportlake.domain.errors import DocumentError, DownloadExpired, ExportlakeError, TransientError
from exportlake.domain.limits import COPIER_TIMEOUT_SECONDS
from exportlake.domain.models import CopyJob, CopyOutcome, ResultState, SchemaDiff
from exportlake.domain.naming import (
    manifest_key,
    now_utc,
    parse_timestamp,
    part_key,
    partition_prefix,
    partition_values,
    raw_key,
    validate_column_name,
    validate_table_name,
)
from exportlake.domain.planning import publish_failed
from exportlake.domain.ports import Gateway, Ledger, LedgerEntry, Metrics, Notifier, notify_once
from exportlake.domain.schemas import EXPORT_TYPES

log = logging.getLogger(__name__)

LEASE_SECONDS = COPIER_TIMEOUT_SECONDS + 60  # outlives any attempt of the copier
DOWNLOAD_ATTEMPTS = 3
ROW_GROUP_ROWS = 65_536
MANIFEST_VERSION = 1


class Copier:
    """Copies one export result into the lake, exactly once."""

    def __init__(
        self,
        gateway: Gateway,
        ledger: Ledger,
        catalog: GlueCatalog,
        s3_client: Any,
        bucket: str,
        notifier: Notifier,
        metrics: Metrics,
        *,
        part_size: int = 5 << 20,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        clock: Callable[[], datetime] = now_utc,
    ):
        self._gateway = gateway
        self._ledger = ledger
        self._catalog = catalog
        self._s3 = s3_client
        self._bucket = bucket
        self._notifier = notifier
        self._metrics = metrics
        self._part_size = part_size
        self._batch_bytes = batch_bytes
        self._clock = clock

    # -- entry points -----------------------------------------------------------------------------------------
    def copy(self, job: CopyJob) -> CopyOutcome | None:
        """Copy ``job``'s result; ``None`` when it was already done. Raise on failure (the job is retried)."""
        entry = self._ledger.start_copy(job, LEASE_SECONDS)
        if entry is None:
            raise TransientError(f"result {job.result_id} is being copied by another copier")
        if entry.state == ResultState.COPIED:
            if not entry.notified:  # the previous copier stopped between the ledger and SNS
                self._notify_copied(job, self._outcome_from_entry(job, entry))
            return None
        try:
            manifest = self._read_manifest(job)
            outcome = self._resume(job, manifest) if manifest else self._copy_fresh(job)
            won = self._ledger.mark_copied(
                job, rows=outcome.rows, size=outcome.bytes_in, table=outcome.table, location=outcome.location
            )
            # Even when another call made the transition (a retried write whose first answer was lost, a
            # duplicate copier), the notification is still owed until someone has claimed and sent it.
            self._notify_copied(job, outcome)
            if won:
                self._metrics.add("ResultsCopied", 1, "Count")
                self._metrics.add("RowsCopied", outcome.rows, "Count")
                self._metrics.add("BytesCopied", outcome.bytes_in, "Bytes")
                lag = max(0.0, (self._clock() - job.created_at).total_seconds())
                self._metrics.add("LagSeconds", lag, "Seconds")
        except BaseException as exc:
            self._ledger.end_attempt(job, f"{type(exc).__name__}: {exc}")
            raise
        return outcome

    def fail(self, job: CopyJob, error: str) -> bool:
        """Record a final failure and tell people, once; True if this call did."""
        if not self._ledger.mark_failed(job, error):
            return False
        self._metrics.add("ResultsFailed", 1, "Count")
        # If this publish fails, the planner sends it on its next run (the ledger says "not notified").
        notify_once(
            self._ledger,
            job.export_name,
            job.result_id,
            ResultState.FAILED,
            lambda: publish_failed(self._notifier, job.export_name, job.result_id, error),
        )
        return True

    # -- the copy ---------------------------------------------------------------------------------------------
    def _copy_fresh(self, job: CopyJob) -> CopyOutcome:
        last: ExportlakeError = TransientError("no download attempt made")
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            # The pre-signed URL may live only minutes: fetch it right before each download.
            url = self._gateway.download_url(job.result_id)
            try:
                with self._gateway.open_download(url) as chunks:
                    return self._convert(job, chunks)
            except (DownloadExpired, TransientError) as exc:
                log.warning("download of %s attempt %d: %s", job.result_id, attempt, exc)
                last = exc
        raise last

    def _convert(self, job: CopyJob, chunks: Iterator[bytes]) -> CopyOutcome:
        rkey = raw_key(job.export_name, job.result_id)
        raw_sink = MultipartSink(
            self._s3, self._bucket, rkey, part_size=self._part_size, content_type="application/gzip"
        )
        table: str | None = None
        prefix = ""
        written: list[str] = []
        gz: Any = None
        try:
            gz = gzip_writer(raw_sink)
            stream = RecordStream(tee(chunks, gz), batch_bytes=self._batch_bytes)

            def open_part(index: int) -> BinaryIO:
                nonlocal table, prefix
                if table is None:  # the key is known once the document's opening is parsed
                    table = validate_table_name(stream.key)
                    prefix = partition_prefix(table, job.export_name, job.ref.created_date, job.result_id)
                key = part_key(prefix, index)
                written.append(key)
                return cast(
                    BinaryIO,
                    MultipartSink(
                        self._s3,
                        self._bucket,
                        key,
                        part_size=self._part_size,
                        content_type="application/vnd.apache.parquet",
                    ),
                )

            parts = write_parquet(stream.batches(), open_part, background=False, row_group_rows=ROW_GROUP_ROWS)
            gz.close()
            raw_sink.close()
            if table is None:  # an empty document: no part was opened
                table = validate_table_name(stream.key)
                prefix = partition_prefix(table, job.export_name, job.ref.created_date, job.result_id)
            fields = [validate_column_name(f) for f in stream.fields]
            self._remove_stale_parts(prefix, keep=set(written))
            columns, diff = self._reconcile_table(job, table, fields, has_rows=stream.records > 0)
            outcome = CopyOutcome(
                export_name=job.export_name,
                result_id=job.result_id,
                table=table,
                rows=stream.records,
                bytes_in=stream.bytes_read,
                location=f"s3://{self._bucket}/{prefix}",
                raw_key=rkey,
                manifest_key=manifest_key(job.export_name, job.result_id),
                parts=written,
                schema_diff=diff,
            )
            self._write_manifest(job, outcome, parts, columns, stream.sha256, raw_sink)
        except BaseException:
            if gz is not None and not gz.closed:
                with contextlib.suppress(Exception):  # stop its threads; the sink below is aborted anyway
                    gz.close()
            raw_sink.abort()
            if prefix:  # nothing of a failed copy may linger, even invisible
                self._remove_stale_parts(prefix, keep=set())
            raise
        self._register(outcome, partition_values(job.export_name, job.ref.created_date, job.result_id), columns)
        return outcome

    def _resume(self, job: CopyJob, manifest: dict[str, Any]) -> CopyOutcome:
        """Finish a copy whose objects and manifest are written (a crash before the partition or ledger)."""
        table = validate_table_name(manifest.get("table"))
        columns = [validate_column_name(c) for c in manifest.get("columns", [])]
        # The partition the parts were written under, from the manifest (a re-queued job may carry another
        # created_at, hence another day).
        day = parse_timestamp(manifest.get("created_at"), "manifest created_at").astimezone(UTC).strftime("%Y-%m-%d")
        prefix = partition_prefix(table, job.export_name, day, job.result_id)
        outcome = CopyOutcome(
            export_name=job.export_name,
            result_id=job.result_id,
            table=table,
            rows=int(manifest.get("rows", 0)),
            bytes_in=int(manifest.get("raw", {}).get("json_bytes", 0)),
            location=f"s3://{self._bucket}/{prefix}",
            raw_key=raw_key(job.export_name, job.result_id),
            manifest_key=manifest_key(job.export_name, job.result_id),
            parts=[p["key"] for p in manifest.get("parts", [])],
        )
        if self._catalog.columns(table) is None:
            self._catalog.create_table(table, columns)
        self._register(outcome, partition_values(job.export_name, day, job.result_id), columns)
        return outcome

    # -- steps ------------------------------------------------------------------------------------------------
    def _reconcile_table(
        self, job: CopyJob, table: str, fields: list[str], *, has_rows: bool
    ) -> tuple[list[str], SchemaDiff]:
        """Make sure the table exists and holds every field of this result; report differences.

        ``schema.changed`` goes out before the table changes: a crash in between tells again on the retry
        (which still sees the difference), whereas the other order could never tell at all.
        """
        columns = self._catalog.columns(table)
        if columns is None:
            known = EXPORT_TYPES.get(table)
            if known is None:
                # A type never seen before: its table comes from this result's fields.
                diff = SchemaDiff(added=tuple(fields))
                self._notify_schema(job, table, diff, list(fields))
                self._catalog.create_table(table, fields)
                # Read it back: another copier may have created it first, from other fields; add ours.
                columns = self._catalog.columns(table) or list(fields)
                extra = [f for f in fields if f not in columns]
                if extra:
                    columns = self._catalog.add_columns(table, extra)
                return columns, diff
            self._catalog.create_table(table, known.columns, known.description)
            columns = self._catalog.columns(table) or list(known.columns)
        added = tuple(f for f in fields if f not in columns)
        missing = tuple(c for c in columns if c not in fields) if has_rows else ()
        diff = SchemaDiff(added=added, missing=missing)
        if diff.changed:
            self._notify_schema(job, table, diff, [*columns, *added])
        if added:
            columns = self._catalog.add_columns(table, added)
        return columns, diff

    def _register(self, outcome: CopyOutcome, values: list[str], columns: list[str]) -> None:
        self._catalog.register_partition(outcome.table, values, outcome.location, columns)

    def _write_manifest(
        self,
        job: CopyJob,
        outcome: CopyOutcome,
        parts: list[PartInfo],
        columns: list[str],
        sha256: str,
        raw_sink: MultipartSink,
    ) -> None:
        manifest = {
            "version": MANIFEST_VERSION,
            "export_name": job.export_name,
            "result_id": job.result_id,
            "created_at": job.created_at.isoformat(),
            "table": outcome.table,
            "columns": columns,
            "rows": outcome.rows,
            "location": outcome.location,
            "raw": {
                "key": outcome.raw_key,
                "json_bytes": outcome.bytes_in,
                "sha256": sha256,
                "gzip_bytes": raw_sink.size,
            },
            "parts": [
                {"key": key, "rows": p.rows, "bytes": p.bytes, "columns": list(p.columns)}
                for key, p in zip(outcome.parts, parts, strict=True)
            ],
            "schema_diff": {"added": list(outcome.schema_diff.added), "missing": list(outcome.schema_diff.missing)},
            "copied_at": self._clock().isoformat(),
        }
        self._s3.put_object(
            Bucket=self._bucket,
            Key=outcome.manifest_key,
            Body=json.dumps(manifest, indent=1).encode(),
            ContentType="application/json",
        )

    def _read_manifest(self, job: CopyJob) -> dict[str, Any] | None:
        try:
            resp = self._s3.get_object(Bucket=self._bucket, Key=manifest_key(job.export_name, job.result_id))
        except self._s3.exceptions.NoSuchKey:
            return None
        data = json.loads(resp["Body"].read())
        if not isinstance(data, dict) or data.get("result_id") != job.result_id:
            raise DocumentError(f"manifest of {job.result_id} is not a manifest")
        return data

    def _remove_stale_parts(self, prefix: str, keep: set[str]) -> None:
        """Delete objects below an unregistered partition's prefix that this copy did not write."""
        stale: list[dict[str, str]] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
            stale.extend({"Key": o["Key"]} for o in page.get("Contents", []) if o["Key"] not in keep)
        for i in range(0, len(stale), 1000):
            self._s3.delete_objects(Bucket=self._bucket, Delete={"Objects": stale[i : i + 1000], "Quiet": True})

    # -- notifications ----------------------------------------------------------------------------------------
    def _notify_copied(self, job: CopyJob, outcome: CopyOutcome) -> None:
        # Sent already, or being sent by another copier: nothing to do.
        notify_once(
            self._ledger, job.export_name, job.result_id, ResultState.COPIED, lambda: self._publish_copied(job, outcome)
        )

    def _publish_copied(self, job: CopyJob, outcome: CopyOutcome) -> None:
        self._notifier.publish(
            "result.copied",
            job.export_name,
            f"exportlake: {outcome.rows} rows of {job.export_name} landed in {outcome.table}",
            {
                "export": job.export_name,
                "result_id": job.result_id,
                "rows": outcome.rows,
                "bytes": outcome.bytes_in,
                "created_at": job.created_at.isoformat(),
                "s3_location": outcome.location,
                "athena_table": f"{self._catalog.database}.{outcome.table}",
                "manifest": f"s3://{self._bucket}/{outcome.manifest_key}",
            },
        )

    def _notify_schema(self, job: CopyJob, table: str, diff: SchemaDiff, columns: list[str]) -> None:
        self._notifier.publish(
            "schema.changed",
            job.export_name,
            f"exportlake: the fields of {job.export_name} differ from table {table}",
            {
                "export": job.export_name,
                "result_id": job.result_id,
                "athena_table": f"{self._catalog.database}.{table}",
                "added_fields": list(diff.added),
                "missing_fields": list(diff.missing),
                "table_columns": columns,
            },
        )

    def _outcome_from_entry(self, job: CopyJob, entry: LedgerEntry) -> CopyOutcome:
        return CopyOutcome(
            export_name=job.export_name,
            result_id=job.result_id,
            table=entry.table,
            rows=entry.rows,
            bytes_in=entry.bytes,
            location=entry.location,
            raw_key=raw_key(job.export_name, job.result_id),
            manifest_key=manifest_key(job.export_name, job.result_id),
        )
