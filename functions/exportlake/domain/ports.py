"""What the domain needs from the outside world (implemented in ``exportlake.adapters``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from exportlake.domain.location import ResultLocation
from exportlake.domain.manifest import ManifestPart
from exportlake.domain.models import CopyJob, Export, ResultRef, ResultState
from exportlake.domain.tablemerge import TableSync


@dataclass(frozen=True)
class LedgerEntry:
    """One result's row in the ledger."""

    export_name: str
    result_id: str
    state: ResultState
    created_at: str = ""
    expires_at: str = ""
    updated_at: str = ""
    rows: int = 0
    bytes: int = 0
    table: str = ""
    location: str = ""
    notified: bool = False
    error: str = ""
    attempts: int = 0
    #: Who holds the copy lease, and until when (ISO 8601 UTC); empty when nobody does.
    lease_owner: str = ""
    lease_until: str = ""
    #: Who holds the claim to send this result's notification, and until when.
    notify_owner: str = ""
    notify_until: str = ""
    #: True once the planner's SendMessage for a "queued" entry went out.
    enqueued: bool = False
    #: Copy attempts the result ever had (``attempts`` restarts at each claim; this never does), and the version of
    #: the code that created the item (2: it counts ``starts``; 0: written before, its history unknown).
    starts: int = 0
    version: int = 0

    @property
    def first_attempt(self) -> bool:
        """True right after the copy lease was taken for the first time ever: nothing of an earlier attempt
        (parts, manifest, open uploads) can exist, so a copier need not look for any."""
        return self.version >= 2 and self.starts == 1

    def lease_live(self, now: str) -> bool:
        """True while a copy lease is held and not lapsed at ``now`` (ISO 8601, comparable as text)."""
        return bool(self.lease_until) and self.lease_until >= now

    @property
    def ref(self) -> ResultRef:
        """The result this entry records (raises ``ValidationError`` if the stored values are not valid)."""
        return ResultRef.from_api(
            self.export_name,
            {"id": self.result_id, "created_at": self.created_at, "expires_at": self.expires_at or None},
        )


@dataclass(frozen=True)
class ExportState:
    """What the ledger remembers of one export between runs: its watermark and its reconciliation cursor.

    The watermark: every listed result at or above ``newest_id`` (newest first) was planned, when the listing held
    ``total`` results. The reconciliation (a full pass over the listing, at most once per ``reconcileHours``)
    runs over several runs: ``recon_page`` is the next page to read (0: no pass running), ``recon_from`` when the
    running pass started, ``recon_last`` the creation time of the last result it read, ``recon_at`` when the last
    complete pass started. Times are stored text (``domain.timefmt``).
    """

    export_name: str
    newest_id: str = ""
    newest_created: str = ""
    #: The listing's ``total`` at the watermark; -1 when unknown.
    total: int = -1
    #: "newest_first" once the pages read were seen newest first (never assumed); "" otherwise.
    order: str = ""
    #: Results per page as the server serves them (learned from a full first page); 0 when unknown.
    page_size: int = 0
    recon_at: str = ""
    recon_page: int = 0
    recon_from: str = ""
    recon_last: str = ""


@dataclass(frozen=True)
class ResultsPage:
    """One page of an export's results: the valid ones, how many items it held (valid or not), the ``total``."""

    refs: tuple[ResultRef, ...]
    count: int
    total: int


#: Called with (what, item as text, error) for each item from the API that fails validation and is skipped.
OnInvalid = Callable[[str, str, Exception], None]


class Gateway(Protocol):
    """The NeoDay gateway, authenticated.

    With ``on_invalid``, an item that fails validation is reported through it and skipped (one bad item never
    hides the others); without it, the first bad item raises ``ValidationError``.
    """

    def list_exports(self, on_invalid: OnInvalid | None = None) -> list[Export]: ...

    def list_results(self, export_name: str, on_invalid: OnInvalid | None = None) -> list[ResultRef]: ...

    def results_page(self, export_name: str, page: int, on_invalid: OnInvalid | None = None) -> ResultsPage:
        """Page ``page`` (from 1) of the export's results, in the order the gateway serves them."""
        ...

    def download_url(self, result_id: str) -> str: ...

    def open_download(self, url: str) -> AbstractContextManager[Iterator[bytes]]:
        """The document's chunks; the iterator may carry ``length``, the byte count the server declared (or None)."""
        ...


