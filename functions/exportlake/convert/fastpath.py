"""The fast path: records that are plain strings cut into Arrow columns straight from the range's bytes.

When a range holds only records with exactly the known fields, in order, every value a string without escapes,
written with ``json.dumps``' default or compact separators, its columns are cut out of the range's bytes by Arrow
compute kernels (quote positions → string offsets), with no Python object per value. The range's layout is checked
byte for byte against the template first; anything else takes the strict decoder (``convert.strict``).
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Sequence

import pyarrow as pa

try:  # the kernels themselves: ``pyarrow.compute`` wraps every function in Python at import (~9 MB, ~50 ms)
    from pyarrow._compute import call_function as _call
except ImportError:  # pragma: no cover - a pyarrow that moved it
    from pyarrow.compute import call_function as _call

from exportlake.convert.tokens import _QUOTE, _UNFIT_NAME, Columns

#: Bytes per range while ranges take the fast path (``_Template``): its cost includes a dozen Arrow kernel calls per
#: range, so larger ranges pay less per record. 1M win_info records (decode + SHA-256, in-process, medians of 3):
#: 0.78 CPU-s with 128 KiB, 0.53 with 256 KiB, 0.55 with 512 KiB, 0.65 with 1 MiB (peak +10, +14, +21 MB).
FAST_BATCH_BYTES = 256 << 10

#: Layouts the fast path knows: (item separator, key separator) of ``json.dumps`` by default, and compact.
LAYOUTS = ((b", ", b": "), (b",", b":"))

# -------------------------------------------------------------------------------------------------

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


@functools.lru_cache(maxsize=64)
def _index_arrays(width: int, records: int) -> tuple[pa.Array, pa.Array, pa.Array, list[pa.Array]]:
    """The template's index arrays for ``records`` records of ``width`` fields: immutable, so shared by every
    template of that width (built once per process, not once per document: ~5 ms of CPU per small result)."""
    values = records * width
    # Offsets of the segments: value k starts after quote 4k+2 and ends at quote 4k+3.
    quote_index = pa.array([4 * (k >> 1) + 2 + (k & 1) for k in range(2 * values)], pa.int32())
    start_shift = pa.array([1 - (k & 1) for k in range(2 * values)], pa.int32())
    junk_index = pa.array(range(1, 2 * values - 1, 2), pa.int32())
    column_index = [pa.array(range(2 * j, 2 * values, 2 * width), pa.int32()) for j in range(width)]
    return quote_index, start_shift, junk_index, column_index


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
        return [cls(names, item, colon) for item, colon in LAYOUTS]

    def _grow(self, records: int) -> None:
        """Index arrays for ranges of up to ``records`` records (prefixes serve smaller ranges)."""
        self._quote_index, self._start_shift, self._junk_index, self._column_index = _index_arrays(self.width, records)
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
