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
import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from operator import attrgetter
from typing import Any

import msgspec
import pyarrow as pa

try:  # the kernels themselves: ``pyarrow.compute`` wraps every function in Python at import (~9 MB, ~50 ms)
    from pyarrow._compute import call_function as _call
except ImportError:  # pragma: no cover - a pyarrow that moved it
    from pyarrow.compute import call_function as _call

from exportlake.domain.errors import DocumentError, TransientError
from exportlake.domain.limits import MAX_NESTING_DEPTH, MAX_RECORD_BYTES

__all__ = ["DEFAULT_BATCH_BYTES", "FAST_BATCH_BYTES", "DocumentTruncated", "RecordStream"]

_WS = re.compile(rb"[ \t\n\r]*")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
# A whole string, a bracket, or a lone quote (a string that does not end inside the buffer).
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]]|"', re.S)
_BYTE_POS = re.compile(r"\(byte (\d+)\)")
_PATH = re.compile(r"`\$\[(\d+)\]([^`]*)`")
_BOM = b"\xef\xbb\xbf"
_UNFIT_NAME = re.compile(r'["\\\x00-\x1f]')  # msgspec refuses these in a Struct field's encoded name
_MAX_KEY_BYTES = 1 << 16
#: Bytes of JSON per decoded range. Small ranges keep the decoded objects in cache and let the allocator reuse
#: their memory: measured 1M win_info records at 0.9 s CPU with 256 KiB against 1.6 s with 8 MiB (2.8 s against 1.1 s
#: for gamification_prize_user_id), and 128 KiB another ~9 % below 256 KiB on a whole 5M sync with a random id per
#: record. Row groups are gathered downstream, so this does not shape the Parquet files.
DEFAULT_BATCH_BYTES = 128 << 10
#: Bytes per range while ranges take the fast path (``_Template``): its cost includes a dozen Arrow kernel calls per
#: range, so larger ranges pay less per record. 1M win_info records (decode + SHA-256, in-process, medians of 3):
#: 0.78 CPU-s with 128 KiB, 0.53 with 256 KiB, 0.55 with 512 KiB, 0.65 with 1 MiB (peak +10, +14, +21 MB).
FAST_BATCH_BYTES = 256 << 10
_FAST_TRIES = 4  # cheap guesses at a cut before the tokenizer runs

_OPEN_BRACE, _CLOSE_BRACE, _OPEN_BRACKET, _CLOSE_BRACKET = 0x7B, 0x7D, 0x5B, 0x5D
_COMMA, _COLON, _QUOTE = 0x2C, 0x3A, 0x22

#: Layouts the fast path knows: (item separator, key separator) of ``json.dumps`` by default, and compact.
_LAYOUTS = ((b", ", b": "), (b",", b":"))
#: The fast path gives up on a document after this many ranges in a row that do not fit the template, then retries
#: only every ``_FAST_RETRY_EVERY``-th range (a document of another shape pays next to nothing for it).
_FAST_GIVE_UP, _FAST_RETRY_EVERY = 8, 64

_ANY = msgspec.json.Decoder(list[dict[str, Any]])
_RAW = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)


#: A decoded range's columns: Python lists (the msgspec path) or Arrow string arrays (the template path).
Columns = list[list[str | None]] | list[pa.Array]


class DocumentTruncated(TransientError):
    """The input ended before the document did.

    Transient, not a ``DocumentError``: a body sent without ``Content-Length`` (or chunked framing) that the
    connection cuts short ends like a complete one at the HTTP level, so only the document shows it; the download
    is retried. A document truly stored truncated fails after the queue's retries (``MAX_RECEIVES``).
    """


class _NeedMoreError(Exception):
    """The buffer ends before the next token: read another chunk."""


