"""What a plain `exportlake sync` says at the end (no network: the summary is built from a run's report)."""

from __future__ import annotations

from exportlake.cli.progress import render_lines, summary
from exportlake.runner import SyncReport


def lines_of(report: SyncReport) -> list[str]:
    return render_lines(summary(report))


def test_the_summary_names_the_invalid_exports_and_results_it_skipped() -> None:
    report = SyncReport(
        planned={
            "exports": 2,
            "enqueued": 1,
            "expired": 0,
            "invalid": 2,
            "invalid_items": [
                ["export", '{"system_name": "../etc"}', "export name '../etc' is not valid"],
                ["result", '{"id": "x/y"}', "result id 'x/y' is not valid"],
            ],
        },
        copied=[("win-info", "a" * 25)],
        invocations=1,
    )
    lines = lines_of(report)
    assert lines[0].startswith("planned 2 exports: 1 new results")
    assert 'skipped invalid export: {"system_name": "../etc"}: export name \'../etc\' is not valid' in lines
    assert 'skipped invalid result: {"id": "x/y"}: result id \'x/y\' is not valid' in lines


def test_a_run_that_failed_as_a_whole_says_so_without_a_plan_line_before_it() -> None:
    report = SyncReport(planner_error="the gateway refused the client credentials (HTTP 401)")
    lines = lines_of(report)
    assert lines[0] == "planner: sync failed before planning: the gateway refused the client credentials (HTTP 401)"
    assert not any(line.startswith("planned") for line in lines)


def test_a_run_where_some_exports_failed_keeps_its_plan_figures() -> None:
    report = SyncReport(
        planned={"exports": 3, "enqueued": 2, "expired": 0, "invalid": 0, "invalid_items": []},
        planner_error="planning failed for 1 export(s): win-info: boom",
    )
    lines = lines_of(report)
    assert lines[0].startswith("planned 3 exports: 2 new results")
    assert lines[1] == "planner: planning failed for 1 export(s): win-info: boom"
