"""In-memory fakes of the domain's ports, honouring the same conditional semantics as DynamoDB and S3.

The ledger and lake-store fakes are held to the real adapters by the contract tests in
``tests/adapters/test_contracts.py`` (the same tests run on both), so they cannot drift.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from exportlake.domain.errors import LeaseLost
from exportlake.domain.models import CopyJob, Export, ResultRef, ResultState
from exportlake.domain.ports import ExportState, LedgerEntry, OnInvalid, ResultsPage


def is_unfinished(e: LedgerEntry) -> bool:
    """What the DynamoDB adapter keeps in its sparse index: queued, copying, failed, or not yet announced."""
    return e.state in (ResultState.QUEUED, ResultState.COPYING, ResultState.FAILED) or not e.notified


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class InMemoryLedger:
    """``Ledger`` in a dict; every transition checks the same condition the DynamoDB adapter sends."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock
        self.items: dict[tuple[str, str], LedgerEntry] = {}
        self.alert_items: dict[str, tuple[str, str]] = {}  # key -> (fingerprint, sent_at)
        self.cursor_value = ""
        self.expiring: set[tuple[str, str]] = set()
        self.lock = threading.Lock()
        self.writes = 0
        self.states: dict[str, ExportState] = {}
        self.index_reads = 0

    def _now(self) -> str:
        return _iso(self.clock())

    # -- reads
    def entries(self, export_name: str) -> dict[str, LedgerEntry]:
        return {r: e for (x, r), e in self.items.items() if x == export_name}

    def get(self, export_name: str, result_id: str) -> LedgerEntry | None:
        return self.items.get((export_name, result_id))

    def all_entries(self) -> list[LedgerEntry]:
        return list(self.items.values())

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LedgerEntry]:
        return {k: self.items[k] for k in keys if k in self.items}

    def open_entries(self, export_name: str) -> dict[str, LedgerEntry]:
        self.index_reads += 1
        return {r: e for (x, r), e in self.items.items() if x == export_name and is_unfinished(e)}

    def adopt(self, export_name: str) -> int:
        return 0  # every entry of the fake is indexed from the start

    def export_states(self) -> dict[str, ExportState]:
        return dict(self.states)

    def save_export_state(self, state: ExportState) -> None:
        self.states[state.export_name] = state

    def _put(self, entry: LedgerEntry) -> None:
        self.items[(entry.export_name, entry.result_id)] = entry
        self.writes += 1

    # -- transitions
    def claim_queued(
        self,
        ref: ResultRef,
        *,
        retry_failed: bool = False,
        unsent_before: str = "",
        queued_before: str = "",
        now: str = "",
    ) -> bool:
        with self.lock:
            e = self.get(ref.export_name, ref.result_id)
            ok = e is None
            if e is not None:
                ok = (
                    (retry_failed and e.state == ResultState.FAILED)
                    or (
                        bool(unsent_before)
                        and e.state == ResultState.QUEUED
                        and not e.enqueued
                        and e.updated_at < unsent_before
                    )
                    or (
                        bool(unsent_before)
                        and e.state == ResultState.COPYING
                        and not e.lease_until
                        and e.updated_at < unsent_before
                    )
                    or (bool(queued_before) and e.state == ResultState.QUEUED and e.updated_at < queued_before)
                    or (bool(now) and e.state == ResultState.COPYING and bool(e.lease_until) and e.lease_until < now)
                )
            if not ok:
                return False
            self._put(
                LedgerEntry(
                    ref.export_name,
                    ref.result_id,
                    ResultState.QUEUED,
                    created_at=ref.created_at.isoformat(),
                    expires_at="" if ref.expires_at is None else ref.expires_at.isoformat(),
                    updated_at=self._now(),
                    # a re-claim keeps the item's history (DynamoDB: the re-claim is an update keeping them)
                    starts=0 if e is None else e.starts,
                    version=2 if e is None else e.version,
                )
            )
            return True

    def mark_enqueued(self, ref: ResultRef) -> None:
        with self.lock:
            e = self.get(ref.export_name, ref.result_id)
            if e is not None and e.state == ResultState.QUEUED:
                self._put(replace(e, enqueued=True))

    def release_queued(self, ref: ResultRef) -> None:
        with self.lock:
            e = self.get(ref.export_name, ref.result_id)
            if e is not None and e.state == ResultState.QUEUED:
                del self.items[(ref.export_name, ref.result_id)]

    def mark_expired(self, ref: ResultRef, *, now: str = "") -> bool:
        with self.lock:
            now = now or self._now()
            e = self.get(ref.export_name, ref.result_id)
            if e is not None and not (
                e.state in (ResultState.QUEUED, ResultState.FAILED)
                or (e.state == ResultState.COPYING and (not e.lease_until or e.lease_until < now))
            ):
                return False
            self._put(
                LedgerEntry(
                    ref.export_name,
                    ref.result_id,
                    ResultState.EXPIRED,
                    created_at=ref.created_at.isoformat(),
                    expires_at="" if ref.expires_at is None else ref.expires_at.isoformat(),
                    updated_at=self._now(),
                )
            )
            return True

    def start_copy(self, job: CopyJob, owner: str, lease_seconds: float, *, take_over: str = "") -> LedgerEntry | None:
        with self.lock:
            now = self.clock()
            e = self.get(job.export_name, job.result_id)
            if e is not None and e.state in (ResultState.COPIED, ResultState.EXPIRED):
                return e
            held = e is not None and bool(e.lease_until) and e.lease_until >= _iso(now)
            if held and not (take_over and e is not None and e.lease_owner == take_over):
                return None
            base = e or LedgerEntry(job.export_name, job.result_id, ResultState.COPYING)
            new = replace(
                base,
                state=ResultState.COPYING,
                lease_owner=owner,
                lease_until=_iso(now + timedelta(seconds=lease_seconds)),
                updated_at=_iso(now),
                created_at=job.created_at.isoformat(),
                expires_at="" if job.expires_at is None else job.expires_at.isoformat(),
                attempts=base.attempts + 1,
                starts=base.starts + 1,
            )
            self._put(new)
            return new

    def renew_lease(self, job: CopyJob, owner: str, lease_seconds: float) -> bool:
        with self.lock:
            e = self.get(job.export_name, job.result_id)
            if e is None or e.lease_owner != owner or e.state != ResultState.COPYING:
                return False
            self._put(replace(e, lease_until=_iso(self.clock() + timedelta(seconds=lease_seconds))))
            return True

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
        with self.lock:
            e = self.get(job.export_name, job.result_id)
            if e is not None and e.state == ResultState.COPIED:
                return False
            if e is None or e.lease_owner != owner:
                raise LeaseLost(f"result {job.result_id}: the copy lease was lost before the ledger step")
            self._put(
                replace(
                    e,
                    state=ResultState.COPIED,
                    rows=rows,
                    bytes=size,
                    table=table,
                    location=location,
                    notified=False,
                    updated_at=self._now(),
                    lease_owner="",
                    lease_until="",
                    error="",
                    notify_owner=owner if notify_seconds > 0 else e.notify_owner,
                    notify_until=_iso(self.clock() + timedelta(seconds=notify_seconds))
                    if notify_seconds > 0
                    else e.notify_until,
                )
            )
            return True

    def claim_notification(
        self,
        export_name: str,
        result_id: str,
        lease_seconds: float,
        state: ResultState = ResultState.COPIED,
        *,
        owner: str = "",
        take_over: str = "",
    ) -> bool:
        with self.lock:
            now = self.clock()
            e = self.get(export_name, result_id)
            if e is None or e.state != state or e.notified:
                return False
            if e.notify_until and e.notify_until >= _iso(now) and not (take_over and e.notify_owner == take_over):
                return False
            self._put(replace(e, notify_owner=owner or "-", notify_until=_iso(now + timedelta(seconds=lease_seconds))))
            return True

    def release_notification(self, export_name: str, result_id: str) -> None:
        with self.lock:
            e = self.get(export_name, result_id)
            if e is not None:
                self._put(replace(e, notify_owner="", notify_until=""))

    def mark_notified(self, export_name: str, result_id: str) -> None:
        with self.lock:
            e = self.get(export_name, result_id)
            if e is not None:
                self._put(replace(e, notified=True, notify_owner="", notify_until=""))

    def end_attempt(self, job: CopyJob, owner: str, error: str) -> None:
        with self.lock:
            e = self.get(job.export_name, job.result_id)
            if e is not None and e.lease_owner == owner:
                self._put(replace(e, lease_owner="", lease_until="", error=error[:1000], updated_at=self._now()))

    def mark_failed(self, job: CopyJob, error: str, *, owner: str = "") -> bool:
        with self.lock:
            now = self._now()
            e = self.get(job.export_name, job.result_id)
            if e is not None:
                if e.state in (ResultState.COPIED, ResultState.FAILED, ResultState.EXPIRED):
                    return False
                if e.lease_until and e.lease_until >= now and not (owner and e.lease_owner == owner):
                    return False
            base = e or LedgerEntry(job.export_name, job.result_id, ResultState.FAILED)
            self._put(
                replace(
                    base,
                    state=ResultState.FAILED,
                    error=error[:1000],
                    updated_at=now,
                    created_at=job.created_at.isoformat(),
                    notified=False,
                    lease_owner="",
                    lease_until="",
                    notify_owner="",
                    notify_until="",
                )
            )
            return True

    def claim_alert(self, key: str, fingerprint: str, resend_before: str) -> bool:
        with self.lock:
            old = self.alert_items.get(key)
            if old is not None and old[0] == fingerprint and not old[1] < resend_before:
                return False
            self.alert_items[key] = (fingerprint, self._now())
            return True

    def release_alert(self, key: str) -> None:
        self.alert_items.pop(key, None)

    def alerts(self) -> dict[str, str]:
        return {k: v[0] for k, v in self.alert_items.items()}

    def claim_expiring_notice(self, export_name: str, result_id: str) -> bool:
        with self.lock:
            if (export_name, result_id) in self.expiring:
                return False
            self.expiring.add((export_name, result_id))
            return True

    def release_expiring_notice(self, export_name: str, result_id: str) -> None:
        self.expiring.discard((export_name, result_id))

    def cursor(self) -> str:
        return self.cursor_value

    def save_cursor(self, export_name: str) -> None:
        self.cursor_value = export_name


