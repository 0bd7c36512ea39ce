"""The sync's progress display (rich, only on a terminal) and its end-of-run summary (text or JSON).

The summary reads the ``SyncReport`` defensively (``getattr`` with defaults): the runner's report grows fields
(``pending``, ``expired``) as the local runner evolves, and the summary shows whatever it holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from exportlake.domain import wording
from exportlake.domain.ports import LedgerEntry


@dataclass
class SyncProgress:
    """The sync on a terminal: results and rows copied so far (results, rows, bytes/s, ETA), and under it the result
    being copied — rows so far, bytes downloaded of its declared size, bytes/s, ETA — so one huge result moves too.

    Disabled (not a terminal), it renders nothing and asks for no per-result reports (``copying`` is never wired).
    """

    enabled: bool
    read_entry: Callable[[str, str], LedgerEntry | None]
    total: int = 0
    results: int = 0
    rows: int = 0
    bytes: int = 0
    _live: Any = None
    _progress: Any = None
    _task: Any = None
    _current: Any = None  # the result's own Progress
    _current_task: Any = None
    _current_key: tuple[str, str] | None = None
    _current_rows: int = 0
    _current_bytes: int = 0
    _seen: set[tuple[str, str]] = field(default_factory=set)

    def __enter__(self) -> SyncProgress:
        if self.enabled:
            from rich.console import Group
            from rich.live import Live
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]sync[/bold] {task.fields[what]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("results · {task.fields[rows]:,} rows · {task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self._task = self._progress.add_task("sync", total=None, what="planning", rows=0, rate="-")
            self._current = Progress(
                TextColumn("  {task.description}"),
                BarColumn(),
                TextColumn("{task.fields[rows]:,} rows ·"),
                DownloadColumn(),
                TextColumn("· {task.fields[speed]} · ETA {task.fields[eta]}"),
            )
            self._live = Live(Group(self._progress, self._current), refresh_per_second=10, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._end_current()
            self._live.__exit__(None, None, None)

    def planned(self, planned: dict[str, Any]) -> None:
        """The planner ran: the total is the results it queued."""
        self.total = int(planned.get("enqueued", 0) or 0)
        if self._progress is not None:
            self._progress.update(self._task, total=max(self.total, 1), what="copying")

    def copying(self, job: Any, rows: int, done: int, length: int | None) -> None:
        """The result ``job`` streams: ``rows`` decoded and ``done`` bytes read so far, of ``length`` if declared."""
        if self._current is None:
            return
        key = (job.export_name, job.result_id)
        if key != self._current_key:
            self._end_current()
            self._current_key = key
            self._current_task = self._current.add_task(
                f"{job.export_name} {job.result_id}", total=length, rows=0, speed="-", eta="-"
            )
        self._current_rows, self._current_bytes = rows, done
        elapsed = self._current.tasks[-1].elapsed or 0.0
        speed, eta = rate_and_eta(done, length, elapsed)
        self._current.update(self._current_task, completed=done, rows=rows, speed=speed, eta=eta)
        self._show_totals()

    def _end_current(self) -> None:
        if self._current_task is not None:
            self._current.remove_task(self._current_task)
        self._current_task = self._current_key = None
        self._current_rows = self._current_bytes = 0

    def batch(self, done: Sequence[tuple[str, str]]) -> None:
        """One copier invocation finished these results (copied or not)."""
        for key in done:
            if key in self._seen:
                continue
            self._seen.add(key)
            self.results += 1
            if self._progress is None:
                continue  # nothing shows rows and bytes: no ledger read per result
            entry = self.read_entry(*key)
            if entry is not None:
                self.rows += entry.rows
                self.bytes += entry.bytes
        if self._progress is not None:
            self._end_current()
            self._show_totals()

    def _show_totals(self) -> None:
        """The first line: results finished, and rows and bytes/s including the result in flight."""
        elapsed = self._progress.tasks[0].elapsed or 0.0
        moved = self.bytes + self._current_bytes
        rate = f"{moved / elapsed / 1e6:.1f} MB/s" if elapsed > 0 else "-"
        rows = self.rows + self._current_rows
        self._progress.update(self._task, completed=self.results, rows=rows, rate=rate, what="copying")


def rate_and_eta(done: int, length: int | None, elapsed: float) -> tuple[str, str]:
    """Bytes/s since the download started, and the time left at that rate (``-`` while unknown)."""
    from rich.filesize import decimal

    if elapsed <= 0 or done <= 0:
        return "-", "-"
    rate = done / elapsed
    eta = str(timedelta(seconds=round(max(length - done, 0) / rate))) if length else "-"
    return f"{decimal(round(rate))}/s", eta


def _list(report: Any, name: str) -> list[Any]:
    value = getattr(report, name, None)
    return list(value) if isinstance(value, list | tuple | set) else []


def summary(
    report: Any,
    *,
    only_exports: Sequence[str] = (),
    since: str = "",
    dry_run: bool = False,
    ledger_failed: Sequence[LedgerEntry] = (),
) -> dict[str, Any]:
    """The run as a JSON-ready dict: planned, copied, failed, expired, pending, and how to retry."""
    planned = dict(getattr(report, "planned", {}) or {})
    failed = [
        {"export": f[0], "result_id": f[1], "error": str(f[2]) if len(f) > 2 else ""}
        for f in _list(report, "failed")
        if isinstance(f, list | tuple) and len(f) >= 2
    ]
    copied = [{"export": c[0], "result_id": c[1]} for c in _list(report, "copied") if len(c) >= 2]

    def pairs(name: str) -> list[dict[str, str]]:
        out = []
        for item in _list(report, name):
            if isinstance(item, list | tuple) and len(item) >= 2:
                out.append({"export": str(item[0]), "result_id": str(item[1])})
            elif hasattr(item, "export_name"):
                out.append({"export": item.export_name, "result_id": item.result_id})
        return out

    data: dict[str, Any] = {
        "ok": bool(getattr(report, "ok", not failed)),
        "dry_run": dry_run,
        "filters": {"exports": list(only_exports), "since": since or None},
        "exports": int(planned.get("exports", 0) or 0),
        "enqueued": int(planned.get("enqueued", 0) or 0),
        "would_copy": [{"export": e, "result_id": r} for e, r in planned.get("would_copy", [])],
        "expired_now": int(planned.get("expired", 0) or 0),
        "copied": copied,
        "failed": failed,
        "expired": pairs("expired"),
        "pending": pairs("pending"),
        "held": pairs("held"),
        "recovered": pairs("recovered"),
        "aborted_uploads": int(getattr(report, "aborted_uploads", 0) or 0),
        "ledger_failed": [{"export": e.export_name, "result_id": e.result_id, "error": e.error} for e in ledger_failed],
        "invocations": int(getattr(report, "invocations", 0) or 0),
        "retried": int(getattr(report, "retried", 0) or 0),
        "planner_error": str(getattr(report, "planner_error", "") or ""),
        # The run got as far as a plan (a whole-run failure, such as bad credentials, has none).
        "planned": bool(planned),
        "invalid": [
            {"what": str(i[0]), "item": str(i[1]), "error": str(i[2])}
            for i in planned.get("invalid_items", [])
            if isinstance(i, list | tuple) and len(i) >= 3
        ],
        "invalid_count": int(planned.get("invalid", 0) or 0),
    }
    return data


def render_lines(data: dict[str, Any]) -> list[str]:
    """The summary as lines for people: totals, then what failed, expired, is pending, and the retry command."""
    if data["dry_run"]:
        lines = [f"dry run: {len(data['would_copy'])} results would be copied from {data['exports']} exports"]
        lines += [f"  would copy: {w['export']} {w['result_id']}" for w in data["would_copy"]]
        return lines
    if data["planner_error"] and not data.get("planned", True):
        # Nothing was planned: say why first, with no "planned 0 exports" line before it.
        lines = [f"planner: sync failed before planning: {data['planner_error']}"]
    else:
        lines = [
            f"planned {data['exports']} exports: {data['enqueued']} new results, {data['expired_now']} expired; "
            f"{len(data['copied'])} copied in {data['invocations']} copier invocations ({data['retried']} retried)"
        ]
        if data["planner_error"]:
            lines.append(f"planner: {data['planner_error']}")
    invalid = data.get("invalid", [])
    lines += [f"skipped invalid {i['what']}: {i['item']}: {i['error']}" for i in invalid]
    if data.get("invalid_count", 0) > len(invalid):
        lines.append(f"skipped {data['invalid_count'] - len(invalid)} more invalid items (see the planner's log)")
    # In words even for reasons recorded by earlier versions (class names, codec messages).
    lines += [f"failed: {f['export']} {f['result_id']}: {wording.words(f['error'])}" for f in data["failed"]]
    lines += [f"expired: {e['export']} {e['result_id']}" for e in data["expired"]]
    lines += [f"pending: {p['export']} {p['result_id']}" for p in data["pending"]]
    if data["recovered"]:
        lines.append(f"finished {len(data['recovered'])} results that earlier, interrupted runs left unfinished")
    if data["aborted_uploads"]:
        lines.append(f"aborted {data['aborted_uploads']} uploads that interrupted runs left open")
    lines += [f"held by another live copier: {h['export']} {h['result_id']}" for h in data["held"]]
    # Results left failed by earlier runs: a plain sync does not touch them, so say so every time.
    older = [f for f in data["ledger_failed"] if (f["export"], f["result_id"]) not in _keys(data["failed"])]
    if older:
        names = sorted({f["export"] for f in older})
        lines.append(f"still failed from earlier runs: {len(older)} results ({', '.join(names)})")
    # A retry is offered only for what a retry can fix (a malformed document's reason says where to report it).
    if any(wording.NO_RETRY not in str(f.get("error", "")) for f in [*data["failed"], *older]):
        lines.append("fix the cause (exportlake doctor), then retry: exportlake sync --retry-failed")
    return lines


def _keys(items: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(i["export"], i["result_id"]) for i in items}


def to_json(data: dict[str, Any]) -> str:
    """The summary as JSON."""
    return json.dumps(data, indent=1, default=str)
