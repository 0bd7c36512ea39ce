"""Quick measurement (not a test): RecordStream + write_parquet over generated exports, records/s and peak RSS.

Usage: PYTHONPATH=functions .venv/bin/python bench/measure_convert.py [records] [win_info|gamification_prize_user_id]
"""

from __future__ import annotations

import os
import random
import resource
import string
import sys
import tempfile
import time
from collections.abc import Iterator

from exportlake.convert.parquet import write_parquet
from exportlake.convert.records import RecordStream

_ALNUM = string.ascii_lowercase + string.digits


def _date(rnd: random.Random) -> str:
    month, day, hour, minute, second = (rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23),
                                        rnd.randint(0, 59), rnd.randint(0, 59))  # fmt: skip
    return f"2024-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}.{rnd.randint(0, 999):03d}"


def generate(path: str, n: int, shape: str) -> None:
    """Write an export document of ``n`` records of ``shape`` to ``path``."""
    rnd = random.Random(7)
    pool = ["".join(rnd.choices(_ALNUM, k=25)) for _ in range(2000)]
    with open(path, "w", encoding="utf-8") as f:
        f.write(f'{{"{shape}":[')
        for i in range(n):
            if i:
                f.write(",")
            uid = "".join(rnd.choices(_ALNUM, k=25))
            if shape == "win_info":
                won = int(rnd.random() < 0.1)
                f.write(
                    f'{{"userid":"{uid}","stackid":"{rnd.choice(pool)}","haswon":"{won}",'
                    f'"participation_date":"{_date(rnd)}"}}'
                )
            else:
                claimed = f'"{_date(rnd)}"' if rnd.random() < 0.5 else "null"
                f.write(
                    f'{{"userid":"{uid}","game_id":"{rnd.choice(pool[:50])}","game_name":"Spin & Win '
                    f'{rnd.randint(1, 50)}","prizeid":"{rnd.choice(pool[:300])}","claimed_date":{claimed}}}'
                )
        f.write("]}")


def _chunks(path: str, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    shape = sys.argv[2] if len(sys.argv) > 2 else "win_info"
    background = "--no-background" not in sys.argv
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "export.json")
        generate(src, n, shape)
        size = os.path.getsize(src)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu0, t0 = _cpu(), time.perf_counter()
        stream = RecordStream(_chunks(src))
        parts = write_parquet(
            stream.batches(),
            lambda i: open(os.path.join(tmp, f"part-{i}.parquet"), "wb"),  # noqa: SIM115
            background=background,
        )
        dt, cpu = time.perf_counter() - t0, _cpu() - cpu0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = sum(p.bytes for p in parts)
        print(
            f"{shape}: {stream.records:,} records, {size / 1e6:.0f} MB JSON -> {out / 1e6:.1f} MB Parquet "
            f"in {dt:.2f} s: {stream.records / dt:,.0f} records/s, {size / dt / 1e6:.0f} MB/s; "
            f"CPU {cpu:.2f} s; peak RSS {peak / 1024:.0f} MB (before converting {rss_before / 1024:.0f} MB)"
            f"{'' if background else ' [no background writer]'}"
        )


if __name__ == "__main__":
    main()
