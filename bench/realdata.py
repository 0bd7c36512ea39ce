"""Export documents shaped like real ones: a random id per record, as the gateway's exports have.

The sample data of ``exportlake.emulator.sampledata`` draws ids from small pools (2,000 users, 40 stacks), which makes
Parquet dictionaries and the raw gzip archive far cheaper than on real exports (63 MB of Parquet for 5M win_info
records, against ~150 MB with a random 25-character ``userid`` per record). The bench measures on this shape:

- ``win_info``: ``userid`` random per record, ``stackid`` one of 500, ``haswon`` "0"/"1",
  ``participation_date`` ``YYYY-MM-DD HH:MM:SS.fff`` spread over a year;
- written as ``json.dumps`` writes it by default (``", "`` and ``": "`` separators), the whole document on one
  line: about 145 bytes per record, 725 MB for 5M records.
"""

from __future__ import annotations

import json
import os
import random
import string
from collections.abc import Iterator
from pathlib import Path

_ALNUM = (string.ascii_lowercase + string.digits).encode()
#: os.urandom bytes → alphanumerics (256 = 7 x 36 + 4: the bias is negligible for a benchmark).
_TO_ALNUM = bytes(_ALNUM[b % len(_ALNUM)] for b in range(256))
STACKS = 500
KEYS = ("win_info",)


def _ids(rng: random.Random, n: int) -> list[str]:
    blob = rng.randbytes(25 * n).translate(_TO_ALNUM).decode()
    return [blob[i : i + 25] for i in range(0, 25 * n, 25)]


def iter_records_json(key: str, n: int, seed: int = 42, block: int = 10_000) -> Iterator[bytes]:
    """The document ``{"<key>": [...]}`` as ``json.dumps(doc)`` would write it, in blocks of records."""
    if key not in KEYS:
        raise ValueError(f"no realistic generator for {key!r}")
    rng = random.Random(seed)
    stacks = _ids(random.Random(seed + 1), STACKS)
    yield (json.dumps(key) + ": [").join(["{", ""]).encode()
    start = 1_767_225_600  # 2026-01-01 UTC
    done = 0
    while done < n:
        m = min(block, n - done)
        users = _ids(rng, m)
        parts = []
        for u in users:
            t = start + rng.randrange(365 * 86400)
            days, secs = divmod(t - start, 86400)
            month, day = divmod(days, 28)  # a valid calendar date is not the point; its text shape is
            rec = {
                "userid": u,
                "stackid": stacks[rng.randrange(STACKS)],
                "haswon": "1" if rng.random() < 0.3 else "0",
                "participation_date": (
                    f"2026-{month % 12 + 1:02d}-{day + 1:02d} {secs // 3600:02d}:{secs // 60 % 60:02d}:"
                    f"{secs % 60:02d}.{rng.randrange(1000):03d}"
                ),
            }
            parts.append(json.dumps(rec))
        text = ", ".join(parts)
        yield (text if done == 0 else ", " + text).encode()
        done += m
    yield b"]}"


def write_document(path: Path, key: str, n: int, seed: int = 42) -> Path:
    """Write the document to ``path`` (via a ``.part`` file, so an interrupted run leaves no half file)."""
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as f:
        for chunk in iter_records_json(key, n, seed):
            f.write(chunk)
    os.replace(tmp, path)
    return path
