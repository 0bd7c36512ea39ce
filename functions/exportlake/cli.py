"""The ``exportlake`` command: run the pipeline locally, inspect it, query the lake."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from exportlake import bootstrap
from exportlake.domain.errors import ExportlakeError
from exportlake.domain.models import ResultState
from exportlake.fastexit import exit_now

# A joined query for the demo: Athena SQL that DuckDB runs as is.
WIN_RATE_SQL = """
SELECT g.game_type,
       count(*) AS participations,
       sum(CASE WHEN w.haswon = '1' THEN 1 ELSE 0 END) AS wins,
       round(100.0 * sum(CASE WHEN w.haswon = '1' THEN 1 ELSE 0 END) / count(*), 1) AS win_rate_pct
FROM win_info w
JOIN (SELECT DISTINCT stackid, game_type FROM player_info_game_type) g ON g.stackid = w.stackid
GROUP BY g.game_type
ORDER BY win_rate_pct DESC, g.game_type
""".strip()


def _console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 140)


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(str(c))
    for row in rows:
        table.add_row(*("∅" if v is None else str(v) for v in row))
    return table


def _quiet_powertools(verbose: bool) -> None:
    # The handlers log JSON and print EMF metrics for CloudWatch; on a terminal that is noise.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO" if verbose else "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "false" if verbose else "true")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


def cmd_provision(args: argparse.Namespace) -> int:
    """Create every resource on the configured endpoint (idempotent)."""
    from exportlake.local.aws import provision

    made = provision(bootstrap.settings(), bootstrap.client)
    _console().print(f"provisioned: queue {made.queue_url}, topic {made.topic_arn}")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    """Plan and copy until nothing is left; non-zero if a result failed for good."""
    from exportlake.local.runner import sync

    report = sync(retry_failed=args.retry_failed)
    console = _console()
    planned = report.planned
    console.print(
        f"planned {planned.get('exports', 0)} exports: {planned.get('enqueued', 0)} new results, "
        f"{planned.get('expired', 0)} expired; {len(report.copied)} copied in {report.invocations} copier "
        f"invocations ({report.retried} retried)"
    )
    if report.planner_error:
        console.print(f"[red]planner: {report.planner_error}[/red]")
    for export_name, result_id, error in report.failed:
        console.print(f"[red]failed: {export_name} {result_id}: {error}[/red]")
    return 0 if report.ok else 1


def _parse(ts: str) -> datetime | None:
    try:
        return datetime.fromisoformat(ts) if ts else None
    except ValueError:
        return None


def _short(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")


def status_rows() -> list[tuple[Any, ...]]:
    """Per export: newest result on the gateway, newest copied, lag, rows copied and state counts."""
    exports = bootstrap.gateway().list_exports()
    entries = bootstrap.ledger().all_entries()
    rows: list[tuple[Any, ...]] = []
    for export in sorted(exports, key=lambda e: e.system_name):
        mine = [e for e in entries if e.export_name == export.system_name]
        copied = [e for e in mine if e.state == ResultState.COPIED]
        newest_copied = max((d for d in (_parse(e.created_at) for e in copied) if d), default=None)
        newest = export.last_run.created_at if export.last_run else None
        if newest is None:
            lag = "-"
        elif newest_copied is None:
            lag = f"{(datetime.now(UTC) - newest).total_seconds() / 3600:.1f} h (nothing copied)"
        else:
            lag = (
                "up to date" if newest_copied >= newest else f"{(newest - newest_copied).total_seconds() / 3600:.1f} h"
            )
        counts = {s.value: sum(1 for e in mine if e.state == s) for s in ResultState}
        rows.append(
            (
                export.system_name,
                _short(newest) if newest else "never ran",
                _short(newest_copied) if newest_copied else "-",
                lag,
                sum(e.rows for e in copied),
                ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "-",
            )
        )
    return rows


def cmd_status(args: argparse.Namespace) -> int:
    """Print the status table."""
    rows = status_rows()
    if args.json:
        print(json.dumps([dict(zip(STATUS_COLUMNS, r, strict=True)) for r in rows], indent=1))
    else:
        _console().print(_table("exportlake status", STATUS_COLUMNS, rows))
    return 0


STATUS_COLUMNS = ("export", "newest on gateway", "newest copied", "lag", "rows copied", "ledger")


def lake_query() -> Any:
    """A DuckDB engine over the tables the Glue catalog describes (objects mirrored from S3)."""
    from exportlake.adapters.lakequery import LakeQuery

    settings = bootstrap.settings()
    base = Path(os.environ.get("EXPORTLAKE_CACHE_DIR") or Path(tempfile.gettempdir()) / "exportlake-cache")
    lake = LakeQuery(bootstrap.client("glue"), bootstrap.client("s3"), settings.glue_database, base / settings.bucket)
    lake.refresh()
    return lake


def cmd_query(args: argparse.Namespace) -> int:
    """Run one SQL statement with DuckDB over the lake."""
    columns, rows = lake_query().query(args.sql)
    if args.json:
        print(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str, indent=1))
    else:
        _console().print(_table("query", columns, rows))
    return 0


def row_counts(lake: Any) -> list[tuple[str, int]]:
    """Rows per table of the lake."""
    _, tables = lake.query(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW' ORDER BY table_name"
    )
    return [(t, int(lake.query(f'SELECT count(*) FROM "{t}"')[1][0][0])) for (t,) in tables]


def cmd_demo(args: argparse.Namespace) -> int:
    """Start moto and the simulator, provision, sync, and show the data."""
    from exportlake.local.aws import LOCAL_ACCOUNT, LOCAL_REGION, MotoServer, demo_env, provision
    from exportlake.local.simulator import GatewaySimulator

    console = _console()
    with MotoServer() as moto, GatewaySimulator(seed=args.seed) as sim:
        env = demo_env(moto.endpoint, sim.url, LOCAL_REGION, LOCAL_ACCOUNT)
        os.environ.update(env)
        bootstrap.reset()
        console.print(f"moto server on {moto.endpoint}, gateway simulator on {sim.url}")
        bootstrap.client("secretsmanager").create_secret(
            Name=env["EXPORTLAKE_SECRET_ID"],
            SecretString=json.dumps({"client_id": sim.client_id, "client_secret": sim.client_secret}),
        )
        provision(bootstrap.settings(), bootstrap.client)
        code = cmd_sync(args)
        lake = lake_query()
        console.print(_table("rows per table", ("table", "rows"), row_counts(lake)))
        columns, rows = lake.query(WIN_RATE_SQL)
        console.print(_table("win rate per game type (win_info ⋈ player_info_game_type)", columns, rows))
        console.print(_table("exportlake status", STATUS_COLUMNS, status_rows()))
        console.print("[dim]a second sync copies nothing new:[/dim]")
        code = code or cmd_sync(args)
    return code


def cmd_simulator(args: argparse.Namespace) -> int:
    """Run the gateway simulator alone."""
    from exportlake.local import simulator

    return int(simulator.main(args.rest) or 0)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="exportlake", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="show the handlers' JSON logs and metrics")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the whole pipeline locally (moto + simulator) and show the data")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo, retry_failed=False)
    sub.add_parser("provision", help="create the AWS resources on the configured endpoint").set_defaults(
        func=cmd_provision
    )
    sync = sub.add_parser("sync", help="plan, then run every copy job to completion")
    sync.add_argument("--retry-failed", action="store_true", help="queue results that failed for good again")
    sync.set_defaults(func=cmd_sync)
    status = sub.add_parser("status", help="per export: newest result, newest copied, lag, rows")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    query = sub.add_parser("query", help="run SQL with DuckDB over the tables in the Glue catalog")
    query.add_argument("sql")
    query.add_argument("--json", action="store_true")
    query.set_defaults(func=cmd_query)
    simulator = sub.add_parser("simulator", help="run the gateway simulator alone", add_help=False)
    simulator.add_argument("rest", nargs=argparse.REMAINDER)
    simulator.set_defaults(func=cmd_simulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``exportlake`` command."""
    args = build_parser().parse_args(argv)
    _quiet_powertools(args.verbose)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return exit_now(int(args.func(args)), argv)  # the console script skips interpreter finalization
    except ExportlakeError as exc:
        print(f"exportlake: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
