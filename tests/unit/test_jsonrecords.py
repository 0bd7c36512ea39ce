"""RecordStream against json.loads: every valid document converts row by row, every invalid one is refused."""

from __future__ import annotations

import hashlib
import json
import random
import time
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exportlake.convert.records import DEFAULT_BATCH_BYTES, DocumentTruncated, RecordStream
from exportlake.domain.errors import DocumentError
from tests.helpers import property_examples

#: What an invalid document raises: DocumentError, or DocumentTruncated (transient) when the input ends early.
REFUSED = (DocumentError, DocumentTruncated)

SETTINGS = settings(max_examples=property_examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- generation ------------------------------------------------------------------------------------------------------

_TRICKY = ["}", "]", "{", "[", ",", ":", '"', "\\", "é", "😀", "\n", "\x00", "\u2028", "},{", '"}]', "\\u00e9"]
_text = st.lists(st.one_of(st.characters(codec="utf-8"), st.sampled_from(_TRICKY)), max_size=8).map("".join)
_field = st.one_of(st.sampled_from(["userid", "haswon", "a", "é", "}", '"', "\\", "", "x y"]), _text)
_scalar = st.one_of(
    _text,
    _text,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
)
_value = st.one_of(
    _scalar,
    _scalar,
    _scalar,
    st.recursive(_scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(_text, c, max_size=3), max_leaves=5),
)
_record = st.dictionaries(_field, _value, max_size=5)
_document = st.tuples(_text, st.lists(_record, max_size=12))

_WHITESPACE = ["", "", "", " ", "\n", "\t", "\r\n", "  \n\t "]


def _dump(value: Any, rnd: random.Random) -> str:
    """JSON text with random whitespace between tokens and random escaping of non-ASCII."""

    def ws() -> str:
        return rnd.choice(_WHITESPACE)

    if isinstance(value, dict):
        items = [f"{ws()}{_dump(k, rnd)}{ws()}:{ws()}{_dump(v, rnd)}{ws()}" for k, v in value.items()]
        return "{" + ",".join(items) + ws() + "}" if not items else "{" + ",".join(items) + "}"
    if isinstance(value, list):
        items = [f"{ws()}{_dump(v, rnd)}{ws()}" for v in value]
        return "[" + ",".join(items) + "]" if items else "[" + ws() + "]"
    return json.dumps(value, ensure_ascii=rnd.random() < 0.3)


def _document_bytes(key: str, records: list[dict[str, Any]], rnd: random.Random) -> bytes:
    pad = "".join(rnd.choice(_WHITESPACE) for _ in range(3))
    return (pad + _dump({key: records}, rnd) + pad).encode()


def _split(data: bytes, rnd: random.Random) -> list[bytes]:
    """Chunks of random sizes (1 byte up to the whole document), so cuts fall inside characters and escapes."""
    chunks, i = [], 0
    while i < len(data):
        n = rnd.choice([1, 2, 3, 7, 64, 4096, len(data)])
        chunks.append(data[i : i + n])
        i += n
        if rnd.random() < 0.1:
            chunks.append(b"")
    return chunks


# -- oracle ----------------------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> None:
    raise ValueError(f"not strict JSON: {name}")


def _oracle(data: bytes) -> tuple[str, list[dict[str, Any]]] | None:
    """json.loads' view of the document (strict: no NaN/Infinity), or None if it is invalid or of the wrong shape."""
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant, parse_float=_float)
    except ValueError:
        return None
    if not isinstance(doc, dict) or len(doc) != 1:
        return None
    ((key, records),) = doc.items()
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return None
    if not _unicode(doc):  # json.loads keeps lone surrogate escapes ("\ud800"); UTF-8 (Arrow, Parquet) cannot
        return None
    return key, records


def _float(text: str) -> float:
    """A JSON number as json.loads reads it; one that overflows a double ("1e999") is valid JSON, kept by the
    converter as its exact text (``test_a_number_python_cannot_hold_is_kept_as_its_text``), and compares here as
    the infinity json.loads makes of both. Only the NaN/Infinity constants, which are not JSON, are refused."""
    return float(text)


