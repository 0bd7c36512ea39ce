"""What a local sync's exit status promises, from what the ledger says is left."""

from __future__ import annotations

from exportlake.runner import EXIT_HELD, SyncReport


def test_zero_only_when_nothing_is_left() -> None:
    assert SyncReport(copied=[("win-info", "a")]).exit_code == 0
    assert SyncReport(pending=[("win-info", "a", "queued")]).exit_code == 1  # never 0 while one is missing
    assert SyncReport(failed=[("win-info", "a", "DocumentError: x")]).exit_code == 1
    assert SyncReport(planner_error="gateway down").exit_code == 1


def test_results_held_by_a_live_copier_have_their_own_status() -> None:
    assert SyncReport(held=[("win-info", "a")]).exit_code == EXIT_HELD == 3
    assert SyncReport(held=[("win-info", "a")], failed=[("win-info", "b", "x")]).exit_code == 1