class MemorySink:
    """An object being written into a ``MemoryStore``: visible only once closed."""

    def __init__(self, store: MemoryStore, key: str) -> None:
        self._store = store
        self.key = key
        self._buf = io.BytesIO()
        self.closed = False
        self.size = 0
        store.uploads[key] = store.uploads.get(key, 0) + 1

    def write(self, data: Any, /) -> int:
        if self.closed:
            raise ValueError("write to a closed sink")
        n = self._buf.write(bytes(data))
        return n

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.closed:
            return
        if self._store.fail_on_close and self._store.fail_on_close(self.key):
            self.abort()
            raise OSError(f"injected failure completing {self.key}")
        self.closed = True
        body = self._buf.getvalue()
        self.size = len(body)
        self._store.objects[self.key] = body
        self._store._end_upload(self.key)

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._store._end_upload(self.key)


def _etag(body: bytes) -> str:
    return '"' + hashlib.md5(body, usedforsecurity=False).hexdigest() + '"'


class MemoryStore:
    """``LakeStore`` in a dict: whole objects appear only at close; open uploads are counted per key."""

    def __init__(self, bucket: str = "lake-bucket") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, int] = {}  # key -> open uploads
        self.fail_on_close: Callable[[str], bool] | None = None
        self.log: list[tuple[str, str]] = []  # (operation, key)

    def _end_upload(self, key: str) -> None:
        self.uploads[key] -= 1
        if not self.uploads[key]:
            del self.uploads[key]

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.log.append(("put", key))
        self.objects[key] = bytes(body)

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        self.log.append(("get_versioned", key))
        body = self.objects.get(key)
        return None if body is None else (body, _etag(body))

    def put_if(self, key: str, body: bytes, content_type: str, *, etag: str | None) -> str | None:
        current = self.objects.get(key)
        if (current is None) != (etag is None) or (current is not None and _etag(current) != etag):
            return None
        self.log.append(("put_if", key))
        self.objects[key] = bytes(body)
        return _etag(body)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def delete(self, keys: Sequence[str]) -> None:
        for k in keys:
            self.log.append(("delete", k))
            self.objects.pop(k, None)

    def open_object(self, key: str, content_type: str) -> MemorySink:
        self.log.append(("open", key))
        return MemorySink(self, key)

    def abort_uploads(self, prefix: str) -> int:
        n = 0
        for key in [k for k in self.uploads if k.startswith(prefix)]:
            n += self.uploads.pop(key)
        return n

    def leave_open_upload(self, key: str) -> None:
        """What a killed writer leaves: an upload nobody completes or aborts."""
        self.uploads[key] = self.uploads.get(key, 0) + 1


