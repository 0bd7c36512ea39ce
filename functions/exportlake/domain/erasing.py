"""The eraser: find the results that hold a person, rewrite each without them, delete every old copy. Stdlib only.

One result is rewritten under a hold (``domain.lease``, kept in the privacy store) in steps a crash may stop
anywhere: the next generation's objects (invisible: nothing names them) → the manifest (the one pointer, one PUT)
→ the Glue partition moved to them (Athena plans from one partition location: the old result or the new one) →
every other version of the result's keys deleted. A re-run finishes what a killed one left: a manifest ahead of
its partition is switched, leftovers of a half-written generation are purged, a result without the persons is
only purged. The copier applies the suppression list through ``suppress`` before a partition is registered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from exportlake.domain import notices
from exportlake.domain.erasure import (
    CLIENT_ID,
    ID_COLUMNS,
    INDEX_PREFIX,
    USERID,
    Drop,
    EraseReport,
    PartitionCatalog,
    PrivacyStore,
    ResultErasure,
    Rewriter,
    Suppression,
    VersionedStore,
    encode_index,
    index_hits,
    index_key,
    parse_generation_id,
    person_key,
    raw_key_at,
    request_id,
    result_prefixes,
    short_key,
)
from exportlake.domain.errors import ExportlakeError, ValidationError
from exportlake.domain.lease import Lease, holder_is_dead, new_owner
from exportlake.domain.location import ResultLocation
from exportlake.domain.manifest import Erasure, Manifest
from exportlake.domain.models import ResultState
from exportlake.domain.naming import manifest_key
from exportlake.domain.ports import Ledger, Notifier
from exportlake.domain.timefmt import now_text

log = logging.getLogger(__name__)

HOLD_SECONDS = 30.0
#: How long a result held by another live eraser is waited for before it is reported pending.
HOLD_WAIT_SECONDS = 35.0


def index_body(salt: bytes, ids: Mapping[str, Iterable[str]]) -> bytes:
    """The id index object of a result holding ``ids`` (column → distinct clear values)."""
    return encode_index(short_key(person_key(salt, col, v)) for col, values in ids.items() for v in values)


class EraseService:
    """Erases persons from the lake and keeps them out of later results."""

    def __init__(
        self,
        store: VersionedStore,
        catalog: PartitionCatalog,
        ledger: Ledger,
        privacy: PrivacyStore,
        rewriter: Rewriter,
        notifier: Notifier,
        *,
        salt: bytes,
        hold_seconds: float = HOLD_SECONDS,
        heartbeat: bool = True,
        workers: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._ledger = ledger
        self._privacy = privacy
        self._rewriter = rewriter
        self._notifier = notifier
        self._salt = salt
        self._hold_seconds = hold_seconds
        self._heartbeat = heartbeat
        self._workers = max(1, workers)
        self._sleep = sleep

    # -- keys -------------------------------------------------------------------------------------------------
    def keys_of(self, user_ids: Iterable[str], client_ids: Iterable[str]) -> dict[str, set[str]]:
        """Column → person keys of the given clear ids."""
        return {
            USERID: {person_key(self._salt, USERID, v) for v in user_ids},
            CLIENT_ID: {person_key(self._salt, CLIENT_ID, v) for v in client_ids},
        }

    def _drop(self, keys: Mapping[str, set[str]]) -> Drop:
        salt = self._salt

        def drop(column: str, value: str) -> bool:
            wanted = keys.get(column)
            return bool(wanted) and person_key(salt, column, value) in wanted  # type: ignore[operator]

        return drop

    # -- finding ----------------------------------------------------------------------------------------------
    def find(
        self, keys: Mapping[str, set[str]], candidates: Iterable[tuple[str, str]], *, write: bool = True
    ) -> list[tuple[str, str]]:
        """The candidates (export, result id) whose id index holds any of ``keys``.

        A result without an index is read by its id columns, and (``write``) its index written for the next search.
        """
        sidecars: dict[tuple[str, str], tuple[int, str]] = {}
        for key in self._store.list_keys(f"{INDEX_PREFIX}/"):
            try:
                _, export, name = key.split("/", 2)
                rid, gen = parse_generation_id(name.removesuffix(".idx"))
            except (ValueError, ValidationError):
                continue
            if sidecars.get((export, rid), (-1, ""))[0] < gen:
                sidecars[(export, rid)] = (gen, key)
        wanted = {short_key(k) for ks in keys.values() for k in ks}

        def look(candidate: tuple[str, str]) -> bool:
            found = sidecars.get(candidate)
            if found is not None:
                key = found[1]
                return bool(index_hits(lambda a, b: self._store.get_range(key, a, b), wanted))
            manifest = self.manifest(*candidate)
            if manifest is None or not any(c in ID_COLUMNS for c in manifest.columns):
                return False
            return bool(self.index(manifest, write=write) & wanted)

        ordered = sorted(set(candidates))
        with ThreadPoolExecutor(self._workers) as pool:
            hits = list(pool.map(look, ordered))
        return [c for c, hit in zip(ordered, hits, strict=True) if hit]

    def expand(
        self, keys: dict[str, set[str]], candidates: Sequence[tuple[str, str]], *, write: bool = True
    ) -> dict[str, set[str]]:
        """Add the userids that the given client ids map to (in ``user_base_connections`` or any such table)."""
        if not keys.get(CLIENT_ID):
            return keys
        wanted = keys[CLIENT_ID]
        salt = self._salt
        users = set(keys.get(USERID, set()))
        for export, rid in self.find({CLIENT_ID: wanted}, candidates, write=write):
            manifest = self.manifest(export, rid)
            if manifest is None or USERID not in manifest.columns:
                continue
            linked = self._rewriter.linked(
                manifest, CLIENT_ID, lambda v: person_key(salt, CLIENT_ID, v) in wanted, USERID
            )
            users |= {person_key(salt, USERID, u) for u in linked}
        return {**keys, USERID: users}

    def manifest(self, export_name: str, result_id: str) -> Manifest | None:
        """The result's current manifest, or None."""
        body = self._store.get(manifest_key(export_name, result_id))
        return None if body is None else Manifest.from_json(body, export_name=export_name, result_id=result_id)

    # -- one request ------------------------------------------------------------------------------------------
    def open_request(
        self, keys: dict[str, set[str]], candidates: Sequence[tuple[str, str]]
    ) -> tuple[str, dict[str, set[str]], int]:
        """Put the persons on the suppression list first, then add the userids their client ids map to.

        First, so that a result landing meanwhile is either filtered by its copier or already indexed when the
        results are looked for. Returns the request id, the keys to erase and how many entries were new.
        """
        rid = request_id(k for ks in keys.values() for k in ks)
        at = now_text()
        added = self._privacy.suppress(Suppression(k, col, rid, at) for col, ks in keys.items() for k in ks)
        keys = self.expand(keys, candidates)
        added += self._privacy.suppress(Suppression(k, USERID, rid, at) for k in keys[USERID])
        return rid, keys, added

    def results_of(self, request: str) -> list[ResultErasure]:
        """Every result a request has touched so far (over all its runs)."""
        return self._privacy.request_results(request)

    def erase(
        self,
        keys: dict[str, set[str]],
        candidates: Sequence[tuple[str, str]],
        *,
        dry_run: bool = False,
    ) -> EraseReport:
        """Erase the persons of ``keys`` from every candidate result that holds them; record, announce."""
        persons = sum(len(v) for v in keys.values())
        if dry_run:
            rid = request_id(k for ks in keys.values() for k in ks)
            report = EraseReport(rid, persons=persons, dry_run=True, at=now_text())
            keys = self.expand(keys, candidates, write=False)
            drop = self._drop(keys)
            for export, result in self.find(keys, candidates, write=False):  # a dry run writes nothing
                manifest = self.manifest(export, result)
                if manifest is not None:
                    count = self._rewriter.count(manifest, drop)
                    report.results.append(ResultErasure(export, result, manifest.table, rows_removed=count))
            return report
        rid, keys, added = self.open_request(keys, candidates)
        report = EraseReport(rid, persons=persons, at=now_text(), suppressed_added=added)
        # With the results an interrupted run of this request touched: their switch and purge are finished here.
        hits = sorted(set(self.find(keys, candidates)) | {(r.export_name, r.result_id) for r in self.results_of(rid)})

        def one(target: tuple[str, str]) -> ResultErasure:
            return self.erase_result(target[0], target[1], keys, rid, sweep=False)

        with ThreadPoolExecutor(self._workers) as pool:
            done = list(pool.map(one, hits))
        report.pending = [(r.export_name, r.result_id) for r in done if r.state == "pending"]
        # Every older version of every touched result, in one pass (a kill before it: the re-run sweeps them).
        swept = self.sweep(hits)
        if swept:
            self._privacy.record_sweep(rid, swept)
        report.results = self.results_of(rid)
        report.versions_swept = self._privacy.swept(rid)
        report.person_keys = sorted(k[:16] for ks in keys.values() for k in ks)
        self.finish(report)
        return report

    def finish(self, report: EraseReport) -> None:
        """The audit record, then ``person.erased`` (once per request; a re-run sends one its killed run owed)."""
        record = report.as_dict()
        self._privacy.save_request(report.request_id, {**record, "person_keys": report.person_keys})
        if report.pending or not report.touched:
            return
        if self._privacy.claim_notice(report.request_id):
            notices.person_erased(self._notifier, record)
            self._privacy.mark_noticed(report.request_id)

    # -- one result -------------------------------------------------------------------------------------------
    def erase_result(
        self, export: str, result: str, keys: Mapping[str, set[str]], request: str, *, sweep: bool = True
    ) -> ResultErasure:
        """Rewrite one result without the persons (under its hold) and purge every old copy; record the outcome."""
        entry = self._ledger.get(export, result)
        if entry is None or entry.state != ResultState.COPIED:
            return ResultErasure(export, result, entry.table if entry else "", state="pending")
        lease = self._hold(f"{export}/{result}")
        if lease is None:
            return ResultErasure(export, result, entry.table, state="pending")
        try:
            outcome = self._erase_held(export, result, keys, lease, request)
            if sweep:  # the local erase sweeps every touched result at once, after all of them
                outcome.versions_deleted = self.sweep([(export, result)])
            self._privacy.record_result(request, outcome)
            return outcome
        finally:
            lease.release()
            self._privacy.release_hold(f"{export}/{result}", lease.owner)

    def _erase_held(
        self, export: str, result: str, keys: Mapping[str, set[str]], lease: Lease, request: str
    ) -> ResultErasure:
        manifest = self.manifest(export, result)
        if manifest is None:
            raise ExportlakeError(f"result {export}/{result} is copied but has no manifest: run exportlake verify")
        self._switch(manifest, lease)  # a killed run may have written the manifest but not moved the partition
        out = ResultErasure(export, result, manifest.table, generation=manifest.generation)
        drop = self._drop(keys)
        if self._holds(manifest, keys, drop):

            def written(rows: int, generation: int) -> None:  # before the manifest: a kill after it keeps the count
                self._privacy.record_result(
                    request, ResultErasure(export, result, out.table, rows, generation=generation, state="rewritten")
                )

            rewritten = self.next_generation(manifest, drop, lease, suppressed=False, written=written)
            if rewritten is not None:
                out.rows_removed = manifest.rows - rewritten.rows
                manifest = rewritten
                self._switch(manifest, lease)
        out.generation = manifest.generation
        out.objects_deleted = self.purge(manifest)
        return out

    def _holds(self, manifest: Manifest, keys: Mapping[str, set[str]], drop: Drop) -> bool:
        if manifest.index_key:
            wanted = {short_key(k) for ks in keys.values() for k in ks}
            key = manifest.index_key
            try:
                return bool(index_hits(lambda a, b: self._store.get_range(key, a, b), wanted))
            except (ValidationError, KeyError):
                log.warning("id index of %s is unreadable; reading its ids", manifest.result_id)
        ids = self._rewriter.person_ids(manifest)
        return any(drop(col, v) for col, values in ids.items() for v in values)

    def _switch(self, manifest: Manifest, lease: Lease) -> None:
        """Point the result's partition at the manifest's generation (when a killed run stopped before)."""
        place = manifest.place
        where = self._catalog.partition_location(place.table, place.values)
        if where is not None and where.rstrip("/") != manifest.location.rstrip("/"):
            lease.confirm()
            self._catalog.move_partition(place.table, place.values, manifest.location)

    def next_generation(
        self,
        manifest: Manifest,
        drop: Drop,
        lease: Lease,
        *,
        suppressed: bool,
        written: Callable[[int, int], None] | None = None,
    ) -> Manifest | None:
        """Write the result without the dropped rows as the next generation and its manifest; None if none dropped.

        The partition is not moved here (the eraser moves it after; the copier registers it at the new place).
        """
        gen = manifest.generation + 1
        place = ResultLocation.of(manifest.table, manifest.export_name, manifest.created_at, manifest.result_id, gen)
        raw_key = raw_key_at(manifest.export_name, manifest.result_id, gen) if manifest.raw.key else ""
        idx_key = index_key(manifest.export_name, manifest.result_id, gen)
        lease.check()
        self._store.abort_uploads(place.prefix)  # uploads a killed attempt at this generation left open
        if raw_key:
            self._store.abort_uploads(raw_key)
        out = self._rewriter.rewrite(manifest, place, raw_key, drop, lease.check)
        if out.rows_removed == 0:  # nobody to drop after all (a false hit of the index): nothing written stays
            self.purge_all([place.prefix, *([raw_key] if raw_key else []), idx_key])
            return None
        # Parts a killed attempt left at this prefix and this one did not rewrite would be read with the new ones
        # once the partition points here: delete them first (their older versions go with the purge after).
        stale = sorted(set(self._store.list_keys(place.prefix)) - {p.key for p in out.parts})
        if stale:
            self._store.delete(stale)
        lease.check()
        self._store.put(idx_key, index_body(self._salt, out.remaining), "application/octet-stream")
        before = manifest.erasure
        copied = (
            before.copied if before.copied is not None else (manifest.rows, manifest.raw.json_bytes, manifest.location)
        )
        erasure = Erasure(
            rows_removed=before.rows_removed + (0 if suppressed else out.rows_removed),
            suppressed=before.suppressed + (out.rows_removed if suppressed else 0),
            copied=None if suppressed and before.copied is None else copied,
        )
        new = replace(
            manifest,
            generation=gen,
            location=place.uri(self._store.bucket),
            rows=out.rows,
            parts=out.parts,
            raw=out.raw,
            index_key=idx_key,
            erasure=erasure,
        )
        if written is not None:
            written(out.rows_removed, gen)
        lease.confirm()
        self._store.put(manifest_key(manifest.export_name, manifest.result_id), new.to_json(), "application/json")
        return new

    def purge(self, manifest: Manifest) -> int:
        """Delete every current object of the result the manifest does not name (older generations, leftovers).

        Cheap (plain listings): after it no current object holds what the manifest dropped. Their older versions
        are for ``sweep``.
        """
        keep = self._keep(manifest)
        stale = sorted({k for p in self._prefixes(manifest) for k in self._store.list_keys(p)} - keep)
        if stale:
            self._store.delete(stale)
        return len(stale)

    def sweep(self, results: Sequence[tuple[str, str]]) -> int:
        """Delete every noncurrent version and delete marker of the results' objects; how many.

        Only what no reader can see (a current object is never touched), so it needs no hold and may run for many
        results at once: the store lists each shared parent prefix once.
        """
        prefixes: list[str] = []
        for export, result in results:
            manifest = self.manifest(export, result)
            if manifest is not None:
                prefixes.extend(self._prefixes(manifest))
        return self._store.sweep(prefixes) if prefixes else 0

    @staticmethod
    def _keep(manifest: Manifest) -> set[str]:
        keep = {p.key for p in manifest.parts} | {manifest_key(manifest.export_name, manifest.result_id)}
        return keep | {k for k in (manifest.raw.key, manifest.index_key) if k}

    @staticmethod
    def _prefixes(manifest: Manifest) -> tuple[str, ...]:
        base = ResultLocation.of(manifest.table, manifest.export_name, manifest.created_at, manifest.result_id)
        return result_prefixes(base.prefix, manifest.export_name, manifest.result_id)

    # -- the copier's side ------------------------------------------------------------------------------------
    def index(self, manifest: Manifest, *, write: bool = True) -> set[int]:
        """The short person keys of a result without an index, read from its id columns; the index is written then.

        Copies do not index (hashing every distinct id would cost a large result seconds of CPU): the first search
        that meets a result builds its index, so every later one reads a few bytes of it.
        """
        ids = self._rewriter.person_ids(manifest)
        keys = {short_key(person_key(self._salt, col, v)) for col, values in ids.items() for v in values}
        if write:
            key = index_key(manifest.export_name, manifest.result_id, manifest.generation)
            self._store.put(key, encode_index(keys), "application/octet-stream")
        return keys

    def suppress(self, manifest: Manifest, lease: Lease) -> Manifest:
        """Before a copier registers ``manifest``: drop the rows of suppressed persons (a new generation).

        The copier holds the result's copy lease (``lease``). A partition already registered by an earlier attempt
        is moved; every older version of the result is purged (also after a kill between manifest and purge).
        """
        # A table without person ids (campaigns, games, prizes) holds nobody: no list to read.
        listed = self._privacy.suppressed() if any(c in ID_COLUMNS for c in manifest.columns) else {}
        if listed:
            keys: dict[str, set[str]] = {}
            for s in listed.values():
                keys.setdefault(s.column, set()).add(s.key)
            drop = self._drop(keys)
            if self._holds(manifest, keys, drop):
                new = self.next_generation(manifest, drop, lease, suppressed=True)
                if new is not None:
                    self._privacy.count_suppressed(manifest.export_name, manifest.rows - new.rows)
                    manifest = new
        if manifest.generation > 0:
            self._switch(manifest, lease)
            self.purge(manifest)
            self._store.sweep(self._prefixes(manifest))
        return manifest

    # -- holds ------------------------------------------------------------------------------------------------
    def hold(self, name: str) -> Lease | None:
        """Take a result's hold (``export/result``); None while a live eraser keeps it past the wait."""
        return self._hold(name)

    def release(self, lease: Lease, name: str) -> None:
        """Stop renewing a hold and give it back."""
        lease.release()
        self._privacy.release_hold(name, lease.owner)

    def purge_all(self, prefixes: Sequence[str]) -> tuple[int, int]:
        """Delete every object under ``prefixes`` and every version of them (a result leaving the lake whole)."""
        current = sorted({k for p in prefixes for k in self._store.list_keys(p)})
        if current:
            self._store.delete(current)
        return len(current), self._store.sweep(prefixes)

    def _hold(self, name: str) -> Lease | None:
        """Take the result's hold (a dead local holder's at once); None if a live eraser keeps it past the wait."""
        owner = new_owner()
        waited = 0.0
        while True:
            if self._privacy.take_hold(name, owner, self._hold_seconds):
                break
            holder = self._privacy.hold_owner(name)
            if (
                holder
                and holder_is_dead(holder)
                and self._privacy.take_hold(name, owner, self._hold_seconds, take_over=holder)
            ):
                break
            if waited >= HOLD_WAIT_SECONDS:
                return None
            self._sleep(0.5)
            waited += 0.5
        return Lease(
            owner,
            self._hold_seconds,
            lambda: self._privacy.renew_hold(name, owner, self._hold_seconds),
            heartbeat=self._heartbeat,
        )
