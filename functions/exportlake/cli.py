"""The ``exportlake`` command: run the pipeline locally, check and inspect a deployment, query the lake.

Every error is one line naming the cause and the fix (exit 2: usage or configuration; 1: a failed run); ``-v``
shows the traceback. Options work before or after the sub-command.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from exportlake import bootstrap
from exportlake.domain.errors import ConfigError, ExportlakeError
from exportlake.domain.models import ResultState
from exportlake.fastexit import exit_now, resume_gc

# The demo's answers: saved queries as deployed (on the typed views), run locally. The first is the win rate.
DEMO_QUERIES = ("WinRatePerGameType", "PrizeDistribution", "ChallengeCompletionPerGameType", "CouponsPerDay")


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
    # Without -v even their errors stay quiet: the summary names every failure in one line.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO" if verbose else "CRITICAL")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "false" if verbose else "true")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


def cmd_provision(args: argparse.Namespace) -> int:
    """Create every resource on the configured endpoint (idempotent)."""
    from exportlake.local.aws import provision, refuse_real_aws

    refuse_real_aws(os.environ, real_aws=args.real_aws)
    made = provision(bootstrap.settings(), bootstrap.client)
    _console().print(f"provisioned: queue {made.queue_url}, topic {made.topic_arn}")
    return 0


def _preflight(links: tuple[str, ...] = ("settings", "aws", "secret", "resources")) -> None:
    """The links a command needs before it starts, so a missing one is one line with its fix, not a traceback."""
    from exportlake.local import doctor

    for check in doctor.run(bootstrap.client, only=links):
        if not check.ok:
            raise ConfigError(f"{check.name}: {check.detail}" + (f"; fix: {check.fix}" if check.fix else ""))


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--since {value!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _open_failures(exports: frozenset[str] | None) -> list[Any]:
    """Ledger entries left failed that can still be copied (not expired), in the selected exports."""
    now = datetime.now(UTC)
    out = []
    for entry in bootstrap.ledger().all_entries():
        if entry.state != ResultState.FAILED or (exports is not None and entry.export_name not in exports):
            continue
        expires = _parse(entry.expires_at)
        if expires is None or expires > now:
            out.append(entry)
    return out


#: ``sync``'s exit status when only results held by another live copier are left (see ``local.runner``).
EXIT_HELD = 3


def cmd_sync(args: argparse.Namespace) -> int:
    """Plan and copy until nothing is left; non-zero if a result failed or is left failed."""
    from exportlake.local import progress
    from exportlake.local.runner import sync

    _preflight()
    exports = frozenset(args.export) if getattr(args, "export", None) else None
    since = _since(getattr(args, "since", None))
    dry_run = bool(getattr(args, "dry_run", False))
    as_json = bool(getattr(args, "json", False))
    ledger = bootstrap.ledger()
    live = sys.stdout.isatty() and not as_json and not dry_run
    with (
        progress.SyncProgress(live, ledger.get) as bar,
        bootstrap.copy_progress(bar.copying if live else None),
    ):
        report = sync(
            retry_failed=args.retry_failed,
            only_exports=exports,
            since=since,
            dry_run=dry_run,
            on_planned=bar.planned,
            on_batch=bar.batch,
        )
    data = progress.summary(
        report,
        only_exports=sorted(exports or ()),
        since=since.isoformat() if since else "",
        dry_run=dry_run,
        ledger_failed=[] if dry_run else _open_failures(exports),
    )
    if not dry_run:
        data["ok"] = data["ok"] and not data["ledger_failed"]
    if as_json:
        print(progress.to_json(data))
    else:
        console = _console()
        for line in progress.render_lines(data):
            style = "red" if line.startswith(("failed", "planner", "still failed", "expired")) else ""
            console.print(f"[{style}]{line}[/{style}]" if style else line, highlight=False, markup=bool(style))
    if data["planner_error"] and not data["copied"]:
        return 1
    if not dry_run and data["held"] and not data["failed"] and not data["pending"] and not data["planner_error"]:
        print(
            f"exportlake: {len(data['held'])} result(s) still held by another live copier after waiting; "
            "run sync again when it has finished",
            file=sys.stderr,
        )
        return EXIT_HELD
    return 0 if data["ok"] else 1


def _parse(ts: str) -> datetime | None:
    try:
        return datetime.fromisoformat(ts) if ts else None
    except ValueError:
        return None


def _short(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def status_records(now: datetime | None = None) -> list[dict[str, Any]]:
    """Per export, typed: newest result on the gateway, newest copied, lag, rows, states, next expiry."""
    from exportlake.local.doctor import uncopied

    now = now or datetime.now(UTC)
    gateway = bootstrap.gateway()
    ledger = bootstrap.ledger()
    exports = gateway.list_exports()
    entries = ledger.all_entries()
    out: list[dict[str, Any]] = []
    for export in sorted(exports, key=lambda e: e.system_name):
        mine = [e for e in entries if e.export_name == export.system_name]
        copied = [e for e in mine if e.state == ResultState.COPIED]
        newest_copied = max((d for d in (_parse(e.created_at) for e in copied) if d), default=None)
        newest = export.last_run.created_at if export.last_run else None
        if newest is None:
            lag: int | None = None
        elif newest_copied is None:
            lag = int((now - newest).total_seconds())
        else:
            lag = max(0, int((newest - newest_copied).total_seconds()))
        waiting = [r for r in uncopied(gateway, ledger, [export], now) if r.expires_at is not None]
        first = min(waiting, key=lambda r: r.expires_at or now, default=None)
        out.append(
            {
                "export": export.system_name,
                "newest_on_gateway": _iso(newest),
                "newest_copied": _iso(newest_copied),
                "lag_seconds": lag,
                "up_to_date": newest is None or (newest_copied is not None and newest_copied >= newest),
                "rows_copied": sum(e.rows for e in copied),
                "bytes_copied": sum(e.bytes for e in copied),
                "states": {s.value: sum(1 for e in mine if e.state == s) for s in ResultState},
                "uncopied": len(waiting),
                "next_expiry": _iso(first.expires_at) if first else None,
                "next_expiry_result": first.result_id if first else None,
            }
        )
    return out


STATUS_COLUMNS = ("export", "newest on gateway", "newest copied", "lag", "rows copied", "ledger", "next expiry")


def _lag_text(record: dict[str, Any]) -> str:
    if record["newest_on_gateway"] is None:
        return "-"
    if record["up_to_date"]:
        return "up to date"
    hours = f"{(record['lag_seconds'] or 0) / 3600:.1f} h"
    return f"{hours} (nothing copied)" if record["newest_copied"] is None else hours


def status_rows(records: list[dict[str, Any]] | None = None) -> list[tuple[Any, ...]]:
    """The status records as table rows for people."""
    rows = []
    for r in status_records() if records is None else records:
        expiry = "-"
        if r["next_expiry"]:
            left = datetime.fromisoformat(r["next_expiry"]) - datetime.now(UTC)
            expiry = f"{_short(datetime.fromisoformat(r['next_expiry']))} (in {left / timedelta(hours=1):.0f} h)"
        rows.append(
            (
                r["export"],
                _short(datetime.fromisoformat(r["newest_on_gateway"])) if r["newest_on_gateway"] else "never ran",
                _short(datetime.fromisoformat(r["newest_copied"])) if r["newest_copied"] else "-",
                _lag_text(r),
                r["rows_copied"],
                ", ".join(f"{k} {v}" for k, v in r["states"].items() if v) or "-",
                expiry,
            )
        )
    return rows


def cmd_status(args: argparse.Namespace) -> int:
    """Print the status table (or JSON with snake_case keys and typed values)."""
    _preflight(("settings", "aws", "secret"))
    records = status_records()
    if getattr(args, "json", False):
        print(json.dumps(records, indent=1))
    else:
        _console().print(_table("exportlake status", STATUS_COLUMNS, status_rows(records)))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check every link in order; exit 1 at the first broken one."""
    from exportlake.local import doctor

    checks = []
    for check in doctor.run(bootstrap.client):
        checks.append(check)
        if not getattr(args, "json", False):
            mark = "ok  " if check.ok else "FAIL"
            fix = f" -> fix: {check.fix}" if check.fix and not check.ok else ""
            print(f"{mark} {check.name:<15} {check.detail}{fix}", flush=True)
    if getattr(args, "json", False):
        print(doctor.as_json(checks))
    return 0 if all(c.ok for c in checks) else 1