@dataclass
class FakeCatalog:
    """``Catalog`` in memory: tables with columns, partitions by values."""

    database: str = "exportlake"
    tables: dict[str, list[str]] = field(default_factory=dict)
    partitions: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)
    fail_register: bool = False

    def columns(self, table: str) -> list[str] | None:
        cols = self.tables.get(table)
        return None if cols is None else list(cols)

    def create_table(self, table: str, columns: Sequence[str], description: str = "") -> None:
        self.tables.setdefault(table, list(columns))

    def add_columns(self, table: str, new_columns: Sequence[str]) -> list[str]:
        cols = self.tables[table]
        cols.extend(c for c in new_columns if c not in cols)
        return list(cols)

    def partition_exists(self, table: str, values: Sequence[str]) -> bool:
        return (table, tuple(values)) in self.partitions

    def register_partition(self, table: str, values: Sequence[str], location: str, columns: Sequence[str]) -> bool:
        if self.fail_register:
            raise OSError("injected: glue down")
        key = (table, tuple(values))
        if key in self.partitions:
            return False
        self.partitions[key] = location
        return True


class FakeGateway:
    """``Gateway`` serving documents from memory."""

    def __init__(
        self,
        documents: Mapping[str, bytes] | None = None,
        exports: list[Export] | None = None,
        results: Mapping[str, list[ResultRef]] | None = None,
        *,
        broken: set[str] | None = None,
        invalid_exports: list[tuple[str, Exception]] | None = None,
        invalid_results: Mapping[str, list[tuple[str, Exception]]] | None = None,
    ) -> None:
        self.documents = dict(documents or {})
        self.exports = exports or []
        self.results = dict(results or {})
        self.broken = broken or set()
        self.invalid_exports = invalid_exports or []
        self.invalid_results = dict(invalid_results or {})
        self.listed: list[str] = []
        self.pages: list[tuple[str, int]] = []
        self.per_page = 10
        self.oldest_first = False
        self.downloads = 0
        self.fail_downloads = 0

    def list_exports(self, on_invalid: OnInvalid | None = None) -> list[Export]:
        for item, exc in self.invalid_exports:
            if on_invalid is None:
                raise exc
            on_invalid("export", item, exc)
        return list(self.exports)

    def list_results(self, export_name: str, on_invalid: OnInvalid | None = None) -> list[ResultRef]:
        self.listed.append(export_name)
        if export_name in self.broken:
            from exportlake.domain.errors import GatewayError

            raise GatewayError("boom")
        for item, exc in self.invalid_results.get(export_name, []):
            if on_invalid is None:
                raise exc
            on_invalid("result", item, exc)
        return list(self.results.get(export_name, []))

    def results_page(self, export_name: str, page: int, on_invalid: OnInvalid | None = None) -> ResultsPage:
        """Newest first (``oldest_first``: the other way), ``per_page`` at a time; invalid items on page 1."""
        self.pages.append((export_name, page))
        if export_name in self.broken:
            from exportlake.domain.errors import GatewayError

            raise GatewayError("boom")
        bad = self.invalid_results.get(export_name, [])
        ordered = sorted(self.results.get(export_name, []), reverse=not self.oldest_first)
        items: list[ResultRef | None] = [None] * len(bad) + list(ordered)
        chunk = items[(page - 1) * self.per_page : page * self.per_page]
        if page == 1:
            for item, exc in bad:
                if on_invalid is None:
                    raise exc
                on_invalid("result", item, exc)
        refs = tuple(r for r in chunk if r is not None)
        return ResultsPage(refs, len(chunk), len(items))

    def download_url(self, result_id: str) -> str:
        return f"https://objects.example/{result_id}"

    @contextmanager
    def open_download(self, url: str) -> Iterator[Iterator[bytes]]:
        self.downloads += 1
        if self.fail_downloads:
            from exportlake.domain.errors import TransientError

            self.fail_downloads -= 1
            raise TransientError("injected: connection reset")
        body = self.documents[url.rsplit("/", 1)[-1]]
        yield iter([body[i : i + 7000] for i in range(0, len(body), 7000)])


class FakeQueue:
    """``JobQueue`` collecting jobs."""

    def __init__(self) -> None:
        self.sent: list[CopyJob] = []
        self.fail = False
        self.discarded: set[tuple[str, str]] = set()

    def send(self, jobs: Sequence[CopyJob]) -> None:
        if self.fail:
            raise RuntimeError("sqs down")
        self.sent.extend(jobs)

    def discard_dead_letters(self, results: set[tuple[str, str]]) -> int:
        self.discarded |= results
        return len(results)


class FakeNotifier:
    """``Notifier`` collecting (event type, export, payload)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str, dict[str, Any]]] = []
        self.fail = 0

    def publish(self, event_type: str, export_name: str, subject: str, payload: Mapping[str, Any]) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("sns down")
        self.messages.append((event_type, export_name, dict(payload)))

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [p for t, _, p in self.messages if t == event_type]


class FakeMetrics:
    """``Metrics`` collecting figures."""

    def __init__(self) -> None:
        self.figures: list[tuple[str, float]] = []

    def add(self, name: str, value: float, unit: str) -> None:
        self.figures.append((name, value))

    def total(self, name: str) -> float:
        return sum(v for n, v in self.figures if n == name)
