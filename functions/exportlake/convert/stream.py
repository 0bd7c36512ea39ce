"""The stream wiring of one copy: download chunks → raw gzip tee → record cutter → Arrow → Parquet parts → store.

One adapter with a plain interface (``domain.ports.Converter``): the copy service hands it the chunks, the raw
original's key, a way to place the result once its key is known and a check to run before each object is
completed; it hands back what it wrote. Objects come from ``LakeStore.open_object`` (S3 multipart in Lambda, an
in-memory store in unit tests), so the same wiring runs everywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, cast

from exportlake.convert.parquet import write_parquet
from exportlake.convert.rawarchive import gzip_writer, tee
from exportlake.convert.records import DEFAULT_BATCH_BYTES, RecordStream
from exportlake.domain.location import ResultLocation
from exportlake.domain.manifest import ManifestPart
from exportlake.domain.naming import validate_table_name
from exportlake.domain.ports import Conversion, LakeStore, Progress, Sink
from exportlake.domain.schemas import RESERVED_COLUMNS, column_for_field

#: Rows per Parquet row group: the writer holds a row group's encoding state, so this sets a share of the peak RSS
#: (in-process, 1M/5M win_info records: 131/135 MB with 65,536 rows, 126/130 MB with 49,152, at the same CPU).
ROW_GROUP_ROWS = 49_152
PARQUET_TYPE = "application/vnd.apache.parquet"
GZIP_TYPE = "application/gzip"


class _Checked:
    """A sink whose completion first runs ``check`` (a lost lease stops the object from ever appearing)."""

    def __init__(self, sink: Sink, check: Callable[[], None], *, hold_errors: bool = False) -> None:
        self._sink = sink
        self._check = check
        self._hold = hold_errors
        self.error: BaseException | None = None
        self.done = False

    def write(self, data: Any, /) -> int:
        if self.error is not None:
            return len(data)
        try:
            return self._sink.write(data)
        except BaseException as exc:
            if not self._hold:
                raise
            # Written from the gzip writer's thread: an error raised there would leave its close() waiting
            # forever. Keep it; the converter raises it on its own thread (``raise_held``).
            self.error = exc
            return len(data)

    def raise_held(self) -> None:
        """Raise the error a write hit on another thread, if any."""
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        try:
            self._check()
        except BaseException:
            self._sink.abort()
            raise
        self._sink.close()
        self.done = True

    def abort(self) -> None:
        self._sink.abort()

    def flush(self) -> None:
        """Nothing to flush: bytes reach the store by parts."""

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return bool(getattr(self._sink, "closed", self.done))

    @property
    def size(self) -> int:
        return int(getattr(self._sink, "size", 0) or 0)


def _told(batches: Iterator[Any], stream: RecordStream, progress: Progress) -> Iterator[Any]:
    """Pass batches on, telling ``progress`` the rows and bytes read so far after each."""
    for batch in batches:
        progress(stream.records, stream.bytes_read)
        yield batch


def _renamed(batches: Iterator[Any], stream: RecordStream) -> Iterator[Any]:
    """Pass batches on, a field named like a partition key or ``bad_values`` renamed (``schemas.column_for_field``).

    The Parquet column carries the renamed name, so the Glue column and the file agree (Athena reads by name).
    """
    reserved = frozenset(RESERVED_COLUMNS)
    for batch in batches:
        names = batch.schema.names
        if reserved.isdisjoint(names):
            yield batch
        else:
            yield batch.rename_columns([column_for_field(n, stream.fields) for n in names])


def _watch(chunks: Iterator[bytes], raw: _Checked) -> Iterator[bytes]:
    """Pass chunks on, stopping at the first error the raw archive's writer thread hit."""
    for chunk in chunks:
        raw.raise_held()
        yield chunk


class StreamConverter:
    """Converts one export document into Parquet parts plus a gzip original in a ``LakeStore``."""

    def __init__(
        self,
        store: LakeStore,
        *,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        row_group_rows: int = ROW_GROUP_ROWS,
        raw_archive: bool = True,
    ) -> None:
        self._store = store
        self._raw_archive = raw_archive
        self._batch_bytes = batch_bytes
        self._row_group_rows = row_group_rows

    def convert(
        self,
        chunks: Iterator[bytes],
        *,
        raw_key: str,
        place: Callable[[str], ResultLocation],
        check: Callable[[], None],
        progress: Progress | None = None,
    ) -> Conversion:
        """Stream ``chunks`` into the store; on any failure abort what is open and delete what was completed.

        Without the raw archive (``raw_archive=False``) no original is kept: ``raw_gzip_bytes`` is 0 and nothing is
        written under ``raw_key`` (the SHA-256 and length of the JSON are still recorded).
        """
        raw_sink = (
            _Checked(self._store.open_object(raw_key, GZIP_TYPE), check, hold_errors=True)
            if self._raw_archive
            else None
        )
        located: list[ResultLocation] = []
        sinks: list[tuple[str, _Checked]] = []
        gz: Any = None
        try:
            if raw_sink is not None:
                gz = gzip_writer(raw_sink)
                chunks = _watch(tee(chunks, gz), raw_sink)
            stream = RecordStream(chunks, batch_bytes=self._batch_bytes)

            def where() -> ResultLocation:
                if not located:  # the key is known once the document's opening is parsed
                    located.append(place(validate_table_name(stream.key)))
                return located[0]

            def open_part(index: int) -> BinaryIO:
                key = where().part_key(index)
                sink = _Checked(self._store.open_object(key, PARQUET_TYPE), check)
                sinks.append((key, sink))
                return cast(BinaryIO, sink)

            batches = stream.batches() if progress is None else _told(stream.batches(), stream, progress)
            batches = _renamed(batches, stream)
            infos = write_parquet(batches, open_part, background=False, row_group_rows=self._row_group_rows)
            if raw_sink is not None:
                gz.close()
                raw_sink.raise_held()
                raw_sink.close()
            location = where()  # an empty document opens no part
            parts = tuple(
                ManifestPart(key=key, rows=info.rows, bytes=info.bytes, columns=tuple(info.columns))
                for (key, _), info in zip(sinks, infos, strict=True)
            )
            return Conversion(
                place=location,
                rows=stream.records,
                bytes_in=stream.bytes_read,
                sha256=stream.sha256,
                fields=tuple(column_for_field(f, stream.fields) for f in stream.fields),
                parts=parts,
                raw_gzip_bytes=raw_sink.size if raw_sink is not None else 0,
            )
        except BaseException:
            if gz is not None and not gz.closed:
                with contextlib.suppress(Exception):  # stop its threads; the sink below is aborted anyway
                    gz.close()
            if raw_sink is not None:
                raw_sink.abort()
            for _, sink in sinks:
                sink.abort()
            completed = [key for key, sink in sinks if sink.done] + (
                [raw_key] if raw_sink is not None and raw_sink.done else []
            )
            if completed:
                with contextlib.suppress(Exception):  # best effort: the next attempt tidies the prefix anyway
                    self._store.delete(completed)
            raise
