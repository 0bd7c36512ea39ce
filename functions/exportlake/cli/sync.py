"""`exportlake sync`: plan, then run every copy job to completion, and say what is left."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from exportlake import bootstrap
from exportlake.cli.doctor import preflight
from exportlake.cli.exitcodes import ExitCode, sync_exit
from exportlake.cli.output import console
from exportlake.domain.errors import ConfigError
from exportlake.domain.models import ResultState
from exportlake.domain.timefmt import parse_time, to_text, utc_now


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = parse_time(value)
    if moment is None:
        raise ConfigError(f"--since {value!r} is not a date (YYYY-MM-DD or ISO 8601)")
    return moment


def _open_failures(exports: frozenset[str] | None, unfinished: list[Any]) -> list[Any]:
    """Ledger entries left failed that can still be copied (not expired), in the selected exports (from the
    run's last look at the unfinished entries: failed results stay in the ledger's index of them)."""
    now = utc_now()
    out = []
    for entry in unfinished:
        if entry.state != ResultState.FAILED or (exports is not None and entry.export_name not in exports):
            continue
        expires = parse_time(entry.expires_at)
        if expires is None or expires > now:
            out.append(entry)
    return out


def cmd_sync(args: argparse.Namespace) -> ExitCode:
    """Plan and copy until nothing is left; non-zero if a result failed or is left failed."""
    from exportlake.cli import progress
    from exportlake.runner import sync

    preflight()
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
        since=to_text(since) if since else "",
        dry_run=dry_run,
        ledger_failed=[] if dry_run else _open_failures(exports, report.unfinished),
    )
    if not dry_run:
        data["ok"] = data["ok"] and not data["ledger_failed"]
    if as_json:
        print(progress.to_json(data))
    else:
        from rich.text import Text

        out = console()
        for line in progress.render_lines(data):
            style = "red" if line.startswith(("failed", "planner", "still failed", "expired", "skipped")) else ""
            # Text, not markup: a reason may hold brackets; soft_wrap: one line stays one line (a pipe, a log).
            out.print(Text(line, style=style), highlight=False, soft_wrap=True)
    code = sync_exit(data, dry_run=dry_run)
    if code == ExitCode.HELD:
        print(
            f"exportlake: {len(data['held'])} result(s) still held by another live copier after waiting; "
            "run sync again when it has finished",
            file=sys.stderr,
        )
    return code
