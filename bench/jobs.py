"""The measured work, each run in its own child process by ``bench.run`` (which times it and reads its peak RSS).

Usage (the harness builds these command lines; the environment carries the settings):

    python -m bench.jobs exportlake <export_name> <result_id>
    python -m bench.jobs dlt <url> <key> <work_dir>

Each prints one JSON line on stdout: ``{"work_s": <seconds spent in the copy itself>, ...}``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any


def run_exportlake(export_name: str, result_id: str) -> dict[str, Any]:
    """The real copy path: ``bootstrap.copier`` from the environment, one ``copy`` of a fresh result.

    ``work_s`` is the copy call alone; ``start_s`` is building the copier (importing pyarrow, creating the boto3
    clients), which a Lambda container pays once, not per copy; the whole process's wall time includes both.
    """
    from exportlake import bootstrap
    from exportlake.domain.models import CopyJob
    from exportlake.domain.naming import now_utc
    from exportlake.domain.ports import NullMetrics

    started = time.perf_counter()
    copier = bootstrap.copier(NullMetrics())
    built = time.perf_counter()
    job = CopyJob(export_name=export_name, result_id=result_id, created_at=now_utc())
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


def main(argv: list[str]) -> int:
    """Dispatch to one job; print its JSON line."""
    tool, args = argv[0], argv[1:]
    if tool == "exportlake":
        result = run_exportlake(*args)
    elif tool == "dlt":
        result = run_dlt(*args)
    else:
        raise SystemExit(f"unknown job {tool!r}")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
