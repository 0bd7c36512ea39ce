"""`exportlake query`: one SQL statement on DuckDB over the local lake, or on Athena with --athena."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from exportlake import bootstrap
from exportlake.cli.exitcodes import ExitCode
from exportlake.domain.errors import ConfigError, ExportlakeError


def lake_query() -> Any:
    """A DuckDB engine over the tables the Glue catalog describes (objects mirrored from S3), with the views."""
    from exportlake.query.lake import LakeQuery

    settings = bootstrap.settings()
    base = Path(os.environ.get("EXPORTLAKE_CACHE_DIR") or Path(tempfile.gettempdir()) / "exportlake-cache")
    lake = LakeQuery(bootstrap.client("glue"), bootstrap.client("s3"), settings.glue_database, base / settings.bucket)
    lake.refresh()
    return lake


def cmd_query(args: argparse.Namespace) -> ExitCode:
    """Run one SQL statement: DuckDB over the local lake, or Athena with ``--athena``."""
    from exportlake.cli.output import render

    limit = None if args.all else args.limit
    fmt = "json" if args.json else "csv" if args.csv else "table"
    if args.athena:
        from exportlake.query.athena import AthenaQuery, stack_outputs

        workgroup, database = args.workgroup, args.database
        if not (workgroup and database):
            outputs = stack_outputs(bootstrap.client("cloudformation"), args.stack_name)
            workgroup = workgroup or outputs.get("AthenaWorkGroup")
            database = database or outputs.get("GlueDatabase")
        if not (workgroup and database):
            raise ExportlakeError(f"stack {args.stack_name!r} has no AthenaWorkGroup/GlueDatabase outputs")
        result = AthenaQuery(bootstrap.client("athena"), workgroup, database).run(args.sql, limit)
        read = {
            "engine": "athena",
            "files": None,  # Athena reports bytes scanned, not files
            "bytes": result.bytes_scanned,
            "query_id": result.query_id,
            "workgroup": workgroup,
            "cost_usd": round(result.cost_usd, 6),
            "engine_ms": result.engine_ms,
        }
        notes = [
            f"athena {result.query_id} in {workgroup}: {result.bytes_scanned:,} bytes scanned (files: not reported "
            f"by Athena), ~${result.cost_usd:.6f}, {result.engine_ms} ms"
        ]
        render(result.columns, result.rows, fmt=fmt, title="athena", truncated=result.truncated, notes=notes, read=read)
        return ExitCode.OK
    import duckdb

    from exportlake.query.lake import describe_error

    lake = lake_query()
    try:
        columns, rows, truncated = lake.query_capped(args.sql, limit)
    except duckdb.Error as exc:
        raise ConfigError(f"query failed: {describe_error(exc)}") from None
    scan = lake.last_scan
    read = {"engine": "duckdb", "files": scan.files, "bytes": scan.bytes}
    notes = [f"read {_count(scan.files, 'file')}, {scan.bytes:,} bytes (local DuckDB over the mirrored lake)"]
    render(columns, rows, fmt=fmt, title="query", truncated=truncated, notes=notes, read=read)
    return ExitCode.OK


def _count(n: int | None, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}" if n is not None else f"? {what}s"
