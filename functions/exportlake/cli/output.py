"""How ``exportlake query`` prints a result: a table (default), JSON or CSV, capped unless ``--all``."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

#: Rows printed by default; ``--limit N`` changes it, ``--all`` lifts it.
DEFAULT_LIMIT = 100
FORMATS = ("table", "json", "csv")


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def render(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    fmt: str = "table",
    title: str = "query",
    truncated: bool = False,
    notes: Sequence[str] = (),
    out: TextIO | None = None,
    err: TextIO | None = None,
    read: Mapping[str, Any] | None = None,
) -> None:
    """Print ``rows``; notes (truncation, bytes scanned, cost) go to stderr for JSON/CSV so stdout stays data.

    With ``read`` (what the query read: engine, files, bytes), JSON is one object:
    ``{"columns": [...], "rows": [{...}], "truncated": bool, "read": {...}}``; without it, the list of rows.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    notes = list(notes)
    if truncated:
        notes.insert(0, f"showing the first {len(rows)} rows (--limit N or --all for more)")
    if fmt == "json":
        listed = [{c: _plain(v) for c, v in zip(columns, r, strict=True)} for r in rows]
        document: Any = listed
        if read is not None:
            document = {"columns": list(columns), "rows": listed, "truncated": truncated, "read": dict(read)}
        out.write(json.dumps(document, indent=1) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if v is None else _plain(v) for v in r] for r in rows])
    elif fmt == "table":
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for c in columns:
            table.add_column(str(c))
        for row in rows:
            table.add_row(*("∅" if v is None else str(v) for v in row))
        console = Console(file=out, width=None if out.isatty() else 140)
        console.print(table)
        for note in notes:
            console.print(f"[dim]{note}[/dim]")
        return
    else:
        raise ValueError(f"unknown output format {fmt!r} (one of {', '.join(FORMATS)})")
    for note in notes:
        err.write(note + "\n")


def console() -> Any:
    """A rich console: the terminal's width, or 140 columns in a pipe."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 140)


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Any:
    """A rich table; None shows as ∅."""
    from rich.table import Table

    out = Table(title=title)
    for c in columns:
        out.add_column(str(c))
    for row in rows:
        out.add_row(*("∅" if v is None else str(v) for v in row))
    return out


def quiet_powertools(verbose: bool) -> None:
    """Keep the handlers' JSON logs and EMF metrics off a terminal unless ``-v``."""
    # Without -v even their errors stay quiet: the summary names every failure in one line.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO" if verbose else "CRITICAL")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "false" if verbose else "true")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
