"""``exportlake query`` locally: deployed (database-qualified) SQL runs, bad SQL is one line, output is capped."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from exportlake.cli import main as cli
from exportlake.cli import query as cli_query
from exportlake.domain import views as queries
from exportlake.domain.schemas import EXPORT_TYPES, LATEST_COLUMNS, LATEST_TABLE, PARTITION_KEYS
from exportlake.query.lake import LakeQuery


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LakeQuery:
    """An engine whose raw tables are plain DuckDB tables (the moto path is covered by test_views_and_queries)."""
    engine = LakeQuery(None, None, "exportlake", tmp_path)
    con = engine.connection
    for t in EXPORT_TYPES.values():
        cols = ", ".join(f'CAST(NULL AS VARCHAR) AS "{c}"' for c in (*t.columns, *PARTITION_KEYS))
        con.execute(f'CREATE TABLE exportlake."{t.key}" AS SELECT {cols} WHERE false')
    pointer_columns = ", ".join(f'CAST(NULL AS VARCHAR) AS "{c}"' for c in LATEST_COLUMNS)
    con.execute(f"CREATE TABLE exportlake.{LATEST_TABLE} AS SELECT {pointer_columns} WHERE false")
    con.execute(
        "INSERT INTO exportlake.win_info SELECT 'u' || i, 's', CAST(i % 2 AS VARCHAR), '2024-06-20 10:00:00', "
        "'win-info', '2024-06-20', 'r1' FROM range(250) t(i)"
    )
    for statement in queries.view_statements("exportlake").values():
        con.execute(statement)
    monkeypatch.setattr(cli_query, "lake_query", lambda: engine)
    return engine


def test_deployed_sql_resolves_locally_and_is_capped(lake: LakeQuery, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.main(["query", 'SELECT userid, haswon FROM "exportlake"."win_info_typed" ORDER BY userid', "--json"]) == 0
    )
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    rows = document["rows"]
    assert len(rows) == 100 and document["truncated"] is True
    assert document["columns"] == ["userid", "haswon"]
    assert rows[0] == {"userid": "u0", "haswon": False}
    # What the query read, as Athena's "data scanned" (these raw tables are in-memory: no file read).
    assert document["read"] == {"engine": "duckdb", "files": 0, "bytes": 0}
    assert "first 100 rows" in captured.err and "read 0 files, 0 bytes" in captured.err
    assert cli.main(["query", "SELECT count(*) AS n FROM win_info"]) == 0  # the table says what was read
    assert "read 0 files, 0 bytes (local DuckDB" in capsys.readouterr().out
    assert cli.main(["query", "SELECT count(*) AS n FROM win_info", "--csv"]) == 0
    assert capsys.readouterr().out == "n\n250\n"
    assert cli.main(["query", "SELECT userid FROM win_info", "--csv", "--all"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 251
    assert cli.main(["query", "SELECT userid FROM win_info", "--csv", "--limit", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM win_infos", 'Table with name win_infos does not exist! Did you mean "'),
        ("SELECT nope FROM exportlake.win_info", 'Candidate bindings: "'),
        ("SELEC 1", 'syntax error at or near "SELEC"'),
    ],
)
def test_bad_sql_is_one_line_with_the_hint(
    lake: LakeQuery, capsys: pytest.CaptureFixture[str], sql: str, expected: str
) -> None:
    assert cli.main(["query", sql]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("exportlake: query failed: ")
    assert expected in line
    assert "Traceback" not in captured.err


def test_athena_functions_work_locally(lake: LakeQuery) -> None:
    """Every Athena function the views and saved queries use (and the issue lists) runs on DuckDB with Athena's
    semantics."""
    row = lake.query(
        "SELECT date_parse('2024-06-20 09:35:57', '%Y-%m-%d %H:%i:%s'),"
        " date_parse('2024-06-20 09:35:57.120', '%Y-%m-%d %H:%i:%s.%f'),"
        " CAST(from_iso8601_timestamp('2024-06-20T09:35:57+02:00') AT TIME ZONE 'UTC' AS timestamp),"
        " date_trunc('day', TIMESTAMP '2024-06-20 09:35:57'),"
        " date_add('day', 2, TIMESTAMP '2024-06-20 09:35:57'),"
        " date_add('month', 1, TIMESTAMP '2024-01-31 00:00:00'),"
        " date_diff('day', TIMESTAMP '2024-06-20 10:00:00', TIMESTAMP '2024-06-22 09:00:00'),"
        " count_if(x > 5), approx_percentile(x, 0.5), try(CAST('x' AS integer)),"
        " to_unixtime(TIMESTAMP '1970-01-01 00:00:01.5'), from_unixtime(86400.5),"
        " element_at(ARRAY[10, 20, 30], 2), element_at(MAP(ARRAY['a'], ARRAY[1]), 'a')"
        " FROM range(11) t(x)"
    )[1][0]
    assert row == (
        datetime(2024, 6, 20, 9, 35, 57),
        datetime(2024, 6, 20, 9, 35, 57, 120000),
        datetime(2024, 6, 20, 7, 35, 57),
        datetime(2024, 6, 20),
        datetime(2024, 6, 22, 9, 35, 57),
        datetime(2024, 2, 29),
        1,  # whole days, as Athena counts (DuckDB's own date_diff would say 2)
        5,
        5,
        None,
        1.5,
        datetime(1970, 1, 2, 0, 0, 0, 500000),
        20,
        1,
    )
