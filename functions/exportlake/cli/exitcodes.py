"""The ``exportlake`` command's exit codes: the one place where an exit code is decided.

An exit code is a promise: 0 only when the ledger agrees that everything asked for is done.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """What the process tells its caller."""

    #: Done, and the ledger agrees.
    OK = 0
    #: A run failed or left something failed, drifted or broken (a retry may work).
    FAILED = 1
    #: Change something first: usage, settings, a missing resource or credentials.
    USAGE = 2
    #: Only results that another live copier still holds are left: run sync again when it has finished.
    HELD = 3
    #: Interrupted (Ctrl-C).
    INTERRUPTED = 130


def sync_exit(summary: Mapping[str, Any], *, dry_run: bool) -> ExitCode:
    """``sync``'s exit code from its summary (``cli.progress.summary``: what the ledger says is left)."""
    if summary["planner_error"] and not summary["copied"]:
        return ExitCode.FAILED
    if (
        not dry_run
        and summary["held"]
        and not summary["failed"]
        and not summary["pending"]
        and not summary["planner_error"]
    ):
        return ExitCode.HELD
    ok = summary["ok"] and (dry_run or not summary["ledger_failed"])  # a result left failed earlier counts too
    return ExitCode.OK if ok else ExitCode.FAILED


def checks_exit(all_ok: bool) -> ExitCode:
    """``doctor``'s and ``verify``'s exit code: 0 only when every check passed."""
    return ExitCode.OK if all_ok else ExitCode.FAILED
