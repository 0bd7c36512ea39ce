"""The measured work, each run in its own child process by ``bench.run`` (which times it and reads its peak RSS).

Usage (the harness builds these command lines; the environment carries the settings):

    python -m bench.jobs exportlake <export_name> <result_id>
    python -m bench.jobs dlt <url> <key> <work_dir>
    python -m bench.jobs profile <export_name> <result_id>
    python -m bench.jobs plan

Each prints one JSON line on stdout: ``{"work_s": <seconds spent in the copy itself>, ...}``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any


def run_exportlake(export_name: str, result_id: str) -> dict[str, Any]:
    """The real copy path: ``bootstrap.build_copy_service`` from the environment, one ``copy`` of a fresh result.

    ``work_s`` is the copy call alone; ``start_s`` is building the copier (importing pyarrow, creating the boto3
    clients), which a Lambda container pays once, not per copy; the whole process's wall time includes both.
    """
    from datetime import UTC, datetime

    from exportlake import bootstrap
    from exportlake.domain.models import CopyJob
    from exportlake.domain.ports import NullMetrics

    started = time.perf_counter()
    copier = bootstrap.build_copy_service(NullMetrics())
    built = time.perf_counter()
    job = CopyJob(
        export_name=export_name, result_id=result_id, created_at=datetime.now(UTC)
    )  # the baseline may predate domain.timefmt
    outcome = copier.copy(job)
    done = time.perf_counter()
    if outcome is None:
        raise RuntimeError(f"result {result_id} was already copied")
    return {
        "work_s": done - built,
        "start_s": built - started,
        "rows": outcome.rows,
        "manifest_key": outcome.manifest_key,
        "table": outcome.table,
    }


def run_dlt(url: str, key: str, work_dir: str) -> dict[str, Any]:
    """What a dlt user would write: a resource streaming the records with ijson, filesystem destination, Parquet."""
    import dlt
    import ijson
    import requests

    backend = ijson.get_backend("yajl2_c")
    started = time.perf_counter()

    @dlt.resource(name=key, write_disposition="append")
    def records() -> Iterator[Any]:
        with requests.get(url, stream=True, timeout=(10, 60)) as resp:
            resp.raise_for_status()
            resp.raw.decode_content = True
            yield from backend.items(resp.raw, f"{key}.item")

    pipeline = dlt.pipeline(
        pipeline_name="bench_dlt",
        pipelines_dir=f"{work_dir}/pipelines",
        destination=dlt.destinations.filesystem(bucket_url=f"file://{work_dir}/lake"),
        dataset_name="bench",
    )
    pipeline.run(records(), loader_file_format="parquet")
    return {"work_s": time.perf_counter() - started}


#: The fast path's functions in a baseline from before the re-cut (then in jsonrecords.py, now in fastpath.py).
_FAST_BEFORE = ("_take", "_segments", "segments", "_quote_positions", "columns")
#: Stage of a profiled function: the first entry whose substrings all occur in its cProfile name.
_STAGES = (
    ("msgspec decode (JSON -> Structs)", ("'decode' of 'msgspec",)),
    # convert/records.py, strict.py and fastpath.py; "records.py" also matches a baseline's jsonrecords.py.
    ("str lists -> Arrow (pa.array in batches)", ("records.py", "(batches)")),
    ("Structs -> str lists (_decode)", ("records.py", "(_decode)")),
    ("Structs -> str lists (_decode)", ("strict.py", "(_decode")),
    ("fast path: Arrow kernels (quotes, gathers)", ("fastpath.py",)),
    ("fast path: Arrow kernels (quotes, gathers)", ("call_function",)),
    *(("fast path: Arrow kernels (quotes, gathers)", ("jsonrecords.py", f"({f})")) for f in _FAST_BEFORE),
    ("cutting ranges (convert/records)", ("records.py",)),
    ("Parquet encode + zstd (write_table)", ("write_table",)),
    ("raw gzip (ISA-L compress + crc32)", ("isal",)),
    ("SHA-256 of the document", ("_hashlib.HASH",)),
    ("waiting: socket reads (download)", ("recv_into",)),
    ("waiting: locks (upload slots, threads)", ("acquire' of '_thread.lock",)),
    ("S3 sink buffer copies", ("s3sink.py",)),
    ("botocore / urllib3 (requests, signing)", ("botocore",)),
    ("botocore / urllib3 (requests, signing)", ("urllib3",)),
)


def _stage(name: str) -> str:
    return next((stage for stage, keys in _STAGES if all(k in name for k in keys)), "other")


def run_profile(export_name: str, result_id: str) -> dict[str, Any]:
    """One copy under cProfile (main thread), its functions grouped into stages; CPU of the process and thread.

    cProfile sees only the main thread (decode, Arrow, Parquet); gzip and the uploads run in other threads, whose
    share is the process CPU minus the main thread's. Profiling inflates Python-level costs, so read shares.
    """
    import cProfile
    import pstats
    from datetime import UTC, datetime

    from exportlake import bootstrap
    from exportlake.domain.models import CopyJob
    from exportlake.domain.ports import NullMetrics

    copier = bootstrap.build_copy_service(NullMetrics())
    job = CopyJob(
        export_name=export_name, result_id=result_id, created_at=datetime.now(UTC)
    )  # the baseline may predate domain.timefmt
    cpu0, thread0 = time.process_time(), time.thread_time()
    # The default (wall) clock: cProfile with time.thread_time as its timer gave nonsense on Python 3.12. Waiting
    # (socket reads, locks) is a stage of its own, so the other stages read as the main thread's work.
    prof = cProfile.Profile()
    prof.enable()
    outcome = copier.copy(job)
    prof.disable()
    process_cpu, thread_cpu = time.process_time() - cpu0, time.thread_time() - thread0
    stats = pstats.Stats(prof)
    totals: dict[str, float] = {}
    top: list[tuple[str, float]] = []
    for (filename, line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        label = f"{filename}:{line}({name})" if line else name
        top.append((label, tottime))
        stage = _stage(label)
        totals[stage] = totals.get(stage, 0.0) + tottime
    top.sort(key=lambda kv: kv[1], reverse=True)
    return {
        "records": outcome.rows if outcome else 0,
        "process_cpu_s": process_cpu,
        "main_thread_cpu_s": thread_cpu,
        "stages": sorted(totals.items(), key=lambda kv: kv[1], reverse=True),
        "top": [(name, secs) for name, secs in top[:15]],
    }


def run_plan() -> dict[str, Any]:
    """One planner run (the handler, as the local runner invokes it): its wall seconds and what it planned."""
    try:
        from exportlake.runner import run_planner
    except ImportError:  # a baseline from before the re-cut
        from exportlake.local.runner import run_planner  # type: ignore[no-redef]

    started = time.perf_counter()
    planned = run_planner()
    return {"planner_s": time.perf_counter() - started, "planned": planned}


def main(argv: list[str]) -> int:
    """Dispatch to one job; print its JSON line."""
    tool, args = argv[0], argv[1:]
    if tool == "exportlake":
        result = run_exportlake(*args)
    elif tool == "dlt":
        result = run_dlt(*args)
    elif tool == "profile":
        result = run_profile(*args)
    elif tool == "plan":
        result = run_plan()
    else:
        raise SystemExit(f"unknown job {tool!r}")
    print(json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