def _unicode(value: Any) -> bool:
    """True if every string in ``value`` (keys included) is valid Unicode, i.e. encodes to UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_unicode(k) and _unicode(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_unicode(v) for v in value)
    return True


def _same(a: Any, b: Any) -> bool:
    """Equal with types (json.loads('1') == True in Python, so plain == is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _convert(
    chunks: list[bytes], batch_bytes: int, columns: tuple[str, ...], fast_batch_bytes: int | None = None
) -> tuple[RecordStream, list[dict]]:
    stream = RecordStream(chunks, batch_bytes=batch_bytes, fast_batch_bytes=fast_batch_bytes)
    rows: list[dict[str, str | None]] = []
    for batch in stream.batches(columns):
        assert batch.num_rows > 0
        names = batch.schema.names
        assert names == stream.fields[: len(names)]  # a running order: a later batch only adds fields at the end
        assert all(str(f.type) == "string" for f in batch.schema)
        data = batch.to_pydict()
        rows.extend({n: data[n][i] for n in names} for i in range(batch.num_rows))
    return stream, rows


def _check(
    data: bytes,
    chunks: list[bytes],
    batch_bytes: int,
    columns: tuple[str, ...] = (),
    fast_batch_bytes: int | None = None,
) -> RecordStream | None:
    """Convert and compare with the oracle: same rows, in order, with the same values; or DocumentError."""
    expected = _oracle(data)
    if expected is None:
        with pytest.raises(REFUSED):
            _convert(chunks, batch_bytes, columns, fast_batch_bytes)
        return None
    key, records = expected
    stream, rows = _convert(chunks, batch_bytes, columns, fast_batch_bytes)
    order = list(dict.fromkeys([*columns, *(k for r in records for k in r)]))
    assert stream.key == key
    assert stream.fields == order
    assert stream.records == len(records) == len(rows)
    assert stream.bytes_read == len(data)
    assert stream.sha256 == hashlib.sha256(data).hexdigest()
    for n, (record, row) in enumerate(zip(records, rows, strict=True)):
        for field in order:
            want, got = record.get(field), row.get(field)
            if want is None or isinstance(want, str):
                assert got == want, (n, field)
            else:  # a non-string value arrives as its JSON text
                assert isinstance(got, str) and _same(json.loads(got), want), (n, field, got, want)
    return stream


# -- properties ------------------------------------------------------------------------------------------------------


@SETTINGS
@given(_document, st.randoms(use_true_random=False), st.sampled_from([1, 2, 7, 16, 64, 8 << 20]), st.booleans())
def test_valid_documents_convert_like_json_loads(doc, rnd, batch_bytes, with_columns):
    key, records = doc
    data = _document_bytes(key, records, rnd)
    columns = ("userid", "zz_absent") if with_columns else ()
    _check(data, _split(data, rnd), batch_bytes, columns)


# The fast path (``jsonrecords._Template``): documents as exports write them (json.dumps, default or compact
# separators), mostly plain string records, with the deviations that must take the strict path mixed in.
_FIELDS = ["userid", "stackid", "haswon", "participation_date"]
_plain = st.text(st.sampled_from(list("abcxyz0189 -:.}]{[,é😀\u2028")), max_size=12)
_deviant = st.one_of(_text, st.none(), st.integers(-5, 5), st.booleans(), st.just([]), st.just({"a": "b"}))


@st.composite
def _export_records(draw: st.DrawFn) -> list[dict[str, Any]]:
    records = []
    for _ in range(draw(st.integers(1, 40))):
        record = {f: draw(_plain) for f in _FIELDS}
        how = draw(st.sampled_from(["plain"] * 12 + ["value", "missing", "extra", "reordered"]))
        if how == "value":
            record[draw(st.sampled_from(_FIELDS))] = draw(_deviant)
        elif how == "missing":
            del record[draw(st.sampled_from(_FIELDS))]
        elif how == "extra":
            record[draw(_field)] = draw(_plain)
        elif how == "reordered":
            record = dict(reversed(record.items()))
        records.append(record)
    return records


_BYTE_FAULTS = [b"\x01", b"\x1f", b"\x7f", b"\xff", b"\xc3", b"\xed\xa0\x80", b'"', b"\\", b"}", b"\n", b" "]


@SETTINGS
@given(
    _export_records(),
    st.booleans(),
    st.booleans(),
    st.integers(-1, 400),
    st.sampled_from(_BYTE_FAULTS),
    st.randoms(use_true_random=False),
    st.sampled_from([1, 64, 256, 8 << 20]),
)
def test_export_shaped_documents_take_the_fast_path_exactly(records, compact, ascii_only, at, fault, rnd, size):
    separators = (",", ":") if compact else (", ", ": ")
    data = json.dumps({"win_info": records}, separators=separators, ensure_ascii=ascii_only).encode()
    if at >= 0:  # one byte replaced or inserted somewhere: valid or not, the oracle decides
        at = at % len(data)
        data = data[:at] + fault + data[at + (rnd.random() < 0.5) :]
    stream = _check(data, _split(data, rnd), size, fast_batch_bytes=size)
    if (
        stream is not None
        and at < 0
        and ascii_only
        and all(list(r) == _FIELDS and all(type(v) is str for v in r.values()) for r in records)
        and len(records) > 1
    ):
        assert stream.fast_ranges > 0  # undamaged plain records: most ranges take the fast path


_fixed_char = st.sampled_from(list("ab09 -:.}]{[,"))


@SETTINGS
@given(
    st.lists(st.integers(0, 6), min_size=4, max_size=4),
    st.integers(2, 80),
    st.randoms(use_true_random=False),
    st.integers(-1, 4000),
    st.sampled_from(_BYTE_FAULTS),
    st.booleans(),
    st.sampled_from([64, 300, 8 << 20]),
)
def test_fixed_width_records_take_the_lattice_exactly(widths, n, rnd, at, fault, compact, size):
    # Every value of a field has the same length (like ids and timestamps): the lattice path; one record may differ.
    def value(width: int) -> str:
        return "".join(rnd.choice("ab09 -:.}]{[,") for _ in range(width))

    records = [{f: value(w) for f, w in zip(_FIELDS, widths, strict=True)} for _ in range(n)]
    if rnd.random() < 0.3:
        records[rnd.randrange(n)][rnd.choice(_FIELDS)] = value(rnd.randrange(8))
    separators = (",", ":") if compact else (", ", ": ")
    data = json.dumps({"win_info": records}, separators=separators).encode()
    if at >= 0:
        at = at % len(data)
        data = data[:at] + fault + data[at + (rnd.random() < 0.5) :]
    stream = _check(data, _split(data, rnd), size, fast_batch_bytes=size)
    if stream is not None and at < 0 and n > 10 and size == 64:
        assert stream.fast_ranges > 0


def test_fast_path_output_equals_the_msgspec_path():
    rnd = random.Random(7)
    records = [
        {f: "".join(rnd.choice("abc é😀}{,:") for _ in range(rnd.randrange(30))) for f in _FIELDS} for _ in range(3000)
    ]
    data = json.dumps({"win_info": records}, ensure_ascii=False).encode()
    fast, rows = _convert([data], 4096, (), 4096)
    assert fast.fast_ranges > 10
    assert rows == records
    fixed = [{f: f"{i:09d}{f[:3]}é" for f in _FIELDS} for i in range(3000)]  # fixed byte widths: the lattice
    lattice, rows = _convert([json.dumps({"win_info": fixed}, ensure_ascii=False).encode()], 4096, (), 4096)
    assert lattice.fast_ranges > 10 and rows == fixed
    assert lattice._templates[0]._lattice.hits >= lattice.fast_ranges - 2  # after the first ranges: no quote search
    table = pa.Table.from_batches(list(RecordStream([data], fast_batch_bytes=4096).batches()))
    assert table.to_pylist() == records


_GARBAGE = [
    b"}",
    b"]",
    b"{",
    b"[",
    b",",
    b":",
    b'"',
    b"\\",
    b"x",
    b"1",
    b"\x00",
    b"\xff",
    b"\xc3",
    b" ",
    b"null",
    b"{}",
]


@SETTINGS
@given(_document, st.randoms(use_true_random=False), st.sampled_from([1, 5, 64, 8 << 20]), st.integers(0, 3))
def test_damaged_documents_are_refused_or_match_json_loads(doc, rnd, batch_bytes, how):
    key, records = doc
    data = _document_bytes(key, records, rnd)
    at = rnd.randrange(len(data))
    if how == 0:  # truncated (or whitespace-only loss: still valid, then it must convert)
        data = data[:at]
    elif how == 1:  # garbage injected
        data = data[:at] + rnd.choice(_GARBAGE) + data[at:]
    elif how == 2:  # a byte lost
        data = data[:at] + data[at + 1 :]
    else:  # a byte replaced
        data = data[:at] + rnd.choice(_GARBAGE)[:1] + data[at + 1 :]
    _check(data, _split(data, rnd), batch_bytes)


_WRONG_SHAPES = [
    "",
    "   ",
    "[]",
    "[{}]",
    "{}",
    '{"k": []} {}',
    '{"k": [], "j": []}',
    '{"k": {}}',
    '{"k": "x"}',
    '{"k": null}',
    '{"k": [1]}',
    '{"k": [{"a": "b"}, 2]}',
    '{"k": [{"a": "b"}, [1]]}',
    '{"k": [{"a": "b"}, null]}',
    '{"k": [{"a": "b"},]}',
    '{"k": [,{"a": "b"}]}',
    '{"k": [{"a": "b"}}',
    '{"k": [{"a": "b"}]',
    '{"k": [{"a": "b"}]]}',
    '{"k": [{"a": "b"} {"a": "c"}]}',
    '{"k": [{"a": NaN}]}',
    '{"k": [{"a": Infinity}]}',
    '{"k": [{"a": 01}]}',
    '{"k": [{"a": "\\x"}]}',
    '{"k": [{"a": "tab\there"}]}',
    '{"k": [{a: "b"}]}',
    "{'k': []}",
    '{"k" [] }',
    '{"k": [{"a": "b"}]}x',
    '{"k\\": []}',
]


@pytest.mark.parametrize("text", _WRONG_SHAPES)
@pytest.mark.parametrize("batch_bytes", [1, 3, 8 << 20])
def test_wrong_shapes_are_refused(text, batch_bytes):
    data = text.encode()
    assert _oracle(data) is None
    with pytest.raises(REFUSED):
        _convert([data[i : i + 2] for i in range(0, len(data), 2)] or [b""], batch_bytes, ())


# -- examples --------------------------------------------------------------------------------------------------------


def test_win_info_example_and_attributes():
    data = (
        b'{"win_info": [\n {"userid": "a", "stackid": "s", "haswon": "1", "participation_date": "2024-01-02 03:04:05"},'
        b'\n {"userid": "b", "haswon": 0, "extra": null}\n]}\n'
    )
    stream = RecordStream([data], batch_bytes=1)
    assert stream.key is None
    assert stream.start() == "win_info"
    batches = list(stream.batches(("userid", "stackid", "haswon", "participation_date")))
    assert stream.fields == ["userid", "stackid", "haswon", "participation_date", "extra"]
    rows = [row for b in batches for row in b.to_pylist()]
    assert rows == [
        {"userid": "a", "stackid": "s", "haswon": "1", "participation_date": "2024-01-02 03:04:05"},
        {"userid": "b", "stackid": None, "haswon": "0", "participation_date": None, "extra": None},
    ]
    assert stream.records == 2 and stream.bytes_read == len(data)


def test_values_keep_their_exact_text():
    data = '{"k":[{"a":"  lead","b":10000,"c":true,"d":1.50,"e":1e2,"f":[1, {"x": "é"}],"g":"😀\\u00e9\\""}]}'
    stream = RecordStream([data.encode()])
    (row,) = next(stream.batches()).to_pylist()
    assert row == {"a": "  lead", "b": "10000", "c": "true", "d": "1.50", "e": "1e2", "f": '[1,{"x":"é"}]', "g": '😀é"'}


def test_duplicate_keys_last_wins_like_json_loads():
    data = b'{"k":[{"a":"1","b":"x","a":"2"},{"a":3,"a":null}]}'
    stream = RecordStream([data], batch_bytes=1)
    rows = [r for b in stream.batches() for r in b.to_pylist()]
    assert rows == [{"a": "2", "b": "x"}, {"a": None, "b": None}]


def test_empty_array_has_a_key_and_no_batches():
    stream = RecordStream([b' { "win_info" : [ ] } '])
    assert list(stream.batches()) == []
    assert stream.key == "win_info" and stream.records == 0


def test_utf8_bom_is_accepted_like_json_loads_of_bytes():
    data = b'\xef\xbb\xbf{"k":[{"a":"b"}]}'
    assert json.loads(data) == {"k": [{"a": "b"}]}
    stream = RecordStream([data[:1], data[1:2], data[2:]])
    assert [r for b in stream.batches() for r in b.to_pylist()] == [{"a": "b"}]


def test_one_record_larger_than_many_batches_with_brackets_in_strings():
    huge = ('}"],{\\' * 200_000) + "é"
    records = [{"a": "x"}, {"a": huge, "b": {"n": [1, "}"]}}, {"a": "y"}]
    data = json.dumps({"k": records}).encode()
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    started = time.perf_counter()
    _, rows = _convert(chunks, 1024, ())
    assert time.perf_counter() - started < 10  # linear, not quadratic, in the record's size
    assert [r["a"] for r in rows] == ["x", huge, "y"]
    assert rows[1]["b"] == '{"n":[1,"}"]}'


def test_error_names_the_record_and_byte():
    data = b'{"k":[{"a":"1"},{"a":"2"},{"a":"3\x01"}]}'
    with pytest.raises(DocumentError, match=r"byte 33"):
        list(RecordStream([data], batch_bytes=1 << 20).batches())


def test_batches_are_cut_near_batch_bytes_and_keep_order():
    records = [{"i": str(i), "pad": "}" * (i % 7)} for i in range(5000)]
    data = json.dumps({"k": records}).encode()
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    stream = RecordStream(chunks, batch_bytes=4096, fast_batch_bytes=4096)
    batches = list(stream.batches())
    assert len(batches) > 20
    assert stream.fast_ranges >= len(batches) - 2  # plain string records: the template path, cut at its own "}"
    assert [r["i"] for b in batches for r in b.to_pylist()] == [str(i) for i in range(5000)]


def test_batches_can_be_iterated_once():
    stream = RecordStream([b'{"k":[]}'])
    list(stream.batches())
    with pytest.raises(RuntimeError):
        list(stream.batches())


def test_lone_surrogate_escape_is_refused_though_json_loads_keeps_it():
    data = b'{"k":[{"a":"\\ud800"}]}'
    assert json.loads(data) == {"k": [{"a": "\ud800"}]}  # not valid Unicode: no UTF-8 column can hold it
    with pytest.raises(DocumentError):
        list(RecordStream([data]).batches())


# -- hostile input: limits, huge numbers, truncation ------------------------------------------------------------------


def _rows(stream: RecordStream) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for batch in stream.batches():
        data = batch.to_pydict()
        rows.extend({n: data[n][i] for n in batch.schema.names} for i in range(batch.num_rows))
    return rows


@pytest.mark.parametrize("batch_bytes", [1, 64, 128 << 10])
def test_a_number_python_cannot_hold_is_kept_as_its_text(batch_bytes):
    data = b'{"k": [{"a": "x", "n": 1e400}, {"a": "y", "n": -1E+400}, {"a": "z", "n": 12}, {"a": null}]}'
    rows = _rows(RecordStream([data], batch_bytes=batch_bytes))
    assert rows == [
        {"a": "x", "n": "1e400"},
        {"a": "y", "n": "-1E+400"},
        {"a": "z", "n": "12"},
        {"a": None, "n": None},
    ]


def test_nesting_within_the_limit_is_kept_as_text_beyond_it_refused_for_good():
    ok = b'{"k": [{"a": ' + b"[" * 63 + b"]" * 63 + b"}]}"  # the record is level 1: 1 + 63 = 64
    assert _rows(RecordStream([ok])) == [{"a": "[" * 63 + "]" * 63}]
    deep = b'{"k": [{"a": ' + b"[" * 64 + b"]" * 64 + b"}]}"
    with pytest.raises(DocumentError, match="nests deeper than 64 levels"):
        list(RecordStream([deep]).batches())


@pytest.mark.parametrize("batch_bytes", [1, 128 << 10])
def test_a_million_levels_deep_record_is_a_document_error_not_a_recursion_error(batch_bytes):
    n = 1_000_000
    data = b'{"k": [{"a": "b"}, {"a": ' + b"[" * n + b"]" * n + b"}]}"
    stream = RecordStream([data[i : i + (1 << 20)] for i in range(0, len(data), 1 << 20)], batch_bytes=batch_bytes)
    with pytest.raises(DocumentError, match="nests deeper"):
        list(stream.batches())


def test_a_record_above_the_size_limit_is_refused_after_bounded_reading():
    limit = 1 << 20
    served = 0

    def endless_nesting():  # a hostile 500 MB record that never closes; count what the stream pulls
        nonlocal served
        yield b'{"k": [{"a": "b"}, {"a": '
        for _ in range(500):
            served += 1 << 20
            yield b"[" * (1 << 20)

    stream = RecordStream(endless_nesting(), max_record_bytes=limit, max_depth=10**9)
    with pytest.raises(DocumentError, match="larger than 1,048,576 bytes"):
        list(stream.batches())
    assert served <= limit + DEFAULT_BATCH_BYTES + 2 * (1 << 20)  # stopped right after the limit, not at 500 MB


def test_a_long_string_record_above_the_size_limit_is_refused():
    data = b'{"k": [{"a": "' + b"x" * (3 << 20) + b'"}]}'
    with pytest.raises(DocumentError, match="larger than"):
        chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
        list(RecordStream(chunks, max_record_bytes=1 << 20).batches())


@pytest.mark.parametrize(
    "cut",
    [b'{"k": [{"a": "b"}, {"a": "c', b'{"k": [{"a": "b"}, ', b'{"k": [{"a": "b"}]', b'{"k": [{"a": "b"}', b'{"k": '],
)
def test_input_that_ends_early_is_transient(cut):
    from exportlake.domain.errors import TransientError

    with pytest.raises(DocumentTruncated) as info:
        list(RecordStream([cut]).batches())
    assert isinstance(info.value, TransientError) and not isinstance(info.value, DocumentError)
