"""Read and rewrite one landed result without some persons: Parquet parts through Arrow, the raw original by record.

Every kept record stays exactly as it was: Parquet rows are filtered, never re-converted (same columns, same
values, same writer settings as the copier's), and the raw original keeps each kept record's bytes as the vendor
sent them (only the document's framing is written anew). A part or raw original is read whole: erasing holds one
part in memory at a time (parts are cut by the copier; see docs/privacy.md for the bound).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from isal import igzip

from exportlake.convert.parquet import write_parquet
from exportlake.convert.stream import GZIP_TYPE, PARQUET_TYPE
from exportlake.domain.erasure import ID_COLUMNS, Drop, Rewritten
from exportlake.domain.errors import DocumentError
from exportlake.domain.location import ResultLocation
from exportlake.domain.manifest import Manifest, ManifestPart, RawOriginal
from exportlake.domain.ports import LakeStore


def _pc() -> Any:
    """``pyarrow.compute``, imported only when a result is rewritten (it costs ~50 ms and ~9 MB at import, which a
    copier that never meets a suppressed person should not pay; see convert.records)."""
    import pyarrow.compute  # noqa: PLC0415

    return pyarrow.compute


class _Ids(msgspec.Struct):
    """The id fields of one raw record (every other field is skipped unparsed)."""

    userid: Any = None
    client_id: Any = None


_DOC = msgspec.json.Decoder(dict[str, list[msgspec.Raw]])
_IDS = msgspec.json.Decoder(_Ids)


def _text(value: Any) -> str | None:
    """A raw JSON value as the lake stores it: a string as is, anything else as its JSON text, null as None."""
    if value is None or isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def distinct(table: pa.Table, column: str) -> set[str]:
    """The distinct non-null values of ``column`` (empty when the table has no such column)."""
    if column not in table.column_names:
        return set()
    return {v for v in _pc().unique(table[column]).to_pylist() if v is not None}


def person_ids_of(batch: pa.RecordBatch | pa.Table) -> dict[str, set[str]]:
    """Column → distinct values of the id columns of ``batch`` (for the copier's id index)."""
    out: dict[str, set[str]] = {}
    for col in ID_COLUMNS:
        if col in batch.schema.names:
            out[col] = {v for v in _pc().unique(batch.column(col)).to_pylist() if v is not None}
    return out


class ParquetRewriter:
    """``domain.erasing.Rewriter`` over a ``LakeStore`` (S3 in Lambda and the CLI)."""

    def __init__(self, store: LakeStore) -> None:
        self._store = store

    def _read(self, key: str, columns: list[str] | None = None) -> pa.Table:
        body = self._store.get(key)
        if body is None:
            raise DocumentError(f"part {key} is missing: run exportlake verify")
        return pq.read_table(io.BytesIO(body), columns=columns)

    def person_ids(self, manifest: Manifest) -> dict[str, set[str]]:
        """Column → distinct values of the result's id columns (reads only those columns)."""
        out: dict[str, set[str]] = {}
        for part in manifest.parts:
            cols = [c for c in ID_COLUMNS if c in part.columns]
            if cols:
                table = self._read(part.key, cols)
                for c in cols:
                    out.setdefault(c, set()).update(distinct(table, c))
        return out

    def linked(self, manifest: Manifest, column: str, match: Callable[[str], bool], out: str) -> set[str]:
        """Values of ``out`` in the rows whose ``column`` matches."""
        found: set[str] = set()
        for part in manifest.parts:
            if column not in part.columns or out not in part.columns:
                continue
            table = self._read(part.key, [column, out])
            hits = [v for v in distinct(table, column) if match(v)]
            if hits:
                rows = table.filter(_pc().is_in(table[column], value_set=pa.array(hits, pa.string())))
                found |= distinct(rows, out)
        return found

    @staticmethod
    def _mask(table: pa.Table, drop: Drop, dropped: dict[str, set[str]]) -> pa.ChunkedArray | None:
        """True for the rows to remove (``None``: none); the dropped values are added to ``dropped``."""
        mask = None
        for col in ID_COLUMNS:
            if col not in table.column_names:
                continue
            bad = [v for v in distinct(table, col) if drop(col, v)]
            if not bad:
                continue
            dropped.setdefault(col, set()).update(bad)
            hit = _pc().fill_null(_pc().is_in(table[col], value_set=pa.array(bad, pa.string())), False)
            mask = hit if mask is None else _pc().or_(mask, hit)
        return mask

    def count(self, manifest: Manifest, drop: Drop) -> int:
        """Rows of the result that ``drop`` would remove."""
        n = 0
        for part in manifest.parts:
            cols = [c for c in ID_COLUMNS if c in part.columns]
            if cols:
                mask = self._mask(self._read(part.key, cols), drop, {})
                n += 0 if mask is None else int(_pc().sum(mask).as_py() or 0)
        return n

    def rewrite(
        self, manifest: Manifest, place: ResultLocation, raw_key: str, drop: Drop, check: Callable[[], None]
    ) -> Rewritten:
        """Write the result without the rows ``drop`` selects at ``place`` (parts) and ``raw_key`` (original)."""
        dropped: dict[str, set[str]] = {}
        remaining: dict[str, set[str]] = {}
        counts = {"rows": 0, "removed": 0}

        def batches() -> Iterator[pa.RecordBatch]:
            for part in manifest.parts:
                table = self._read(part.key)
                mask = self._mask(table, drop, dropped)
                if mask is not None:
                    kept = table.filter(_pc().invert(mask))
                    counts["removed"] += table.num_rows - kept.num_rows
                    table = kept
                counts["rows"] += table.num_rows
                for col, values in person_ids_of(table).items():
                    remaining.setdefault(col, set()).update(values)
                yield from table.to_batches()

        sinks: list[Any] = []

        def open_part(index: int) -> Any:
            check()
            sink = self._store.open_object(place.part_key(index), PARQUET_TYPE)
            sinks.append(sink)
            return sink

        try:
            infos = write_parquet(batches(), open_part, background=False)
        except BaseException:
            for sink in sinks:
                sink.abort()
            raise
        parts = tuple(
            ManifestPart(key=place.part_key(i.index), rows=i.rows, bytes=i.bytes, columns=tuple(i.columns))
            for i in infos
        )
        raw = RawOriginal(key="", json_bytes=manifest.raw.json_bytes, sha256=manifest.raw.sha256, gzip_bytes=0)
        if raw_key and counts["removed"]:
            raw = self._rewrite_raw(manifest.raw.key, raw_key, dropped, check)
        return Rewritten(parts, counts["rows"], counts["removed"], raw, remaining)

    def _rewrite_raw(self, src: str, dst: str, dropped: dict[str, set[str]], check: Callable[[], None]) -> RawOriginal:
        body = self._store.get(src)
        if body is None:  # expired by rawRetentionDays: nothing to rewrite
            return RawOriginal(key="", json_bytes=0, sha256="", gzip_bytes=0)
        doc = filter_document(igzip.decompress(body), dropped)
        packed = igzip.compress(doc, compresslevel=1)
        check()
        self._store.put(dst, packed, GZIP_TYPE)
        return RawOriginal(key=dst, json_bytes=len(doc), sha256=hashlib.sha256(doc).hexdigest(), gzip_bytes=len(packed))


def filter_document(doc: bytes, dropped: dict[str, set[str]]) -> bytes:
    """The export document without the records whose id fields hold a dropped value; kept records byte for byte."""
    try:
        top = _DOC.decode(doc)
    except msgspec.DecodeError as exc:
        raise DocumentError(f"raw original is not an export document: {exc}") from None
    if len(top) != 1:
        raise DocumentError("raw original must hold exactly one key")
    ((key, records),) = top.items()
    kept: list[bytes] = []
    for record in records:
        ids = _IDS.decode(record)
        if any(_text(getattr(ids, col)) in values for col, values in dropped.items()):
            continue
        kept.append(bytes(record))
    return b"{" + json.dumps(key).encode() + b": [" + b", ".join(kept) + b"]}"
