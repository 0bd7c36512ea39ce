"""The copy service: one result per job, into the lake exactly once, over ports (stdlib only).

Order of visible effects, each idempotent so a crash anywhere is completed or replaced by a re-run:
parts and raw original (invisible: no partition yet) → manifest → Glue partition → latest-result pointer
(``domain.latest``) → ledger ``copied`` → SNS.
Every step after the download runs under a short copy lease renewed by a heartbeat (``domain.lease``) and is
taken only after checking the lease is still held, so a copier that lost it (paused, partitioned) stops before
it can make anything visible, and a killed copier's lease lapses in seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Protocol

from exportlake.domain import latest, metricnames, notices, wording
from exportlake.domain.errors import (
    DocumentError,
    DownloadExpired,
    ExportlakeError,
    HeldElsewhere,
    LeaseLost,
    TransientError,
)
from exportlake.domain.lease import Lease, holder_is_dead, new_owner
from exportlake.domain.location import ResultLocation
from exportlake.domain.manifest import Manifest, RawOriginal
from exportlake.domain.models import CopyJob, CopyOutcome, ResultState, SchemaDiff
from exportlake.domain.naming import manifest_key, raw_key, validate_column_name
from exportlake.domain.ports import (
    Catalog,
    Conversion,
    Converter,
    Gateway,
    LakeStore,
    Ledger,
    LedgerEntry,
    Metrics,
    Notifier,
)
from exportlake.domain.schemas import EXPORT_TYPES
from exportlake.domain.timefmt import to_text, utc_now

log = logging.getLogger(__name__)


class CopyPrivacy(Protocol):
    """What the copier asks of erasure (``domain.erasing.EraseService``): the manifest to register, without the
    records of persons on the suppression list."""

    def suppress(self, manifest: Manifest, lease: Lease) -> Manifest: ...


#: The copy lease: renewed every third of it while a copy runs, so a dead copier's lapses within this.
LEASE_SECONDS = 30.0
DOWNLOAD_ATTEMPTS = 3


class CopyService:
    """Copies one export result into the lake, exactly once, and announces it at least once."""

    def __init__(
        self,
        gateway: Gateway,
        ledger: Ledger,
        catalog: Catalog,
        store: LakeStore,
        converter: Converter,
        notifier: Notifier,
        metrics: Metrics,
        *,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], datetime] = utc_now,
        heartbeat: bool = True,
        progress: Callable[[CopyJob, int, int, int | None], None] | None = None,
        privacy: CopyPrivacy | None = None,
    ):
        self._gateway = gateway
        self._ledger = ledger
        self._catalog = catalog
        self._store = store
        self._converter = converter
        self._notifier = notifier
        self._metrics = metrics
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._heartbeat = heartbeat
        #: ``progress(job, rows, bytes, length)`` while a result streams (``length``: declared size, or None).
        self._progress = progress
        #: Keeps suppressed persons out of a result before it is registered (``domain.erasing``); None: nobody.
        self._privacy = privacy
        #: Latest-result pointers this copier read or wrote (``domain.latest.advance``: fewer S3 requests when warm).
        self._pointers: latest.Known = {}

    # -- entry points -----------------------------------------------------------------------------------------
    def copy(self, job: CopyJob) -> CopyOutcome | None:
        """Copy ``job``'s result; ``None`` when there was nothing to do (already copied, or expired).

        Raises ``HeldElsewhere`` when another live copier holds the result, ``LeaseLost`` when this one lost it
        mid-way (both transient: the job is retried), and any other error of the attempt.
        """
        now = self._clock()
        if job.ref.is_expired(now):
            self._expire(job, now)
            return None
        owner = new_owner()
        entry = self._ledger.start_copy(job, owner, self._lease_seconds)
        if entry is None:
            # Held: take it over only from a holder provably dead (read the holder only now, so the common case,
            # a free result, costs one ledger write and no read).
            dead = self._dead_holder(job, now)
            entry = self._ledger.start_copy(job, owner, self._lease_seconds, take_over=dead) if dead else None
        if entry is None:
            raise HeldElsewhere(f"result {job.result_id} is being copied by another copier")
        if entry.state == ResultState.COPIED:
            if not entry.notified:  # the previous copier stopped between the ledger and SNS
                self._notify_copied(job, self._outcome_from_entry(job, entry), owner)
            return None
        lease = Lease(
            owner,
            self._lease_seconds,
            lambda: self._ledger.renew_lease(job, owner, self._lease_seconds),
            heartbeat=self._heartbeat,
        )
        lease.acquired_wall = now
        # The ledger proves a first attempt ever: no manifest, parts or uploads of an earlier one can exist, so the
        # crash-recovery probes (manifest read, prefix listing, open uploads) are skipped.
        first = entry.first_attempt
        try:
            manifest = None if first else self._read_manifest(job)
            outcome = self._resume(job, manifest, lease) if manifest else None
            if outcome is None:
                outcome = self._copy_fresh(job, lease, first=first)
            lease.check()
            won = self._ledger.mark_copied(
                job,
                owner,
                rows=outcome.rows,
                size=outcome.bytes_in,
                table=outcome.table,
                location=outcome.location,
                notify_seconds=notices.NOTIFY_LEASE_SECONDS,  # the winner holds the notice's claim at once
            )
        except BaseException as exc:
            lease.release()
            if not isinstance(exc, LeaseLost):  # a lost lease is not ours to give back
                self._ledger.end_attempt(job, owner, wording.describe(exc))
            raise
        lease.release()
        if won:
            self._announce(job, outcome, owner)
        else:
            # Another call made the transition (a retried write whose first answer was lost): the notification
            # is still owed until someone has claimed and sent it.
            self._notify_copied(job, outcome, owner)
        if won:
            self._metrics.add(metricnames.RESULTS_COPIED, 1, "Count")
            self._metrics.add(metricnames.ROWS_COPIED, outcome.rows, "Count")
            self._metrics.add(metricnames.BYTES_COPIED, outcome.bytes_in, "Bytes")
            lag = max(0.0, (self._clock() - job.created_at).total_seconds())
            self._metrics.add(metricnames.LAG_SECONDS, lag, "Seconds")
        return outcome

    def fail(self, job: CopyJob, error: str) -> bool:
        """Record a final failure and tell people, once; True if this call did."""
        if not self._ledger.mark_failed(job, error):
            return False
        self._metrics.add(metricnames.RESULTS_FAILED, 1, "Count")
        # If this publish fails, the planner sends it on its next run (the ledger says "not notified").
        notices.notify_once(
            self._ledger,
            job.export_name,
            job.result_id,
            ResultState.FAILED,
            lambda: notices.result_failed(self._notifier, job.export_name, job.result_id, error),
        )
        return True

    # -- the copy ---------------------------------------------------------------------------------------------
    def _copy_fresh(self, job: CopyJob, lease: Lease, *, first: bool = False) -> CopyOutcome:
        last: ExportlakeError = TransientError("no download attempt made")
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            lease.check()
            # The pre-signed URL may live only minutes: fetch it right before each download.
            url = self._gateway.download_url(job.result_id)
            try:
                with self._gateway.open_download(url) as chunks:
                    conversion = self._convert(job, chunks, lease)
                break
            except (DownloadExpired, TransientError) as exc:
                if isinstance(exc, LeaseLost):
                    raise
                log.warning("download of %s attempt %d: %s", job.result_id, attempt, exc)
                last = exc
        else:
            raise last
        return self._finish(job, conversion, lease, first=first)

    def _convert(self, job: CopyJob, chunks: Iterator[bytes], lease: Lease) -> Conversion:
        told, progress = self._progress, None
        if told is not None:  # the download has started: 0 rows, 0 bytes, of its declared length
            length = getattr(chunks, "length", None)
            told(job, 0, 0, length)

            def progress(rows: int, done: int) -> None:
                told(job, rows, done, length)

        return self._converter.convert(
            chunks,
            raw_key=raw_key(job.export_name, job.result_id),
            place=lambda table: ResultLocation.of(table, job.export_name, job.created_at, job.result_id),
            check=lease.check,
            progress=progress,
        )

    def _finish(self, job: CopyJob, conv: Conversion, lease: Lease, *, first: bool = False) -> CopyOutcome:
        """Everything after the objects exist: tidy the prefix (not on a first attempt: only its own objects are
        there), the table, the manifest, the partition."""
        place = conv.place
        written = {p.key for p in conv.parts}
        try:
            lease.check()
            if not first:
                self._tidy(place, keep=written)
            fields = [validate_column_name(f) for f in conv.fields]
            lease.check()
            columns, diff = self._reconcile_table(job, place.table, fields, has_rows=conv.rows > 0)
            manifest = Manifest(
                export_name=job.export_name,
                result_id=job.result_id,
                created_at=job.created_at,
                table=place.table,
                columns=tuple(columns),
                rows=conv.rows,
                location=place.uri(self._store.bucket),
                raw=RawOriginal(
                    key=place.raw_key if conv.raw_gzip_bytes else "",  # "": the raw archive is turned off
                    json_bytes=conv.bytes_in,
                    sha256=conv.sha256,
                    gzip_bytes=conv.raw_gzip_bytes,
                ),
                parts=conv.parts,
                schema_diff=diff,
                copied_at=to_text(self._clock()),
            )
            self._confirm(lease)
            self._store.put(place.manifest_key, manifest.to_json(), "application/json")
        except BaseException:
            # Nothing of a failed copy may linger, even invisible (no partition names it yet).
            if not lease.lost:  # a lost lease means the prefix is another copier's now: touch nothing
                self._tidy(place, keep=set())
            raise
        manifest = self._suppress(manifest, lease)
        self._confirm(lease)
        self._catalog.register_partition(place.table, place.values, manifest.location, columns)
        latest.advance(self._store, latest.Pointer.of(manifest), self._pointers)  # after the partition, never before
        return self._outcome(manifest, diff)

    def _resume(self, job: CopyJob, manifest: Manifest, lease: Lease) -> CopyOutcome | None:
        """Finish a copy whose objects and manifest are written (a crash before the partition or ledger).

        ``None`` when the manifest's parts are not all there (someone removed them): copy afresh instead.
        """
        place = manifest.place  # the manifest's own partition: a re-queued job may carry another created_at
        present = set(self._store.list_keys(place.prefix))
        wanted = {p.key for p in manifest.parts}
        if not wanted <= present:
            log.warning("manifest of %s names parts that are gone; copying afresh", job.result_id)
            return None
        lease.check()
        self._tidy(place, keep=wanted, present=present)
        columns = list(manifest.columns)
        if self._catalog.columns(place.table) is None:
            self._catalog.create_table(place.table, columns)
        manifest = self._suppress(manifest, lease)
        lease.confirm()
        self._catalog.register_partition(place.table, place.values, manifest.location, columns)
        latest.advance(self._store, latest.Pointer.of(manifest), self._pointers)  # after the partition, never before
        return self._outcome(manifest, manifest.schema_diff)

    def _suppress(self, manifest: Manifest, lease: Lease) -> Manifest:
        """The manifest to register: without the records of suppressed persons (a rewrite when it held any)."""
        if self._privacy is None:
            return manifest
        return self._privacy.suppress(manifest, lease)

    # -- steps ------------------------------------------------------------------------------------------------
    def _tidy(self, place: ResultLocation, keep: set[str], present: set[str] | None = None) -> None:
        """Delete objects under the result's prefix that are not ``keep`` and abort uploads left open there.

        They are what killed or failed attempts left behind: never visible (no partition yet, or not in the
        manifest a registered partition was made from) but never to stay.
        """
        keys = present if present is not None else set(self._store.list_keys(place.prefix))
        stale = sorted(keys - keep)
        if stale:
            self._store.delete(stale)
        self._store.abort_uploads(place.prefix)
        self._store.abort_uploads(place.raw_key)

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

    def _read_manifest(self, job: CopyJob) -> Manifest | None:
        body = self._store.get(manifest_key(job.export_name, job.result_id))
        if body is None:
            return None
        try:
            return Manifest.from_json(body, export_name=job.export_name, result_id=job.result_id)
        except DocumentError as exc:
            # Not ours to trust: copy afresh (it is rewritten after the new parts).
            log.warning("%s; copying afresh", exc)
            return None

    def _expire(self, job: CopyJob, now: datetime) -> None:
        if not self._ledger.mark_expired(job.ref, now=to_text(now)):
            return
        self._metrics.add(metricnames.RESULTS_EXPIRED, 1, "Count")
        expires = "" if job.expires_at is None else to_text(job.expires_at)
        notices.notify_once(
            self._ledger,
            job.export_name,
            job.result_id,
            ResultState.EXPIRED,
            lambda: notices.result_expired(
                self._notifier, job.export_name, job.result_id, to_text(job.created_at), expires
            ),
        )

    def _dead_holder(self, job: CopyJob, now: datetime) -> str:
        """The owner of a live lease on ``job`` whose process is provably gone (may be taken over now), or ""."""
        entry = self._ledger.get(job.export_name, job.result_id)
        if entry is not None and entry.lease_live(to_text(now)) and holder_is_dead(entry.lease_owner):
            return entry.lease_owner
        return ""

    def _confirm(self, lease: Lease) -> None:
        """Prove the lease before a visible step: a renewal, unless it was proven within a third of its length
        (by the lease's own clock and the service's): nobody can hold it then but a taker of a provably dead
        holder, and this copier is alive. Small results so make no renewal at all."""
        within = self._lease_seconds / 3
        wall = lease.acquired_wall
        if wall is not None and (self._clock() - wall).total_seconds() < within and lease.proven_within(within):
            lease.check()
            return
        lease.confirm()

    # -- notifications ----------------------------------------------------------------------------------------
    def _announce(self, job: CopyJob, outcome: CopyOutcome, owner: str) -> None:
        """Send ``result.copied`` under the claim ``mark_copied`` took with the transition, then record it sent."""
        try:
            self._publish_copied(job, outcome)
        except BaseException:
            self._ledger.release_notification(job.export_name, job.result_id)
            raise
        self._ledger.mark_notified(job.export_name, job.result_id)

    def _notify_copied(self, job: CopyJob, outcome: CopyOutcome, owner: str) -> None:
        entry = self._ledger.get(job.export_name, job.result_id)
        take_over = ""
        if (
            entry is not None
            and entry.notify_owner
            and (entry.notify_owner == owner or holder_is_dead(entry.notify_owner))
        ):  # its claim is ours (a retried mark_copied took it) or a dead sender's
            take_over = entry.notify_owner
        # Sent already, or being sent by another live copier: nothing to do.
        notices.notify_once(
            self._ledger,
            job.export_name,
            job.result_id,
            ResultState.COPIED,
            lambda: self._publish_copied(job, outcome),
            owner=owner,
            take_over=take_over,
        )

    def _publish_copied(self, job: CopyJob, outcome: CopyOutcome) -> None:
        notices.result_copied(
            self._notifier,
            export_name=job.export_name,
            result_id=job.result_id,
            rows=outcome.rows,
            size=outcome.bytes_in,
            created_at=to_text(job.created_at),
            location=outcome.location,
            athena_table=f"{self._catalog.database}.{outcome.table}",
            manifest=f"s3://{self._store.bucket}/{outcome.manifest_key}",
        )

    def _notify_schema(self, job: CopyJob, table: str, diff: SchemaDiff, columns: list[str]) -> None:
        notices.schema_changed(
            self._notifier,
            export_name=job.export_name,
            result_id=job.result_id,
            athena_table=f"{self._catalog.database}.{table}",
            added=diff.added,
            missing=diff.missing,
            columns=columns,
        )

    def _outcome(self, manifest: Manifest, diff: SchemaDiff) -> CopyOutcome:
        return CopyOutcome(
            export_name=manifest.export_name,
            result_id=manifest.result_id,
            table=manifest.table,
            rows=manifest.rows,
            bytes_in=manifest.raw.json_bytes,
            location=manifest.location,
            raw_key=manifest.raw.key,
            manifest_key=manifest.place.manifest_key,
            parts=[p.key for p in manifest.parts],
            schema_diff=diff,
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