class Ledger(Protocol):
    """Per-result state, with conditional transitions so concurrent runs never double a step.

    Times are ISO 8601 UTC strings (comparable as text). ``owner`` is a lease owner token
    (``domain.lease.new_owner``); ``take_over`` names a provably dead holder whose lease may be replaced now.
    """

    def entries(self, export_name: str) -> dict[str, LedgerEntry]:
        """Every entry of one export (reads the export's whole history: reconciliation and fallbacks only)."""
        ...

    def get(self, export_name: str, result_id: str) -> LedgerEntry | None: ...

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LedgerEntry]:
        """The entries of ``(export, result id)`` keys that exist (consistent reads)."""
        ...

    def open_entries(self, export_name: str) -> dict[str, LedgerEntry]:
        """The export's unfinished entries: queued, copying, failed, or not yet announced (a sparse index)."""
        ...

    def adopt(self, export_name: str) -> int:
        """Index the export's unfinished entries written before the index existed; how many were tagged."""
        ...

    def export_states(self) -> dict[str, ExportState]:
        """Every export's state (watermark, reconciliation cursor), by export name."""
        ...

    def save_export_state(self, state: ExportState) -> None: ...

    def claim_queued(
        self,
        ref: ResultRef,
        *,
        retry_failed: bool = False,
        unsent_before: str = "",
        queued_before: str = "",
        now: str = "",
    ) -> bool: ...

    def mark_enqueued(self, ref: ResultRef) -> None: ...

    def release_queued(self, ref: ResultRef) -> None: ...

    def mark_expired(self, ref: ResultRef, *, now: str = "") -> bool: ...

    def start_copy(
        self, job: CopyJob, owner: str, lease_seconds: float, *, take_over: str = ""
    ) -> LedgerEntry | None: ...

    def renew_lease(self, job: CopyJob, owner: str, lease_seconds: float) -> bool: ...

    def mark_copied(
        self,
        job: CopyJob,
        owner: str,
        *,
        rows: int,
        size: int,
        table: str,
        location: str,
        notify_seconds: float = 0.0,
    ) -> bool:
        """Copied, by the lease holder; with ``notify_seconds`` the same write claims the notice for ``owner``."""
        ...

    def claim_notification(
        self,
        export_name: str,
        result_id: str,
        lease_seconds: float,
        state: ResultState = ResultState.COPIED,
        *,
        owner: str = "",
        take_over: str = "",
    ) -> bool: ...

    def release_notification(self, export_name: str, result_id: str) -> None: ...

    def mark_notified(self, export_name: str, result_id: str) -> None: ...

    def end_attempt(self, job: CopyJob, owner: str, error: str) -> None: ...

    def mark_failed(self, job: CopyJob, error: str, *, owner: str = "") -> bool: ...

    def claim_alert(self, key: str, fingerprint: str, resend_before: str) -> bool: ...

    def release_alert(self, key: str) -> None: ...

    def alerts(self) -> dict[str, str]: ...

    def cursor(self) -> str: ...

    def save_cursor(self, export_name: str) -> None: ...

    def claim_expiring_notice(self, export_name: str, result_id: str) -> bool: ...

    def release_expiring_notice(self, export_name: str, result_id: str) -> None: ...


class Sink(Protocol):
    """A writable object being uploaded: visible (whole) only after ``close()``; ``abort()`` discards it."""

    def write(self, data: Any, /) -> int: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class LakeStore(Protocol):
    """The lake bucket as the copy service needs it (keys are relative to the bucket)."""

    bucket: str

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, body: bytes, content_type: str) -> None: ...

    def get_versioned(self, key: str) -> tuple[bytes, str] | None: ...

    def put_if(self, key: str, body: bytes, content_type: str, *, etag: str | None) -> str | None: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def delete(self, keys: Sequence[str]) -> None: ...

    def open_object(self, key: str, content_type: str) -> Sink: ...

    def abort_uploads(self, prefix: str) -> int: ...


class Catalog(Protocol):
    """The Glue Data Catalog: one table per export type, one partition per result."""

    database: str

    def columns(self, table: str) -> list[str] | None: ...

    def create_table(self, table: str, columns: Sequence[str], description: str = "") -> None: ...

    def add_columns(self, table: str, new_columns: Sequence[str]) -> list[str]: ...

    def partition_exists(self, table: str, values: Sequence[str]) -> bool: ...

    def register_partition(self, table: str, values: Sequence[str], location: str, columns: Sequence[str]) -> bool: ...


class TableCatalog(Protocol):
    """The Glue tables of one database as the deploy-time resource sees them: ensured (merged), or dropped."""

    def ensure_table(self, table: str, columns: Sequence[str], description: str = "") -> TableSync: ...

    def drop_table(self, table: str) -> bool: ...


@dataclass(frozen=True)
class Conversion:
    """What the converter wrote for one document: where, how many rows, its parts and its raw original."""

    place: ResultLocation
    rows: int
    bytes_in: int
    sha256: str
    fields: tuple[str, ...]
    parts: tuple[ManifestPart, ...]
    raw_gzip_bytes: int


#: ``progress(rows, bytes)``: records decoded and document bytes read so far, told as the conversion goes.
Progress = Callable[[int, int], None]


class Converter(Protocol):
    """Streams one downloaded document into the lake: raw gzip original plus Parquet parts (not yet visible).

    ``place(table)`` gives the location once the document's key is known; ``check()`` is called before each
    object is completed and raises to stop (a lost lease). On failure nothing it completed is left behind.
    ``progress``, when given, is called after each decoded batch (a few times per MB; never without it).
    """

    def convert(
        self,
        chunks: Iterator[bytes],
        *,
        raw_key: str,
        place: Callable[[str], ResultLocation],
        check: Callable[[], None],
        progress: Progress | None = None,
    ) -> Conversion: ...


class JobQueue(Protocol):
    """The copy-jobs queue."""

    def send(self, jobs: Sequence[CopyJob]) -> None: ...

    def discard_dead_letters(self, results: set[tuple[str, str]]) -> int: ...


class Notifier(Protocol):
    """Notifications to people and systems (SNS)."""

    def publish(self, event_type: str, export_name: str, subject: str, payload: Mapping[str, Any]) -> None: ...


class Metrics(Protocol):
    """Numbers worth a graph (Powertools Metrics in Lambda)."""

    def add(self, name: str, value: float, unit: str) -> None: ...


class NullMetrics:
    """Metrics that go nowhere (tests, CLI status)."""

    def add(self, name: str, value: float, unit: str) -> None:
        """Drop the figure."""


def chunks_of(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Split ``items`` into lists of at most ``size``."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
