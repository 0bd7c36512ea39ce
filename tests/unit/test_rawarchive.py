"""The raw archive: a gzip of exactly the downloaded bytes, written while they stream by."""

from __future__ import annotations

import gzip
import io

import pytest

from exportlake.convert.rawarchive import gzip_writer, tee


class KeepOpen(io.BytesIO):
    def close(self) -> None:  # the caller, not the gzip writer, decides when the sink closes
        raise AssertionError("gzip_writer must not close the sink")


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_tee_gzips_the_exact_bytes_and_yields_them_unchanged(threads):
    chunks = [b'{"k":[', bytes(range(256)) * 5000, b"", "é😀".encode(), b"]}"]
    sink = KeepOpen()
    raw = gzip_writer(sink, threads=threads)
    assert list(tee(chunks, raw)) == chunks
    raw.close()
    assert gzip.decompress(sink.getvalue()) == b"".join(chunks)


def test_tee_writes_to_every_writer():
    a, b = io.BytesIO(), io.BytesIO()
    assert b"".join(tee([b"ab", b"c"], a, b)) == b"abc"
    assert a.getvalue() == b.getvalue() == b"abc"
