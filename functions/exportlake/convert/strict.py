"""The strict decoder: msgspec decodes a range of records exactly (strict JSON, C speed).

A typed Struct decodes ranges that hold only known string fields; anything else (a new field, a number, a nested
value) takes the general decoder, which keeps every non-string value as its exact JSON text and bounds nesting.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

import msgspec

from exportlake.convert.tokens import (
    _BYTE_POS,
    _CLOSE_BRACE,
    _CLOSE_BRACKET,
    _OPEN_BRACE,
    _OPEN_BRACKET,
    _PATH,
    _TOKEN,
    Columns,
)
from exportlake.domain.errors import DocumentError

_ANY = msgspec.json.Decoder(list[dict[str, Any]])
_RAW = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)


class _BadRangeError(Exception):
    """A byte range did not decode (a wrong cut, or an invalid document)."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(str(exc))
        self.exc = exc


class StrictDecoding:
    """The strict decoding half of ``RecordStream`` (a mixin: the stream owns the state it reads and extends)."""

    key: str | None
    records: int
    _base: int
    _max_depth: int
    _known: set[str]
    _order: list[str]
    _getters: list[attrgetter[Any]]

    def _rebuild(self) -> None:
        raise NotImplementedError

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
        self._learn(recs)
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

    def _learn(self, records: list[dict[str, Any]] | list[dict[str, msgspec.Raw]]) -> None:
        """Append fields not seen before to the column order (in first-seen order) and rebuild the decoders."""
        new = [k for k in dict.fromkeys(k for r in records for k in r) if k not in self._known]
        if new:
            self._known.update(new)
            self._order.extend(new)
            self._rebuild()

    def _decode_raw(self, view: memoryview) -> tuple[int, Columns]:
        """Decode without converting values: strings as strings, null as None, anything else as its JSON text."""
        try:
            raws: list[dict[str, msgspec.Raw]] = _RAW.decode(view)
        except _DECODE_ERRORS as exc:
            raise _BadRangeError(exc) from None
        except RecursionError:
            raise self._too_deep() from None
        self._learn(raws)
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