class _BadRangeError(Exception):
    """A byte range did not decode (a wrong cut, or an invalid document)."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(str(exc))
        self.exc = exc


class RecordStream:
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

    def _decode_general(self, view: memoryview) -> tuple[int, Columns]:
        try:
            recs: list[dict[str, Any]] = _ANY.decode(view)
        except msgspec.ValidationError:
            # Valid JSON that Python cannot hold (a number like 1e400): every value as its text instead.
            return self._decode_raw(view)
        except _DECODE_ERRORS as exc:
            raise _BadRangeError(exc) from None
        except RecursionError:
            raise self._too_deep() from None
        new = [k for k in dict.fromkeys(k for r in recs for k in r) if k not in self._known]
        if new:
            self._known.update(new)
            self._order.extend(new)
            self._rebuild()
        raws: list[dict[str, msgspec.Raw]] | None = None
        cols: list[list[str | None]] = []
        for name in self._order:
            col = [r.get(name) for r in recs]
            for i, v in enumerate(col):
                if v is not None and type(v) is not str:
                    if type(v) in (dict, list) and _depth(v, self._max_depth) > self._max_depth:
                        raise self._too_deep()
                    if raws is None:  # the exact text of numbers (no float rounding), only when needed
                        raws = _RAW.decode(bytes(view))
                    col[i] = _json_text(raws[i][name])
            cols.append(col)
        return len(recs), cols

    def _decode_raw(self, view: memoryview) -> tuple[int, Columns]:
        """Decode without converting values: strings as strings, null as None, anything else as its JSON text."""
        try:
            raws: list[dict[str, msgspec.Raw]] = _RAW.decode(view)
        except _DECODE_ERRORS as exc:
            raise _BadRangeError(exc) from None
        except RecursionError:
            raise self._too_deep() from None
        new = [k for k in dict.fromkeys(k for r in raws for k in r) if k not in self._known]
        if new:
            self._known.update(new)
            self._order.extend(new)
            self._rebuild()
        cols: list[list[str | None]] = []
        for name in self._order:
            col: list[str | None] = []
            for r in raws:
                raw = r.get(name)
                text = None if raw is None else bytes(raw)
                if text is None or text == b"null":
                    col.append(None)
                elif text[:1] == b'"':
                    col.append(msgspec.json.decode(text, type=str))
                else:
                    if text[:1] in (b"{", b"[") and _text_depth(text) + 1 > self._max_depth:
                        raise self._too_deep()
                    col.append(_json_text(raw))  # type: ignore[arg-type]  # not None here
            cols.append(col)
        return len(raws), cols

    def _too_deep(self) -> DocumentError:
        return DocumentError(
            f"a record of the {self.key!r} array after record {self.records} nests deeper than {self._max_depth} levels"
        )

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

    def _error(self, exc: Exception, s: int) -> DocumentError:
        """A DocumentError that names the record and document byte offset instead of the range's."""
        msg = str(exc)
        if msg == "Input data was truncated":
            msg = "unterminated value (a truncated document, or an invalid string escape)"
        msg = _BYTE_POS.sub(lambda m: f"(byte {self._base + s + int(m.group(1))})", msg)
        msg = _PATH.sub(lambda m: f"record {self.records + int(m.group(1)) + 1}{m.group(2)}", msg)
        return DocumentError(f"invalid record in the {self.key!r} array after record {self.records}: {msg}")


