"""What a sync's exit status promises, decided in one place from what the ledger says is left."""

from __future__ import annotations

from typing import Any

from exportlake.cli.exitcodes import ExitCode, checks_exit, sync_exit
from exportlake.cli.progress import summary
from exportlake.domain.models import ResultState
from exportlake.domain.ports import LedgerEntry
from exportlake.runner import SyncReport


def _exit(report: SyncReport, *, dry_run: bool = False, ledger_failed: list[Any] | None = None) -> ExitCode:
    # The same chain as `exportlake sync`: the runner's report -> the printed summary -> the exit code.
    return sync_exit(summary(report, dry_run=dry_run, ledger_failed=ledger_failed or []), dry_run=dry_run)


def _failed_entry() -> LedgerEntry:
    return LedgerEntry(export_name="win-info", result_id="b", state=ResultState.FAILED, error="document invalid")


def test_zero_only_when_nothing_is_left() -> None:
    assert _exit(SyncReport(copied=[("win-info", "a")])) is ExitCode.OK
    assert _exit(SyncReport(pending=[("win-info", "a", "queued")])) is ExitCode.FAILED  # never 0 while one is missing
    assert _exit(SyncReport(failed=[("win-info", "a", "the document is invalid")])) is ExitCode.FAILED
    assert _exit(SyncReport(planner_error="gateway down")) is ExitCode.FAILED
    assert _exit(SyncReport(planner_error="gateway down", copied=[("win-info", "a")])) is ExitCode.FAILED


def test_a_result_left_failed_by_an_earlier_run_keeps_the_exit_non_zero() -> None:
    assert _exit(SyncReport(copied=[("win-info", "a")]), ledger_failed=[_failed_entry()]) is ExitCode.FAILED
    # A dry run changes nothing, so what earlier runs left does not decide its status.
    assert _exit(SyncReport(), dry_run=True, ledger_failed=[_failed_entry()]) is ExitCode.OK


def test_results_held_by_a_live_copier_have_their_own_status() -> None:
    assert _exit(SyncReport(held=[("win-info", "a")])) is ExitCode.HELD
    assert ExitCode.HELD == 3
    assert _exit(SyncReport(held=[("win-info", "a")], failed=[("win-info", "b", "x")])) is ExitCode.FAILED


def test_checks_pass_only_when_every_check_passed() -> None:
    assert checks_exit(True) is ExitCode.OK
    assert checks_exit(False) is ExitCode.FAILED
