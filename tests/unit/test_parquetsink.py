"""write_parquet: exact round trip, one schema per part, no batches no parts, failures abort the open part."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exportlake.convert.parquet import PartInfo, write_parquet
from exportlake.convert.records import RecordStream


class Sink(io.BytesIO):
    """An in-memory part that remembers whether it was closed (completed) or aborted."""

    def __init__(self) -> None:
        super().__init__()
        self.data = b""
        self.aborted = False

    def close(self) -> None:
        if not self.closed:
            self.data = self.getvalue()
        super().close()

    def abort(self) -> None:
        self.aborted = True
        super().close()


def _opener(store: dict[int, Sink]):
    def open_part(index: int) -> Sink:
        store[index] = Sink()
        return store[index]

    return open_part


def _batch(**cols: list[str | None]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(v, pa.string()) for v in cols.values()], names=list(cols))


def test_round_trip_is_exact_and_row_groups_are_bounded():
    values = ["  lead", "é😀", "", None, '"}],', "x" * 1000]
    batches = [_batch(a=values * 50, b=[str(i) for i in range(300)]) for _ in range(7)]
    store: dict[int, Sink] = {}
    parts = write_parquet(batches, _opener(store), row_group_rows=1000)
    assert parts == [PartInfo(0, 2100, len(store[0].data), ("a", "b"))]
    meta = pq.ParquetFile(io.BytesIO(store[0].data)).metadata
    assert meta.num_row_groups == 3 and meta.row_group(0).num_rows == 1000  # gathered across batches
    table = pq.read_table(io.BytesIO(store[0].data))
    assert table.to_pylist() == pa.Table.from_batches(batches).to_pylist()
    assert table.schema.field("a").type == pa.string()


def test_a_new_field_starts_a_new_part():
    store: dict[int, Sink] = {}
    batches = [_batch(a=["1"]), _batch(a=["2"]), _batch(a=["3"], b=["x"]), _batch(a=[None], b=[None])]
    parts = write_parquet(batches, _opener(store))
    assert [(p.index, p.rows, p.columns) for p in parts] == [(0, 2, ("a",)), (1, 2, ("a", "b"))]
    assert pq.read_table(io.BytesIO(store[0].data)).to_pylist() == [{"a": "1"}, {"a": "2"}]
    assert pq.read_table(io.BytesIO(store[1].data)).to_pylist() == [{"a": "3", "b": "x"}, {"a": None, "b": None}]
    assert all(s.closed and not s.aborted for s in store.values())


def test_no_batches_no_parts():
    store: dict[int, Sink] = {}
    assert write_parquet([], _opener(store)) == []
    assert write_parquet(RecordStream([b'{"k": []}']).batches(), _opener(store)) == []
    assert store == {}


def test_failure_aborts_the_open_part_and_propagates():
    store: dict[int, Sink] = {}

    def batches():
        yield _batch(a=["1"])
        yield _batch(a=["2"], b=["x"])
        raise RuntimeError("download broke")

    with pytest.raises(RuntimeError, match="download broke"):
        write_parquet(batches(), _opener(store))
    assert store[0].data and not store[0].aborted  # finished before the failure: stays written
    assert store[1].aborted and not store[1].data


def test_failure_of_the_sink_aborts_it():
    class Broken(Sink):
        def write(self, data):  # type: ignore[override]
            raise OSError("disk full")

    sinks: list[Broken] = []

    def open_part(index: int) -> Broken:
        sinks.append(Broken())
        return sinks[-1]

    with pytest.raises(OSError, match="disk full"):
        write_parquet([_batch(a=["1"])], open_part)
    assert sinks[0].aborted


def test_stream_to_parquet_end_to_end():
    data = b'{"k":[{"a":"1","n":5},{"b":null},{"a":"\\u00e9"}]}'
    store: dict[int, Sink] = {}
    parts = write_parquet(RecordStream([data], batch_bytes=1).batches(("a",)), _opener(store))
    rows = [r for i in range(len(parts)) for r in pq.read_table(io.BytesIO(store[i].data)).to_pylist()]
    assert rows == [{"a": "1", "n": "5"}, {"a": None, "n": None, "b": None}, {"a": "é", "n": None, "b": None}]


def test_dictionary_only_where_it_pays():
    import random

    rnd = random.Random(1)
    n = 20_000
    unique = ["".join(rnd.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=25)) for _ in range(n)]
    stacks = [f"stack{rnd.randrange(500):03d}" for _ in range(n)]
    store: dict[int, Sink] = {}
    write_parquet([_batch(userid=unique, stackid=stacks)], _opener(store), row_group_rows=n)
    f = pq.ParquetFile(io.BytesIO(store[0].data))
    user, stack = f.metadata.row_group(0).column(0), f.metadata.row_group(0).column(1)
    assert f.read().to_pydict() == {"userid": unique, "stackid": stacks}
    # The stack id keeps its dictionary: about a byte per row, far below its plain size (4 + 8 bytes per row).
    assert stack.has_dictionary_page and stack.total_uncompressed_size < 3 * n
    # The unique id gives its dictionary up early: smaller than with Arrow's 1 MiB dictionary pages.
    store_default: dict[int, Sink] = {}
    write_parquet(
        [_batch(userid=unique, stackid=stacks)],
        _opener(store_default),
        row_group_rows=n,
        dictionary_pagesize_limit=1 << 20,
    )
    default_user = pq.ParquetFile(io.BytesIO(store_default[0].data)).metadata.row_group(0).column(0)
    assert user.total_uncompressed_size < default_user.total_uncompressed_size
