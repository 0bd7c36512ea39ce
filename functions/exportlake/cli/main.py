"""The ``exportlake`` command: run the pipeline locally, check and inspect a deployment, query the lake.

Every error is one line naming the cause and the fix (exit 2: usage or configuration; 1: a failed run); ``-v``
shows the traceback. Options work before or after the sub-command. Each command lives in its own module of
``exportlake.cli``; exit codes are decided in ``exportlake.cli.exitcodes``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import NoReturn

from exportlake.cli import erase
from exportlake.cli.demo import cmd_demo
from exportlake.cli.doctor import cmd_doctor
from exportlake.cli.env import cmd_env
from exportlake.cli.output import quiet_powertools
from exportlake.cli.provision import cmd_provision
from exportlake.cli.query import cmd_query
from exportlake.cli.replan import cmd_replan
from exportlake.cli.secret import cmd_put_secret
from exportlake.cli.simulator import cmd_simulator
from exportlake.cli.status import cmd_status
from exportlake.cli.sync import cmd_sync
from exportlake.cli.verify import cmd_verify
from exportlake.domain.errors import ConfigError
from exportlake.fastexit import exit_now, resume_gc


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
    "erase": "exportlake erase --user-id 8k2jd0s9x7c6v5b4n3m2q1w0e --dry-run",
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
    doctor.add_argument("--stack", metavar="NAME", help="also check this deployed stack (default: EXPORTLAKE_STACK)")
    doctor.set_defaults(func=cmd_doctor)
    verify = add("verify", "re-read landed results: raw, Parquet parts, manifest, partition and ledger agree")
    verify.add_argument("--export", metavar="NAME")
    verify.add_argument("result_id", nargs="?", metavar="RESULT_ID")
    verify.set_defaults(func=cmd_verify)
    erase.add_parser(add)
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
    from exportlake.cli import stackenv

    stackenv.load_config_file(os.environ)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``exportlake`` command."""
    resume_gc()
    given = argv  # None: the console script (exit_now may end the process without finalization)
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = _split_simulator(argv)
    if rest is not None:
        from exportlake.emulator import server as simulator

        return int(simulator.main(rest) or 0)
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))  # SUPPRESS: absent unless given
    quiet_powertools(verbose)
    if not verbose:  # a library's warning (Powertools' "No application metrics to publish"…) is no user message
        warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from exportlake.cli.errors import explain

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