def _json_text(raw: msgspec.Raw) -> str:
    """A non-string value's JSON text as written in the document (nested values without whitespace)."""
    text = bytes(raw)
    if text[:1] in (b"{", b"["):
        text = msgspec.json.format(text, indent=-1)
    return text.decode()


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a decoded record value counting the record (``{"a": [1]}``'s ``[1]`` gives 2); stops
    counting past ``limit``. Iterative: a deep value must not exhaust the Python stack."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 2)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        children = v.values() if type(v) is dict else v
        stack.extend((c, d + 1) for c in children if type(c) in (dict, list))
    return deepest


def _text_depth(text: bytes) -> int:
    """Bracket depth of one JSON value's text (strings skipped)."""
    depth = deepest = 0
    for m in _TOKEN.finditer(text):
        c = text[m.start()]
        if c in (_OPEN_BRACE, _OPEN_BRACKET):
            depth += 1
            deepest = max(deepest, depth)
        elif c in (_CLOSE_BRACE, _CLOSE_BRACKET):
            depth -= 1
    return deepest


def _rstrip(buf: bytearray, end: int) -> int:
    """The index after the last non-whitespace byte before ``end`` (without copying the buffer)."""
    while end > 0 and buf[end - 1] in b" \t\n\r":
        end -= 1
    return end


# -- the fast path -------------------------------------------------------------------------------------------------

_QUOTE_U8 = pa.scalar(_QUOTE, pa.uint8())
_CONTROL_BELOW = 0x20  # JSON forbids raw control characters inside strings
#: Ranges up to this size find their quotes by filtering a shared ``arange`` (the fastest kernel); larger ones use
#: ``indices_nonzero``. The ``arange`` is int32, so it costs 4 bytes per byte of this limit.
_POSITIONS_LIMIT = FAST_BATCH_BYTES + (64 << 10)
_positions = pa.array([], pa.int32())


def _take(values: pa.Array, indices: pa.Array) -> pa.Array:
    """``values[indices]`` (Arrow's array_take kernel: a gather in C++, no bounds surprises: indices are ours)."""
    return _call("array_take", [values, indices])


def _quote_positions(u8: pa.Array, mask: pa.Array) -> pa.Array:
    """Indices (int32) of every ``"`` byte in ``u8`` (``mask``: where ``u8`` is ``"``)."""
    global _positions  # noqa: PLW0603 - one shared, grown-on-demand index array
    n = len(u8)
    if n > _POSITIONS_LIMIT:
        return _call("indices_nonzero", [mask]).cast(pa.int32())
    if len(_positions) < n:
        size = max(n, min(2 * len(_positions), _POSITIONS_LIMIT))
        _positions = pa.Array.from_buffers(pa.int32(), size, [None, pa.py_buffer(array("i", range(size)))])
    return _call("array_filter", [_positions.slice(0, n), mask])


class _Template:
    """The exact bytes of a range of records that hold ``names`` in order, each a plain string (no escapes).

    Such a range is ``[`` + optional spaces + ``{"k0": "v" + junk + "v" + ... + ``"}]`` where every junk piece
    between two values is fixed (``", "k1": "`` inside a record, ``"}, {"k0": "`` between records). With no ``\\``
    in the range, the quotes are exactly the string delimiters, so the values are the bytes between quotes
    ``4k+2`` and ``4k+3``: one Arrow string array of value/junk segments is made over the range's own bytes, the
    junk segments are compared with the template's, and each column is taken out of the value segments. The check
    is complete: if the head, the tail and the junk match, the range *is* the template with quote-free,
    escape-free values (control characters and invalid UTF-8 are refused too), so its strict JSON decoding is
    exactly those strings. Anything else returns None and the range takes the msgspec path.
    """

    def __init__(self, names: Sequence[str], item: bytes, colon: bytes) -> None:
        self.width = len(names)
        keys = [b'"' + name.encode() + b'"' + colon + b'"' for name in names]
        self._head = b"{" + keys[0]
        self._pieces = [self._head, *(b'"' + item + key for key in keys[1:])]  # the bytes before each value
        self._item = item
        self._inner = b"".join(self._pieces[1:])
        self._between = b'"}' + item + b"{" + keys[0]
        self._capacity = 0
        self._grow(1024)
        self._lattice: _Lattice | None = None  # the layout of records whose values all have the last lengths seen

    @classmethod
    def all_for(cls, names: Sequence[str]) -> list[_Template]:
        """Templates for the known layouts, or none when a name could not appear unescaped in one."""
        if not names or any(_UNFIT_NAME.search(name) for name in names):
            return []
        return [cls(names, item, colon) for item, colon in _LAYOUTS]

    def _grow(self, records: int) -> None:
        """Index arrays for ranges of up to ``records`` records (prefixes serve smaller ranges)."""
        width = self.width
        values = records * width
        # Offsets of the segments: value k starts after quote 4k+2 and ends at quote 4k+3.
        self._quote_index = pa.array([4 * (k >> 1) + 2 + (k & 1) for k in range(2 * values)], pa.int32())
        self._start_shift = pa.array([1 - (k & 1) for k in range(2 * values)], pa.int32())
        self._junk_index = pa.array(range(1, 2 * values - 1, 2), pa.int32())
        self._column_index = [pa.array(range(2 * j, 2 * values, 2 * width), pa.int32()) for j in range(width)]
        self._junk = pa.py_buffer((self._inner + self._between) * records)
        self._capacity = records

    def _segments(self, buf: bytearray, start: int, view: memoryview) -> tuple[int, pa.Array, bool] | None:
        """(rows, value/junk segments, ASCII only) of a range that looks like the template, else None (cheap checks
        first). The range is ``view`` = ``buf[start:end]``; the Arrow objects made over ``view`` must not outlive
        the call that made them (the stream resizes ``buf`` afterwards): only copies (``take``) are returned."""
        end = start + len(view)
        if buf.find(b"\\", start, end) != -1 or not buf.endswith(b'"}]', start, end):
            return None
        at = start + 1
        while buf[at] == 0x20:  # " " after the range's "[" (the document's ", " between records)
            at += 1
        if not buf.startswith(self._head, at, end):
            return None
        data = pa.py_buffer(view)
        u8 = pa.Array.from_buffers(pa.uint8(), len(view), [None, data])
        low, high = _call("min_max", [u8]).values()
        if low.as_py() < _CONTROL_BELOW:
            return None
        mask = _call("equal", [u8, _QUOTE_U8])
        ascii_only = high.as_py() < 0x80
        if self._lattice is not None:
            fixed = self._lattice.segments(u8, mask, data, at - start)
            if fixed is not None:
                return fixed[0], fixed[1], ascii_only
        quotes = _quote_positions(u8, mask)
        rows, rest = divmod(len(quotes), 4 * self.width)
        if rest or not rows:
            return None
        if rows > self._capacity:
            self._grow(max(rows, 2 * self._capacity))
        n = 2 * rows * self.width
        offsets = _call("add", [_take(quotes, self._quote_index.slice(0, n)), self._start_shift.slice(0, n)])
        self._learn(offsets)
        return rows, pa.Array.from_buffers(pa.string(), n - 1, [None, offsets.buffers()[1], data]), ascii_only

    def _learn(self, offsets: pa.Array) -> None:
        """Take the first record's value lengths as the lattice to try first on the next range."""
        first = memoryview(offsets.buffers()[1]).cast("i")[: 2 * self.width]
        lengths = tuple(first[2 * j + 1] - first[2 * j] for j in range(self.width))
        if self._lattice is None or self._lattice.lengths != lengths:
            self._lattice = _Lattice(self._pieces, self._item, lengths)

    def columns(self, buf: bytearray, start: int, view: memoryview) -> tuple[int, Columns] | None:
        """The range's columns as Arrow string arrays, or None when it is not exactly this template."""
        found = self._segments(buf, start, view)
        if found is None:
            return None
        rows, segments, ascii_only = found
        if rows > self._capacity:  # (the lattice path does not grow the template's own index arrays)
            self._grow(max(rows, 2 * self._capacity))
        values = rows * self.width
        if values > 1:  # the junk between values, byte for byte (each piece holds 4 quotes: the pieces line up)
            junk = _take(segments, self._junk_index.slice(0, values - 1))
            size = rows * (len(self._inner) + len(self._between)) - len(self._between)
            junk_offsets, junk_data = junk.buffers()[1:3]
            if memoryview(junk_offsets).cast("i")[values - 1] != size or not junk_data.slice(0, size).equals(
                self._junk.slice(0, size)
            ):
                return None
        cols: list[pa.Array] = [_take(segments, index.slice(0, rows)) for index in self._column_index]
        if not ascii_only:
            try:
                for col in cols:
                    col.validate(full=True)  # UTF-8 (the junk is the template's own, valid, bytes)
            except pa.ArrowInvalid:
                return None
        return rows, cols


class _Lattice:
    """A ``_Template`` whose values all have fixed lengths (ids, timestamps): every quote's position is known.

    Records are then ``stride`` bytes apart, so a range of ``n`` of them has a known size, and it fits when it holds
    exactly ``4 * width * n`` quotes, every one at its expected position: the quotes are where the template's are,
    which is all the quote search of the general template path would have found. No search, a count and a gather.
    """

    def __init__(self, pieces: Sequence[bytes], item: bytes, lengths: tuple[int, ...]) -> None:
        self.lengths = lengths
        sample = b"".join(piece + b"x" * n for piece, n in zip(pieces, lengths, strict=True)) + b'"}'
        self._quotes_at = [i for i, c in enumerate(sample) if c == _QUOTE]
        self._spans: list[tuple[int, int]] = []
        at = 0
        for piece, n in zip(pieces, lengths, strict=True):
            at += len(piece)
            self._spans.append((at, at + n))
            at += n
        self._item = len(item)
        self.stride = len(sample) + len(item)
        self._capacity = 0
        self.hits = 0  # ranges that fit (tests)

    def _grow(self, records: int) -> None:
        stride = self.stride
        self._quote_index = pa.array([r * stride + q for r in range(records) for q in self._quotes_at], pa.int32())
        bounds = array("i", (r * stride + b for r in range(records) for span in self._spans for b in span))
        self._offsets = pa.py_buffer(bounds)
        self._capacity = records

    def segments(self, u8: pa.Array, mask: pa.Array, data: pa.Buffer, first: int) -> tuple[int, pa.Array] | None:
        """(rows, value/junk segments) when the range (its first record at byte ``first``) fits, else None."""
        rows, rest = divmod(len(u8) - first - 1 + self._item, self.stride)
        if rest or not rows:
            return None
        quotes = len(self._quotes_at) * rows
        if _call("sum", [mask]).as_py() != quotes:
            return None
        if rows > self._capacity:
            self._grow(max(rows, 2 * self._capacity))
        low, high = _call("min_max", [_take(u8.slice(first), self._quote_index.slice(0, quotes))]).values()
        if low.as_py() != _QUOTE or high.as_py() != _QUOTE:
            return None
        n = 2 * len(self._spans) * rows
        offsets = self._offsets.slice(0, 4 * n)
        self.hits += 1
        return rows, pa.Array.from_buffers(pa.string(), n - 1, [None, offsets, data.slice(first)])
