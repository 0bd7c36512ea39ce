"""The copier's allocator setting: one glibc malloc arena for all threads (checked in a fresh interpreter)."""

from __future__ import annotations

import platform
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")

_THREADS = """
import ctypes, sys, threading
from exportlake.bootstrap import one_malloc_arena
if sys.argv[1] == "one":
    assert one_malloc_arena() is True
barrier = threading.Barrier(4)
def work():
    barrier.wait()  # all four allocate at once: glibc would give each its own arena
    blocks = [bytearray(20_000) for _ in range(200)]  # below the mmap threshold: from an arena
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()  # one "Arena N:" section per arena, on stderr
"""


def _arenas(mode: str) -> int:
    cmd = [sys.executable, "-c", _THREADS, mode]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)  # noqa: S603 - our own code
    return len(re.findall(r"^Arena \d+:", out.stderr, re.MULTILINE))


@pytest.mark.slow  # a subprocess
def test_threads_share_one_arena_once_set():
    assert _arenas("default") > 1  # the setting is what makes the difference
    assert _arenas("one") == 1
