"""Stream the records of one export document (``{"<key>": [ {record}, ... ]}``) as Arrow batches.

The document can hold millions of records, so it is never parsed whole. The array is cut into byte ranges of about
``batch_bytes`` that end on a record's closing ``}``, and each range is decoded by msgspec in one call (strict JSON,
C speed) straight into a typed Struct whose fields become Arrow columns. Why a cut is safe: decoding starts at a
record boundary, so a cut that lands inside a string or inside a nested value leaves the range unbalanced and it
fails to decode; a range that decodes is exactly the records the whole document holds there. When a guess fails,
the stream tries a few neighbouring ``}``, then finds a boundary with a real tokenizer (strings and escapes aware).

The common case takes a faster path (``_Template``): when a range holds only records with exactly the known fields,
in order, every value a string without escapes, written with ``json.dumps``' default or compact separators, its
columns are cut out of the range's bytes by Arrow compute kernels (quote positions → string offsets), with no
Python object per value. The range's layout is checked byte for byte against the template first; anything else
(an escape, a null, a number, a missing, extra or reordered key, other whitespace) takes the msgspec path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from operator import attrgetter
from typing import Any

import msgspec
import pyarrow as pa

from exportlake.convert.fastpath import FAST_BATCH_BYTES, _Template
from exportlake.convert.strict import _DECODE_ERRORS, StrictDecoding, _BadRangeError
from exportlake.convert.tokens import (
    _BOM,
    _CLOSE_BRACE,
    _CLOSE_BRACKET,
    _COLON,
    _COMMA,
    _MAX_KEY_BYTES,
    _OPEN_BRACE,
    _OPEN_BRACKET,
    _QUOTE,
    _STRING,
    _TOKEN,
    _UNFIT_NAME,
    _WS,
    Columns,
)
from exportlake.domain.errors import DocumentError, TransientError
from exportlake.domain.limits import MAX_NESTING_DEPTH, MAX_RECORD_BYTES

__all__ = ["DEFAULT_BATCH_BYTES", "FAST_BATCH_BYTES", "DocumentTruncated", "RecordStream"]

#: Bytes of JSON per decoded range. Small ranges keep the decoded objects in cache and let the allocator reuse
#: their memory: measured 1M win_info records at 0.9 s CPU with 256 KiB against 1.6 s with 8 MiB (2.8 s against 1.1 s
#: for gamification_prize_user_id), and 128 KiB another ~9 % below 256 KiB on a whole 5M sync with a random id per
#: record. Row groups are gathered downstream, so this does not shape the Parquet files.
DEFAULT_BATCH_BYTES = 128 << 10
_FAST_TRIES = 4  # cheap guesses at a cut before the tokenizer runs

#: The fast path gives up on a document after this many ranges in a row that do not fit the template, then retries
#: only every ``_FAST_RETRY_EVERY``-th range (a document of another shape pays next to nothing for it).
_FAST_GIVE_UP, _FAST_RETRY_EVERY = 8, 64


class DocumentTruncated(TransientError):
    """The input ended before the document did.

    Transient, not a ``DocumentError``: a body sent without ``Content-Length`` (or chunked framing) that the
    connection cuts short ends like a complete one at the HTTP level, so only the document shows it; the download
    is retried. A document truly stored truncated fails after the queue's retries (``MAX_RECEIVES``).
    """


class _NeedMoreError(Exception):
    """The buffer ends before the next token: read another chunk."""


class RecordStream(StrictDecoding):
    """Incremental, strict reader of one export document, yielding its records as string-typed Arrow batches.

    ``chunks`` are the document's bytes in any split. Attributes filled while streaming: ``key`` (the top-level
    key, once the opening is parsed), ``records``, ``bytes_read``, ``fields`` (output column order) and ``sha256``.
    """

    def __init__(
        self,
        chunks: Iterable[bytes],
        *,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        fast_batch_bytes: int | None = None,
        max_record_bytes: int = MAX_RECORD_BYTES,
        max_depth: int = MAX_NESTING_DEPTH,
    ) -> None:
        self._chunks = iter(chunks)
        self._batch_bytes = max(1, int(batch_bytes))
        # The range size while the fast path fits (None: FAST_BATCH_BYTES, or batch_bytes when that is larger).
        fast = max(self._batch_bytes, FAST_BATCH_BYTES) if fast_batch_bytes is None else int(fast_batch_bytes)
        self._fast_batch_bytes = max(1, fast)
        self._target = self._batch_bytes  # the size of the next range: batch_bytes, or fast_batch_bytes
        self._max_record = max(1, int(max_record_bytes))
        self._max_depth = max(1, int(max_depth))
        self._buf = bytearray()
        self._base = 0  # document offset of self._buf[0]
        self._eof = False
        self._hash = hashlib.sha256()
        self._started = False
        self._consumed = False
        self._array_at = 0  # buffer index of the array's "[" once the opening is parsed
        self.key: str | None = None
        self.records = 0
        self.bytes_read = 0
        self._order: list[str] = []
        self._known: set[str] = set()
        self._schema = pa.schema([])
        self._getters: list[attrgetter[Any]] = []
        self._fast: msgspec.json.Decoder[Any] | None = None
        self._templates: list[_Template] = []
        self._misses = 0
        self._tries = 0
        #: Ranges that took the fast path (``_Template``): for tests and the bench.
        self.fast_ranges = 0
        self._rebuild()

    @property
    def fields(self) -> list[str]:
        """The column order of the batches: the requested columns, then other fields in first-seen order."""
        return list(self._order)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of every byte read so far (of the whole document once the batches are exhausted)."""
        return self._hash.hexdigest()

    def start(self) -> str:
        """Parse the document's opening (``{"key": [``) and return the key; idempotent."""
        if not self._started:
            while True:
                try:
                    self._parse_opening()
                    break
                except _NeedMoreError:
                    if not self._fill():
                        raise DocumentTruncated("the document ends before its records array starts") from None
            self._started = True
        return self.key or ""

    def batches(self, columns: Sequence[str] = ()) -> Iterator[pa.RecordBatch]:
        """Yield the records as batches of ``pa.string()`` columns (non-string values as their JSON text).

        Raises ``DocumentError`` as soon as the document proves not to be one object holding one array of objects.
        """
        if self._consumed:
            raise RuntimeError("RecordStream.batches() can be iterated only once")
        self._consumed = True
        for name in columns:
            if name not in self._known:
                self._known.add(name)
                self._order.append(name)
        self._rebuild()
        self.start()
        for rows, cols in self._ranges():
            self.records += rows
            if cols:
                arrays = [c if isinstance(c, pa.Array) else pa.array(c, pa.string()) for c in cols]
                yield pa.RecordBatch.from_arrays(arrays, schema=self._schema)
            else:  # records with no field at all: keep the row count
                yield pa.RecordBatch.from_struct_array(pa.array([{}] * rows, pa.struct([])))

    # -- reading ---------------------------------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Append the next non-empty chunk to the buffer; False at the end of the input."""
        if self._eof:
            return False
        for chunk in self._chunks:
            if chunk:
                self._hash.update(chunk)
                self.bytes_read += len(chunk)
                self._buf += chunk
                return True
        self._eof = True
        return False

    def _drop(self, n: int) -> None:
        """Forget the first ``n`` buffered bytes (bytearray deletes from the front in O(1))."""
        del self._buf[:n]
        self._base += n

    def _ws(self, i: int) -> int:
        return _WS.match(self._buf, i).end()  # type: ignore[union-attr]  # "*" always matches

    def _expect(self, i: int, char: int, what: str) -> int:
        """Skip whitespace from ``i`` and require ``char``; return the index after it."""
        i = self._ws(i)
        if i >= len(self._buf):
            raise _NeedMoreError
        if self._buf[i] != char:
            raise DocumentError(f"expected {what} at byte {self._base + i}, found {self._show(i)}")
        return i + 1

    def _show(self, i: int) -> str:
        return repr(bytes(self._buf[i : i + 16]).decode("utf-8", "replace"))

    def _parse_opening(self) -> None:
        buf = self._buf
        i = len(_BOM) if buf.startswith(_BOM) else 0  # json.loads(bytes) accepts a UTF-8 BOM too
        if len(buf) < len(_BOM) and _BOM.startswith(bytes(buf)) and not self._eof:
            raise _NeedMoreError
        i = self._expect(i, _OPEN_BRACE, "'{' (the document must be one JSON object)")
        j = self._ws(i)
        if j >= len(buf):
            raise _NeedMoreError
        if buf[j] == _CLOSE_BRACE:
            raise DocumentError("the document is an empty object: expected one key holding the records array")
        if buf[j] != _QUOTE:
            raise DocumentError(f"expected the export key (a string) at byte {self._base + j}, found {self._show(j)}")
        m = _STRING.match(buf, j)
        if m is None:
            if len(buf) - j > _MAX_KEY_BYTES:
                raise DocumentError("the export key is not a terminated string within 64 KiB")
            raise _NeedMoreError
        try:
            key = msgspec.json.decode(m.group(), type=str)
        except _DECODE_ERRORS as exc:
            raise DocumentError(f"the export key is not a valid JSON string: {exc}") from None
        i = self._expect(m.end(), _COLON, "':' after the export key")
        j = self._ws(i)
        if j >= len(buf):
            raise _NeedMoreError
        if buf[j] != _OPEN_BRACKET:
            raise DocumentError(f"the value of {key!r} must be an array of records, found {self._show(j)}")
        self.key = key
        self._array_at = j

    # -- cutting ---------------------------------------------------------------------------------------------------

    def _ranges(self) -> Iterator[tuple[int, Columns]]:
        """Yield (rows, columns) per decoded range. ``s`` indexes the separator ('[' or ',') before the range."""
        buf = self._buf
        s = self._array_at
        need_obj, need_sep, first = True, False, True
        retry_at = 0  # a failed cut waits until the pending bytes double: linear time for huge records
        while True:
            try:
                if need_sep:
                    j = self._ws(s)
                    if j >= len(buf):
                        raise _NeedMoreError
                    if buf[j] == _CLOSE_BRACKET:
                        self._finish(j + 1)
                        return
                    if buf[j] != _COMMA:
                        raise DocumentError(
                            f"expected ',' or ']' after record {self.records} at byte {self._base + j}, "
                            f"found {self._show(j)}"
                        )
                    s, need_sep, need_obj = j, False, True
                if need_obj:
                    j = self._ws(s + 1)
                    if j >= len(buf):
                        raise _NeedMoreError
                    if buf[j] == _CLOSE_BRACKET:
                        if not first:
                            raise DocumentError(f"trailing ',' after record {self.records} at byte {self._base + s}")
                        self._finish(j + 1)
                        return
                    if buf[j] != _OPEN_BRACE:
                        raise DocumentError(
                            f"record {self.records + 1} is not a JSON object (byte {self._base + j}: {self._show(j)})"
                        )
                    need_obj, first = False, False
                pending = len(buf) - s
                if pending >= self._target and (pending >= retry_at or self._eof):
                    found = self._cut(s)
                    if found is not None:
                        end, decoded = found
                        yield decoded
                        self._drop(end + 1)
                        s, need_sep, retry_at = 0, True, 0
                        continue
                    if pending > self._target + self._max_record:
                        raise DocumentError(
                            f"record {self.records + 1} of the {self.key!r} array is larger than "
                            f"{self._max_record:,} bytes (or never ends)"
                        )
                    # Check again once the bytes double, or as soon as the record limit is crossed.
                    retry_at = min(2 * pending, self._target + self._max_record + 1)
                if self._eof:
                    yield self._last(s)
                    return
                raise _NeedMoreError
            except _NeedMoreError:
                if not self._fill() and (need_sep or need_obj):
                    raise DocumentTruncated(f"the document ends early, after record {self.records}") from None

    def _cut(self, s: int) -> tuple[int, tuple[int, Columns]] | None:
        """Find the end of a record near ``s + batch_bytes`` and decode up to it; None if none is buffered."""
        buf = self._buf
        limit = s + self._target
        tries: list[int] = []
        e = buf.find(b"}", limit - 1)
        while e != -1 and len(tries) < _FAST_TRIES - 1:
            tries.append(e)
            e = buf.find(b"}", e + 1)
        back = buf.rfind(b"}", s + 1, limit - 1)
        if back != -1:
            tries.append(back)
        for e in tries:
            try:
                return e, self._decode_range(s, e)
            except _BadRangeError:
                continue
        boundary = self._boundary(s, limit)
        if boundary is None:
            return None
        try:
            return boundary, self._decode_range(s, boundary)
        except _BadRangeError as bad:
            raise self._error(bad.exc, s) from None

    def _boundary(self, s: int, limit: int) -> int | None:
        """Tokenize from ``s``: the first record end at or after ``limit - 1``, else the last one before it."""
        buf = self._buf
        depth = 0
        last = None
        for m in _TOKEN.finditer(buf, s + 1):
            at = m.start()
            c = buf[at]
            if c == _QUOTE:
                if m.end() - at == 1:  # a string that runs past the buffer
                    break
                continue
            if c in (_OPEN_BRACE, _OPEN_BRACKET):
                depth += 1
                if depth > self._max_depth:
                    raise self._too_deep()
                continue
            depth -= 1
            if depth < 0:  # the array's own "]" (or garbage): no record ends beyond here
                break
            if depth == 0 and c == _CLOSE_BRACE:
                if at >= limit - 1:
                    return at
                last = at
        return last

    def _last(self, s: int) -> tuple[int, Columns]:
        """At the end of the input: the rest must be records, then ``]``, ``}`` and whitespace only."""
        buf = self._buf
        end = _rstrip(buf, len(buf))
        if end == 0 or buf[end - 1] != _CLOSE_BRACE or end - 1 <= s:
            raise DocumentTruncated(f"the document ends early, after record {self.records} (no final '}}')")
        close = _rstrip(buf, end - 1)
        if close <= s + 1 or buf[close - 1] != _CLOSE_BRACKET:
            raise DocumentTruncated(f"the document ends early, after record {self.records} (no final ']')")
        # buf[s] is the separator and buf[close - 1] the array's "]": the range decodes as one array in place.
        buf[s] = _OPEN_BRACKET
        try:
            with memoryview(buf) as mv, mv[s:close] as view:
                return self._decode(view, s)
        except _BadRangeError as bad:
            raise self._error(bad.exc, s) from None

    def _finish(self, i: int) -> None:
        """After the array's ``]``: require ``}`` then whitespace to the end of the input."""
        brace = False
        while True:
            j = self._ws(i)
            if j < len(self._buf):
                if brace or self._buf[j] != _CLOSE_BRACE:
                    what = "trailing data after the document" if brace else "'}' after the records array"
                    if not brace and self._buf[j] == _COMMA:
                        what = "one top-level key only (found a second one)"
                    raise DocumentError(f"{what} at byte {self._base + j}: {self._show(j)}")
                brace, j = True, j + 1
                j = self._ws(j)
                if j < len(self._buf):
                    raise DocumentError(f"trailing data after the document at byte {self._base + j}: {self._show(j)}")
            self._drop(len(self._buf))
            i = 0
            if not self._fill():
                if not brace:
                    raise DocumentTruncated("the document ends early: no '}' after the records array")
                return

    # -- decoding --------------------------------------------------------------------------------------------------

    def _decode_range(self, s: int, e: int) -> tuple[int, Columns]:
        """Decode ``buf[s..e]`` as an array, in place: ``buf[s]`` becomes "[" and the byte after ``e`` "]"."""
        buf = self._buf
        buf[s] = _OPEN_BRACKET
        appended = e + 1 >= len(buf)
        if appended:
            buf.append(_CLOSE_BRACKET)
            saved = 0
        else:
            saved = buf[e + 1]
            buf[e + 1] = _CLOSE_BRACKET
        try:
            with memoryview(buf) as mv, mv[s : e + 2] as view:
                return self._decode(view, s)
        finally:
            if appended:
                del buf[-1]
            else:
                buf[e + 1] = saved

    def _decode(self, view: memoryview, start: int) -> tuple[int, Columns]:
        """Decode one JSON array of records (``view`` = ``self._buf[start:...]``) into columns in ``self._order``;
        raise ``_BadRangeError`` if it fails."""
        if self._templates and (self._misses < _FAST_GIVE_UP or self._tries % _FAST_RETRY_EVERY == 0):
            self._tries += 1
            for i, template in enumerate(self._templates):
                found = template.columns(self._buf, start, view)
                if found is not None:
                    self._misses = 0
                    self._target = self._fast_batch_bytes
                    self.fast_ranges += 1
                    if i:  # the layout that fits goes first next time
                        self._templates.insert(0, self._templates.pop(i))
                    return found
            self._misses += 1
            self._target = self._batch_bytes
        if self._fast is None:
            return self._decode_general(view)
        try:
            recs = self._fast.decode(view)
        except msgspec.ValidationError:
            return self._decode_general(view)  # a new field or a non-string value
        except _DECODE_ERRORS as exc:
            raise _BadRangeError(exc) from None
        return len(recs), [list(map(g, recs)) for g in self._getters]

    def _rebuild(self) -> None:
        """A Struct decoder for the current fields: the fast path for ranges holding only known string fields."""
        names = [f"f{i}" for i in range(len(self._order))]
        self._schema = pa.schema([pa.field(name, pa.string()) for name in self._order])
        self._getters = [attrgetter(n) for n in names]
        self._templates = _Template.all_for(self._order)
        if any(_UNFIT_NAME.search(name) for name in self._order):
            self._fast = None  # msgspec cannot name a Struct field so: every range takes the general path
            return
        struct = msgspec.defstruct(
            "Record",
            [(n, str | None, None) for n in names],
            rename=dict(zip(names, self._order, strict=True)),
            forbid_unknown_fields=True,
            gc=False,  # only str/None inside: no cycles, and no GC passes over millions of objects
        )
        self._fast = msgspec.json.Decoder(list[struct])  # type: ignore[valid-type]


def _rstrip(buf: bytearray, end: int) -> int:
    """The index after the last non-whitespace byte before ``end`` (without copying the buffer)."""
    while end > 0 and buf[end - 1] in b" \t\n\r":
        end -= 1
    return end
