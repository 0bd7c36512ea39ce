"""`exportlake status`: per export, the newest result on the gateway, the newest copied, the lag, rows, states."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta
from typing import Any

from exportlake import bootstrap
from exportlake.cli.doctor import preflight
from exportlake.cli.exitcodes import ExitCode
from exportlake.cli.output import console, table
from exportlake.domain.models import ResultState
from exportlake.domain.timefmt import parse_time, short, to_text, utc_now


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else to_text(moment.replace(microsecond=0))


def status_records(now: datetime | None = None) -> list[dict[str, Any]]:
    """Per export, typed: newest result on the gateway, newest copied, lag, rows, states, next expiry."""
    from exportlake.cli.doctor import uncopied

    now = now or utc_now()
    gateway = bootstrap.gateway()
    ledger = bootstrap.ledger()
    exports = gateway.list_exports()
    entries = ledger.all_entries()
    suppressed = bootstrap.privacy_store().suppressed_rows()
    out: list[dict[str, Any]] = []
    for export in sorted(exports, key=lambda e: e.system_name):
        mine = [e for e in entries if e.export_name == export.system_name]
        copied = [e for e in mine if e.state == ResultState.COPIED]
        newest_copied = max((d for d in (parse_time(e.created_at) for e in copied) if d), default=None)
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
                # Records of erased persons kept out of later results (exportlake erase; suppression list).
                "rows_suppressed": suppressed.get(export.system_name, 0),
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
            moment = datetime.fromisoformat(r["next_expiry"])
            expiry = f"{short(moment)} (in {(moment - utc_now()) / timedelta(hours=1):.0f} h)"
        rows.append(
            (
                r["export"],
                short(datetime.fromisoformat(r["newest_on_gateway"])) if r["newest_on_gateway"] else "never ran",
                short(datetime.fromisoformat(r["newest_copied"])) if r["newest_copied"] else "-",
                _lag_text(r),
                f"{r['rows_copied']} ({r['rows_suppressed']} suppressed)" if r["rows_suppressed"] else r["rows_copied"],
                ", ".join(f"{k} {v}" for k, v in r["states"].items() if v) or "-",
                expiry,
            )
        )
    return rows


def cmd_status(args: argparse.Namespace) -> ExitCode:
    """Print the status table (or JSON with snake_case keys and typed values)."""
    preflight(("settings", "aws", "secret"))
    records = status_records()
    if getattr(args, "json", False):
        print(json.dumps(records, indent=1))
    else:
        console().print(table("exportlake status", STATUS_COLUMNS, status_rows(records)))
    return ExitCode.OK
