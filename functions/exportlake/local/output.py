"""How ``exportlake query`` prints a result: a table (default), JSON or CSV, capped unless ``--all``."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
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
) -> None:
    """Print ``rows``; notes (truncation, bytes scanned, cost) go to stderr for JSON/CSV so stdout stays data."""
    out = out or sys.stdout
    err = err or sys.stderr
    notes = list(notes)
    if truncated:
        notes.insert(0, f"showing the first {len(rows)} rows (--limit N or --all for more)")
    if fmt == "json":
        out.write(json.dumps([{c: _plain(v) for c, v in zip(columns, r, strict=True)} for r in rows], indent=1) + "\n")
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
