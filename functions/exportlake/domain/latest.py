"""The newest result of each export: a one-line pointer per (table, export) the copier moves forward. Stdlib only.

``<type>_latest`` must read exactly one result per export, the newest by the gateway's full ``created_at``, and
read only that result's files. The partitions carry the day only, so the copier keeps, per table and export, a
pointer object ``latest/<table>.<export_name>.json`` naming the newest result's partition values; the Glue table
``latest_results`` reads those objects, and the view joins the raw table to it with equality on the plain partition
columns, which lets Trino's dynamic filtering prune every other partition (docs/analytics.md says why).

Moving a pointer is a compare-and-swap on the object's ETag (S3 conditional writes): written only when the new
result is newer by ``(created_at, result_id)`` (``result_id`` breaks ties of identical instants only); equal or
older leaves it. The copier moves it after the partition is registered and before the ledger says ``copied``, so a
re-run after any crash moves it again or finds it already there: it converges, and never names a partition that is
not registered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from exportlake.domain.errors import DocumentError, ExportlakeError
from exportlake.domain.manifest import Manifest
from exportlake.domain.naming import manifest_key, validate_export_name, validate_result_id, validate_table_name
from exportlake.domain.schemas import LATEST_COLUMNS, LATEST_PREFIX
from exportlake.domain.timefmt import day_of, parse_time, to_text

#: Rounds of read-compare-write before giving up (each lost round means another copier moved the pointer).
ATTEMPTS = 5
CONTENT_TYPE = "application/json"


class PointerStore(Protocol):
    """Small objects with compare-and-swap (the lake bucket: ``LakeStore`` implements it)."""

    def get(self, key: str) -> bytes | None: ...

    def get_versioned(self, key: str) -> tuple[bytes, str] | None: ...

    def put_if(self, key: str, body: bytes, content_type: str, *, etag: str | None) -> str | None: ...


def pointer_key(table: str, export_name: str) -> str:
    """Where the pointer of ``export_name`` in ``table`` lives (flat: the pointer table has no sub-folders)."""
    return f"{LATEST_PREFIX}/{validate_table_name(table)}.{validate_export_name(export_name)}.json"


@dataclass(frozen=True)
class Pointer:
    """One export's newest result in one table: its partition values and full creation time."""

    table: str
    export_name: str
    result_id: str
    created_at: datetime

    @classmethod
    def of(cls, manifest: Manifest) -> Pointer:
        """The pointer to the result a manifest describes (its own table and ``created_at``)."""
        return cls(manifest.table, manifest.export_name, manifest.result_id, manifest.created_at)

    @property
    def created_date(self) -> str:
        """The partition's day (UTC)."""
        return day_of(self.created_at)

    @property
    def key(self) -> str:
        """The pointer object's key."""
        return pointer_key(self.table, self.export_name)

    def order(self) -> tuple[datetime, str]:
        """What "newer" compares: the full creation time, then the result id (identical instants only)."""
        return (self.created_at, self.result_id)

    def to_json(self) -> bytes:
        """One JSON line, every value a string (the ``latest_results`` columns)."""
        values = dict(
            zip(
                LATEST_COLUMNS,
                (self.table, self.export_name, self.created_date, self.result_id, to_text(self.created_at)),
                strict=True,
            )
        )
        return (json.dumps(values, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, body: bytes) -> Pointer:
        """Read a pointer back; ``DocumentError`` if it is not one."""
        try:
            doc = json.loads(body)
            created = parse_time(doc["created_at"])
            if created is None:
                raise ValueError("created_at")
            pointer = cls(
                validate_table_name(doc["table_name"]),
                validate_export_name(doc["export_name"]),
                validate_result_id(doc["result_id"]),
                created,
            )
        except (ValueError, KeyError, TypeError, ExportlakeError) as exc:
            raise DocumentError(f"latest-result pointer is not readable: {exc}") from None
        return pointer


#: What a copier last read or wrote, per pointer key: the pointer and its ETag (see ``advance``).
Known = dict[str, tuple[Pointer, str]]


def advance(store: PointerStore, pointer: Pointer, known: Known | None = None) -> bool:
    """Make ``pointer`` the export's newest result unless a newer (or the same) one is there; True if written.

    ``known`` (kept by a warm copier across results) saves requests: a pointer known to be as new or newer needs
    none (pointers only move forward), a newer result one conditional write on the known ETag; a stale entry costs
    a failed write, then the usual read. An unreadable pointer is replaced. Raises ``ExportlakeError`` when other
    writers kept moving it.
    """
    cached = known.get(pointer.key) if known is not None else None
    if cached is not None and cached[0].order() >= pointer.order():
        return False
    for attempt in range(ATTEMPTS):
        if attempt == 0 and cached is not None:
            etag: str | None = cached[1]
        else:
            etag = None
            found = store.get_versioned(pointer.key)
            if found is not None:
                body, etag = found
                current = _readable(body)
                if current is not None and known is not None:
                    known[pointer.key] = (current, etag)
                if current is not None and current.order() >= pointer.order():
                    return False
        written = store.put_if(pointer.key, pointer.to_json(), CONTENT_TYPE, etag=etag)
        if written is not None:
            if known is not None:
                known[pointer.key] = (pointer, written)
            return True
    raise ExportlakeError(
        f"the latest-result pointer {pointer.key} kept changing while {pointer.result_id} was written: copy it again"
    )


def _readable(body: bytes) -> Pointer | None:
    try:
        return Pointer.from_json(body)
    except DocumentError:
        return None


def newest(pointers: Iterable[Pointer]) -> Pointer | None:
    """The newest of ``pointers`` by the same order ``advance`` uses."""
    return max(pointers, key=Pointer.order, default=None)


def backfill(
    store: PointerStore,
    table: str,
    partitions: Iterable[Sequence[str]],
    created_at: Callable[[str, str], datetime | None],
) -> list[Pointer]:
    """Point every export of ``table`` at its newest registered result (a lake copied before pointers existed).

    ``partitions`` are the table's partition values ``(export_name, created_date, result_id)``; only the newest
    day's results of each export are candidates, and ``created_at(export_name, result_id)`` (the manifest's full
    time; ``None`` when there is no manifest: then the day's start) orders them. Goes through ``advance``, so a
    newer pointer a copier wrote meanwhile is never moved back. Returns the pointers written.
    """
    days: dict[str, str] = {}
    results: dict[str, list[str]] = {}
    for export_name, day, result_id in (tuple(p) for p in partitions):
        if day > days.get(export_name, ""):
            days[export_name], results[export_name] = day, []
        if day == days[export_name]:
            results[export_name].append(result_id)
    written = []
    for export_name, ids in sorted(results.items()):
        start = parse_time(f"{days[export_name]}T00:00:00+00:00")
        candidates = [
            Pointer(table, export_name, rid, created_at(export_name, rid) or start) for rid in ids if start is not None
        ]
        pointer = newest(candidates)
        if pointer is not None and advance(store, pointer):
            written.append(pointer)
    return written


def backfill_table(store: PointerStore, table: str, partitions: Iterable[Sequence[str]]) -> list[Pointer]:
    """``backfill`` with the full ``created_at`` read from each candidate's manifest in ``store``."""

    def created_at(export_name: str, result_id: str) -> datetime | None:
        body = store.get(manifest_key(export_name, result_id))
        if body is None:
            return None
        try:
            return Manifest.from_json(body, export_name=export_name, result_id=result_id).created_at
        except ExportlakeError:  # unreadable: ordered by its day
            return None

    return backfill(store, table, partitions, created_at)
