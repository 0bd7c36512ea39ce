"""The ``exportlake`` command as a user runs it: ``make demo`` as the README's front door, and provision.

The demo test runs the very command line the Makefile's ``demo`` target runs (asked of ``make -n``), in its own
process group with a timeout, with the moto server and simulator the demo starts itself; it then checks what a
newcomer reads against answers computed here, in Python, from the simulator's seeded catalogue: the rows the
lake holds per table and view (DuckDB over the Glue catalog and S3) and three saved queries on the typed views.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from exportlake.domain.schemas import EXPORT_TYPES, ResultSemantics
from exportlake.emulator.server import GatewaySimulator
from tests.e2e.conftest import ROOT, Stack
from tests.local.test_views_and_queries import py_value

Row = dict[str, Any]
Table = tuple[list[str], list[list[str]]]


def test_provision_creates_resources_named_by_the_settings(stack: Stack) -> None:
    for _ in range(2):  # idempotent
        done = stack.run("provision")
        assert done.returncode == 0, done.stderr
    sqs = stack.client("sqs")
    assert stack.env["EXPORTLAKE_QUEUE_URL"] in sqs.list_queues()["QueueUrls"]  # type: ignore[attr-defined]
    topics = [t["TopicArn"] for t in stack.client("sns").list_topics()["Topics"]]  # type: ignore[attr-defined]
    assert stack.env["EXPORTLAKE_TOPIC_ARN"] in topics
    tables = stack.client("glue").get_tables(DatabaseName="exportlake")["TableList"]  # type: ignore[attr-defined]
    assert len(tables) == 11  # the ten raw tables and latest_results


# --- make demo --------------------------------------------------------------------------------------------------


def make_demo_command() -> list[str]:
    """The command line ``make demo`` runs (its setup prerequisite taken as done)."""
    done = subprocess.run(
        ["make", "-s", "-n", "-o", ".venv/.installed", "demo"],  # noqa: S607 - make, as the README says
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (line,) = [line for line in done.stdout.splitlines() if line.strip()]
    return shlex.split(line)


def run_in_own_group(argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a new session; on timeout kill its whole process group (the demo's moto server too)."""
    proc = subprocess.Popen(  # noqa: S603 - the Makefile's own recipe
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"`{shlex.join(argv)}` still running after {timeout} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def rich_tables(text: str) -> dict[str, Table]:
    """The rich tables in ``text``: title (its wrapped lines joined) → (header, rows of stripped cells)."""
    found: dict[str, Table] = {}
    title: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("┏"):
            header = [c.strip() for c in lines[i + 1].strip().strip("┃").split("┃")]
            rows = []
            i += 3  # the header and the rule under it
            while not lines[i].startswith("└"):
                rows.append([c.strip() for c in lines[i].strip().strip("│").split("│")])
                i += 1
            found[" ".join(title)] = (header, rows)
            title = []
        elif line.strip():
            title.append(line.strip())
        i += 1
    return found


def table(tables: dict[str, Table], name: str) -> Table:
    (hit,) = [t for title, t in tables.items() if name in title]
    return hit


def typed_row(key: str, record: Row) -> Row:
    row: Row = {}
    for f in EXPORT_TYPES[key].fields:
        raw = record.get(f.name)
        row[f.name] = py_value(f.kind, raw if raw is None or isinstance(raw, str) else json.dumps(raw))[0]
    return row


def expected_demo(seed: int = 0) -> dict[str, Any]:
    """What the demo must show, from the catalogue the demo's simulator serves (same seed, never started)."""
    sim = GatewaySimulator(seed=seed)
    every: dict[str, list[Row]] = defaultdict(list)
    latest: dict[str, list[Row]] = defaultdict(list)
    rows_per_export: dict[str, int] = {}
    for export in sim.exports():
        name = export["system_name"]
        results = sim.results(name)
        rows_per_export[name] = 0
        if not results:
            continue

        def order(r: dict[str, str]) -> tuple[datetime, str]:  # the latest view's: full created_at, then the id
            return datetime.fromisoformat(r["created_at"]).astimezone(UTC), r["id"]

        newest = max(results, key=order)
        for result in results:
            key = sim.result_info(result["id"]).export.key
            typed = [typed_row(key, rec) for rec in sim.records(result["id"])]
            rows_per_export[name] += len(typed)
            every[key] += typed
            if result is newest:
                latest[key] += typed

    def current(key: str) -> list[Row]:
        return latest[key] if EXPORT_TYPES[key].semantics is ResultSemantics.SNAPSHOT else every[key]

    # One latest-result pointer per export with a result (each export lands in one table).
    counts = {"latest_results": sum(1 for export in sim.exports() if sim.results(export["system_name"]))}
    for key, t in EXPORT_TYPES.items():
        counts[key] = counts[t.typed_view] = len(every[key])
        if t.semantics is ResultSemantics.SNAPSHOT:
            counts[t.latest_view] = len(latest[key])

    def rates(pairs: set[tuple[Any, str]], rows: list[Row], join: str, flag: str) -> dict[str, tuple[int, int]]:
        total: Counter[str] = Counter()
        hits: Counter[str] = Counter()
        for row in rows:
            if row[flag] is None:
                continue
            for value, game in pairs:
                if value is not None and value == row[join]:  # NULL never joins in SQL
                    total[game] += 1
                    hits[game] += row[flag]
        return {g: (total[g], hits[g]) for g in total}

    stacks = {(r["stackid"], r["game_type"]) for r in current("player_info_game_type")}
    instances = {(r["stackinstanceid"], r["game_type"]) for r in current("challenges_game_type")}
    catalogue: dict[tuple[Any, Any], set[str]] = defaultdict(set)
    for p in current("gamification_prize_prize_type"):
        catalogue[(p["prizeid"], p["game_id"])].add(p["prize_type"])
    prizes: Counter[str] = Counter()
    claimed: Counter[str] = Counter()
    for u in current("gamification_prize_user_id"):
        types = catalogue.get((u["prizeid"], u["game_id"])) if None not in (u["prizeid"], u["game_id"]) else None
        for prize_type in types or {"(not in catalogue)"}:
            prizes[prize_type] += 1
            claimed[prize_type] += u["claimed_date"] is not None
    return {
        "rows per table": counts,
        "rows per export": rows_per_export,
        "results": sum(len(sim.results(e["system_name"])) for e in sim.exports()),
        "WinRatePerGameType": rates(stacks, current("win_info"), "stackid", "haswon"),
        "ChallengeCompletionPerGameType": rates(
            instances, current("challenges_user_id"), "stackinstanceid", "hascompleted"
        ),
        "PrizeDistribution": {t: (prizes[t], claimed[t]) for t in prizes},
    }


def shown(tables: dict[str, Table]) -> dict[str, Any]:
    """The same facts, as the demo printed them."""
    _, counts = table(tables, "rows per table")
    _, status = table(tables, "exportlake status")
    out: dict[str, Any] = {
        "rows per table": {name: int(n) for name, n in counts},
        "rows per export": {row[0]: int(row[4]) for row in status},
    }
    for name in ("WinRatePerGameType", "ChallengeCompletionPerGameType"):
        header, rows = table(tables, f"{name} —")
        assert header[0] == "game_type" and header[-1].endswith("_rate"), header
        out[name] = {r[0]: (int(r[1]), int(r[2])) for r in rows}
        for r in rows:  # the rate, rounded to 4 places, and the order: rate descending
            assert float(r[3]) == pytest.approx(int(r[2]) / int(r[1]), abs=5e-5), (name, r)
        assert [float(r[3]) for r in rows] == sorted((float(r[3]) for r in rows), reverse=True)
    header, rows = table(tables, "PrizeDistribution —")
    assert header == ["prize_type", "prizes_won", "share", "claimed", "claim_rate"]
    out["PrizeDistribution"] = {r[0]: (int(r[1]), int(r[3])) for r in rows}
    won = sum(int(r[1]) for r in rows)
    for r in rows:
        assert float(r[2]) == pytest.approx(int(r[1]) / won, abs=5e-5), r
        assert float(r[4]) == pytest.approx(int(r[3]) / int(r[1]), abs=5e-5), r
    return out


def test_make_demo_runs_and_shows_the_answers(tmp_path: Path) -> None:
    argv = make_demo_command()
    assert Path(argv[0]).name == "exportlake" and argv[1:] == ["demo"], argv  # the console script (cli:main)
    assert "make demo" in (ROOT / "README.md").read_text(encoding="utf-8").split("## Try it", 1)[1][:400]
    # PYTHONPATH passes through: a worktree's run must exercise its own code, not the editable install's.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH")}
    env["EXPORTLAKE_CACHE_DIR"] = str(tmp_path / "cache")
    # The catalogue's dates follow the clock: near midnight UTC the newest result of a day can change while the
    # demo runs, so its answers must match the catalogue as of just before or just after it.
    before = expected_demo()
    done = run_in_own_group(argv, env, timeout=240)
    after = expected_demo()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    first = next(line for line in lines if line.startswith("planned"))
    assert first.startswith(
        f"planned 11 exports: {before['results']} new results, 0 expired; {before['results']} copied"
    )
    assert lines[-1].startswith("planned 11 exports: 0 new results, 0 expired; 0 copied")  # the second sync
    got = shown(rich_tables(done.stdout))
    want = [{k: e[k] for k in got} for e in (before, after)]
    assert got in want, (got, want[0])
    assert sum(got["rows per export"].values()) == sum(want[0]["rows per export"].values()) > 1000