def cmd_verify(args: argparse.Namespace) -> int:
    """Re-read landed results and check that raw, parts, manifest, partition and ledger agree."""
    from exportlake.local import verify

    _preflight(("settings", "aws", "resources"))
    s = bootstrap.settings()
    results = verify.verify(
        bootstrap.client("s3"),
        bootstrap.catalog(),
        bootstrap.ledger(),
        s.bucket,
        export=args.export,
        result_id=args.result_id,
    )
    if getattr(args, "json", False):
        print(json.dumps([r.as_dict() for r in results], indent=1))
    else:
        for r in results:
            print(r.line())
        if not results:
            print("no copied result matches")
    return 0 if results and all(r.ok for r in results) else 1


def cmd_env(args: argparse.Namespace) -> int:
    """Print the settings of a deployed stack as shell exports (or TOML for exportlake.toml)."""
    from exportlake.local import stackenv

    env = stackenv.from_stack(bootstrap.client("cloudformation"), args.stack)
    print(stackenv.as_toml(env, args.stack) if args.format == "toml" else stackenv.as_shell(env))
    return 0


def cmd_put_secret(args: argparse.Namespace) -> int:
    """Store the gateway credentials in the configured secret (the client secret from stdin, never an argument)."""
    import getpass

    secret_id = os.environ.get("EXPORTLAKE_SECRET_ID", "").strip()
    if not secret_id:
        raise ConfigError("EXPORTLAKE_SECRET_ID is not set: name the secret to write")
    client_secret = getpass.getpass("client secret: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    if not args.client_id.strip() or not client_secret:
        raise ConfigError("put-secret needs --client-id and the client secret on stdin")
    value = json.dumps({"client_id": args.client_id.strip(), "client_secret": client_secret})
    sm = bootstrap.client("secretsmanager")
    try:
        sm.put_secret_value(SecretId=secret_id, SecretString=value)
    except sm.exceptions.ResourceNotFoundException:
        sm.create_secret(Name=secret_id, SecretString=value)
    print(f"stored client_id {args.client_id.strip()} and its secret in {secret_id}")
    return 0


def cmd_replan(args: argparse.Namespace) -> int:
    """Invoke the deployed planner (optionally re-queueing failed results) and print its answer."""
    from exportlake.local import stackenv

    payload = stackenv.planner_payload(retry_failed=args.retry_failed)
    function = args.function or stackenv.planner_function(bootstrap.client("cloudformation"), args.stack)
    answer = stackenv.invoke(bootstrap.client("lambda"), function, payload)
    print(json.dumps(answer, indent=1))
    return 0 if not answer.get("errorMessage") else 1


def lake_query() -> Any:
    """A DuckDB engine over the tables the Glue catalog describes (objects mirrored from S3), with the views."""
    from exportlake.local.lakequery import LakeQuery

    settings = bootstrap.settings()
    base = Path(os.environ.get("EXPORTLAKE_CACHE_DIR") or Path(tempfile.gettempdir()) / "exportlake-cache")
    lake = LakeQuery(bootstrap.client("glue"), bootstrap.client("s3"), settings.glue_database, base / settings.bucket)
    lake.refresh()
    return lake


def cmd_query(args: argparse.Namespace) -> int:
    """Run one SQL statement: DuckDB over the local lake, or Athena with ``--athena``."""
    from exportlake.local.output import render

    limit = None if args.all else args.limit
    fmt = "json" if args.json else "csv" if args.csv else "table"
    if args.athena:
        from exportlake.local.athena import AthenaQuery, stack_outputs

        workgroup, database = args.workgroup, args.database
        if not (workgroup and database):
            outputs = stack_outputs(bootstrap.client("cloudformation"), args.stack_name)
            workgroup = workgroup or outputs.get("AthenaWorkGroup")
            database = database or outputs.get("GlueDatabase")
        if not (workgroup and database):
            raise ExportlakeError(f"stack {args.stack_name!r} has no AthenaWorkGroup/GlueDatabase outputs")
        result = AthenaQuery(bootstrap.client("athena"), workgroup, database).run(args.sql, limit)
        notes = [
            f"athena {result.query_id} in {workgroup}: {result.bytes_scanned:,} bytes scanned, "
            f"~${result.cost_usd:.6f}, {result.engine_ms} ms"
        ]
        render(result.columns, result.rows, fmt=fmt, title="athena", truncated=result.truncated, notes=notes)
        return 0
    import duckdb

    from exportlake.local.lakequery import describe_error

    lake = lake_query()
    try:
        columns, rows, truncated = lake.query_capped(args.sql, limit)
    except duckdb.Error as exc:
        raise ConfigError(f"query failed: {describe_error(exc)}") from None
    render(columns, rows, fmt=fmt, title="query", truncated=truncated)
    return 0


def row_counts(lake: Any) -> list[tuple[str, int]]:
    """Rows per table and view of the lake (the raw tables and their typed/latest views)."""
    _, tables = lake.query(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'VIEW' AND table_schema <> '_exportlake' ORDER BY table_name"
    )
    return [(t, int(lake.query(f'SELECT count(*) FROM "{schema}"."{t}"')[1][0][0])) for schema, t in tables]


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
        from exportlake.domain.queries import saved_queries

        database = bootstrap.settings().glue_database
        for query in (q for q in saved_queries(database) if q.name in DEMO_QUERIES):
            columns, rows, more = lake.query_capped(query.sql, 12)
            title = f"{query.name} — {query.description}" + (" (first 12 rows)" if more else "")
            console.print(_table(title, columns, rows))
        console.print(_table("exportlake status", STATUS_COLUMNS, status_rows()))
        console.print("[dim]a second sync copies nothing new:[/dim]")
        code = code or cmd_sync(args)
    return code


def cmd_simulator(args: argparse.Namespace) -> int:
    """Run the gateway simulator alone."""
    from exportlake.local import simulator

    return int(simulator.main(args.rest) or 0)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (usage errors exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("exportlake")
    except PackageNotFoundError:
        return "unknown"


_EXAMPLES = {
    "demo": "exportlake demo",
    "provision": "AWS_ENDPOINT_URL=http://127.0.0.1:5000 exportlake provision",
    "sync": "exportlake sync --export win-info --since 2026-11-01 --dry-run",
    "status": "exportlake status --json",
    "doctor": "exportlake doctor",
    "verify": "exportlake verify --export win-info",
    "env": 'eval "$(exportlake env --stack ExportLake)"',
    "replan": "exportlake replan --stack ExportLake --retry-failed",
    "put-secret": 'echo "$CLIENT_SECRET" | exportlake put-secret --client-id my-client',
    "query": 'exportlake query "SELECT count(*) FROM win_info"',
}


def _finish(parser: argparse.ArgumentParser, name: str) -> None:
    """What ``add`` gives a sub-parser, for one created with ``sub.add_parser`` directly: -v, an example."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = f"example:\n  {_EXAMPLES[name]}"
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="tracebacks, logs")


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    common = _Parser(add_help=False)
    # SUPPRESS: a sub-command's copy of the option must not overwrite the value given before the sub-command.
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="tracebacks, logs")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    parser = _Parser(
        prog="exportlake",
        description=__doc__,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  exportlake demo\n  exportlake doctor",
    )
    parser.add_argument("--version", action="version", version=f"exportlake {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=f"example:\n  {_EXAMPLES[name]}",
        )
        return p

    demo = add("demo", "run the whole pipeline locally (moto + simulator) and show the data")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=cmd_demo, retry_failed=False)
    provision = add("provision", "create the AWS resources on the configured endpoint (local unless --real-aws)")
    provision.add_argument("--real-aws", action="store_true", help="allow creating resources on real AWS")
    provision.set_defaults(func=cmd_provision)
    sync = add("sync", "plan, then run every copy job to completion; a summary names what failed and how to retry")
    sync.add_argument("--retry-failed", action="store_true", help="queue results that failed for good again")
    sync.add_argument("--export", action="append", metavar="NAME", help="only this export (repeatable)")
    sync.add_argument("--since", metavar="DATE", help="only results created at or after DATE (YYYY-MM-DD or ISO)")
    sync.add_argument("--dry-run", action="store_true", help="list what would be copied; change nothing")
    sync.set_defaults(func=cmd_sync)
    status = add("status", "per export: newest result, newest copied, lag, rows, states, next expiry")
    status.set_defaults(func=cmd_status)
    doctor = add("doctor", "check settings → AWS → secret → token → exports → download → resources → expiry")
    doctor.set_defaults(func=cmd_doctor)
    verify = add("verify", "re-read landed results: raw, Parquet parts, manifest, partition and ledger agree")
    verify.add_argument("--export", metavar="NAME")
    verify.add_argument("result_id", nargs="?", metavar="RESULT_ID")
    verify.set_defaults(func=cmd_verify)
    env = add("env", "print a deployed stack's outputs as the settings (shell exports or exportlake.toml)")
    env.add_argument("--stack", required=True, metavar="NAME", help="the CloudFormation stack name")
    env.add_argument("--format", choices=("sh", "toml"), default="sh")
    env.set_defaults(func=cmd_env)
    put_secret = add("put-secret", "store the gateway client_id and client secret (read from stdin) in the secret")
    put_secret.add_argument("--client-id", required=True)
    put_secret.set_defaults(func=cmd_put_secret)
    replan = add("replan", "invoke the deployed planner now (with --retry-failed: re-queue failed results)")
    replan.add_argument("--stack", default="ExportLake", metavar="NAME")
    replan.add_argument("--function", metavar="NAME", help="the planner function (default: the stack output)")
    replan.add_argument("--retry-failed", action="store_true")
    replan.set_defaults(func=cmd_replan)
    query = sub.add_parser(
        "query", help="run SQL on DuckDB over the local lake (tables and views of the Glue catalog), or on Athena"
    )
    query.add_argument("sql")
    formats = query.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="print the rows as JSON")
    formats.add_argument("--csv", action="store_true", help="print the rows as CSV")
    caps = query.add_mutually_exclusive_group()
    caps.add_argument("--limit", type=int, default=100, metavar="N", help="print at most N rows (default 100)")
    caps.add_argument("--all", action="store_true", help="print every row")
    query.add_argument("--athena", action="store_true", help="run on the deployed Athena workgroup instead")
    query.add_argument("--stack-name", default="ExportLake", help="stack whose outputs name workgroup and database")
    query.add_argument("--workgroup", help="Athena workgroup (default: the stack's AthenaWorkGroup output)")
    query.add_argument("--database", help="Glue database (default: the stack's GlueDatabase output)")
    query.set_defaults(func=cmd_query)
    _finish(query, "query")
    simulator = sub.add_parser("simulator", help="run the gateway simulator alone (exportlake simulator --help)")
    simulator.add_argument("rest", nargs=argparse.REMAINDER)
    simulator.set_defaults(func=cmd_simulator)
    return parser


def _split_simulator(argv: list[str]) -> list[str] | None:
    """The simulator's own arguments when the command is ``simulator`` (argparse's REMAINDER drops options)."""
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            return argv[i + 1 :] if arg == "simulator" else None
    return None


def _load_config(argv: list[str]) -> None:
    """Defaults from ``exportlake.toml`` (or ``EXPORTLAKE_CONFIG``); variables already set win."""
    from exportlake.local import stackenv

    stackenv.load_config_file(os.environ)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``exportlake`` command."""
    resume_gc()
    given = argv  # None: the console script (exit_now may end the process without finalization)
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = _split_simulator(argv)
    if rest is not None:
        from exportlake.local import simulator

        return int(simulator.main(rest) or 0)
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))  # SUPPRESS: absent unless given
    _quiet_powertools(verbose)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from exportlake.local.errors import explain

    try:
        _load_config(argv)
        if args.command == "query" and not str(args.sql).strip():
            raise ConfigError('query: the SQL is empty (e.g. exportlake query "SELECT count(*) FROM win_info")')
        return exit_now(int(args.func(args)), given)  # the console script skips interpreter finalization
    except (Exception, KeyboardInterrupt) as exc:
        if verbose:
            traceback.print_exc()
        explained = explain(exc)
        print(f"exportlake: {explained.message}", file=sys.stderr)
        return explained.code


if __name__ == "__main__":
    sys.exit(main())
