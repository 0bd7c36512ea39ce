"""Every view and saved query we ship is Trino SQL that Athena engine v3 can run at year-two scale.

Parsed with sqlglot in the Trino dialect (tests/local/trino_check.py says what is checked and why); the negative
cases prove each rule fires, so a green run means something.
"""

from __future__ import annotations

import pytest

from exportlake.domain import views
from exportlake.domain.schemas import EXPORT_TYPES, LATEST_TABLE, ResultSemantics
from tests.local.trino_check import TrinoSqlError, check

DATABASE = "exportlake"
ALL_SNAPSHOT = {key: ResultSemantics.SNAPSHOT for key in EXPORT_TYPES}
ALL_DELTA = {key: ResultSemantics.DELTA for key in EXPORT_TYPES}


def relations(database: str = DATABASE) -> set[str]:
    """What the catalog holds: the raw tables, the pointer table, every view (any semantics)."""
    names = {*EXPORT_TYPES, LATEST_TABLE}
    for semantics in (None, ALL_SNAPSHOT):
        names |= {v.name for v in views.views(database, semantics)}
    return names


def statements() -> list[tuple[str, str]]:
    out = []
    for semantics in (None, ALL_SNAPSHOT, ALL_DELTA):
        out += [(f"view {v.name}", v.select) for v in views.views(DATABASE, semantics)]
        out += [(f"query {q.name}", q.sql) for q in views.saved_queries(DATABASE, semantics)]
    return sorted(set(out))


@pytest.mark.parametrize(("name", "sql"), statements(), ids=[n for n, _ in statements()])
def test_every_view_and_saved_query_is_trino_sql(name: str, sql: str) -> None:
    check(sql, DATABASE, relations())


def test_the_latest_views_join_the_pointer_table_on_plain_partition_columns() -> None:
    for view in views.views(DATABASE, ALL_SNAPSHOT):
        if view.name.endswith("_latest"):
            assert f'JOIN "{DATABASE}"."{LATEST_TABLE}" l' in view.select
            for key in ("export_name", "created_date", "result_id"):
                assert f't."{key}" = l."{key}"' in view.select
            assert "||" not in view.select  # no expression on the partition columns: it would defeat pruning


BAD = {
    "a DuckDB cast": ('SELECT a::int FROM "exportlake"."win_info"', "'::' cast"),
    "DuckDB functions": ('SELECT strptime(a, \'%Y\'), epoch(b) FROM "exportlake"."win_info"', "epoch, strptime"),
    "a list literal": ('SELECT [1, 2] FROM "exportlake"."win_info"', "list literal"),
    "GROUP BY ALL": ('SELECT userid, count(*) FROM "exportlake"."win_info" GROUP BY ALL', "GROUP BY ALL"),
    "a comma join": ('SELECT 1 FROM "exportlake"."win_info" w, "exportlake"."campaign_info" c', "cross join"),
    "a range join": (
        'SELECT 1 FROM "exportlake"."win_info_typed" w LEFT JOIN "exportlake"."campaign_info_typed" c '
        "ON w.participation_date >= c.campaign_start AND w.participation_date < c.campaign_end",
        "no equality key",
    ),
    "an equality within one side": (
        'SELECT 1 FROM "exportlake"."win_info" w JOIN "exportlake"."campaign_info" c ON w.userid = w.stackid',
        "no equality key",
    ),
    "a missing relation": ('SELECT 1 FROM "exportlake"."win_infos"', "does not exist"),
    "an unqualified relation": ("SELECT 1 FROM win_info", "not qualified"),
    "not SQL at all": ("SELEC 1", "not Trino SQL"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_the_check_rejects(case: str) -> None:
    sql, reason = BAD[case]
    with pytest.raises(TrinoSqlError, match=reason):
        check(sql, DATABASE, relations())


def test_the_check_accepts_what_trino_runs() -> None:
    check(
        'WITH d AS (SELECT * FROM "exportlake"."campaign_info_typed") '
        "SELECT x.day FROM d CROSS JOIN UNNEST(sequence(CAST(d.campaign_start AS date), "
        "CAST(d.campaign_end AS date), INTERVAL '1' DAY)) AS x (day) "
        'JOIN "exportlake"."win_info_typed" w ON CAST(w.participation_date AS date) = x.day '
        'LEFT JOIN "exportlake"."latest_results" l ON l.export_name IS NOT DISTINCT FROM w.export_name',
        DATABASE,
        relations(),
    )


def test_the_old_latest_view_and_campaign_join_would_have_failed() -> None:
    """What issue 18 found, as the check sees it: the range join is refused."""
    old_campaigns = (
        'SELECT c.campaign_code, count(w.userid) FROM "exportlake"."campaign_info_latest" c '
        'LEFT JOIN "exportlake"."win_info_typed" w '
        "ON w.participation_date >= c.campaign_start AND w.participation_date < c.campaign_end GROUP BY 1"
    )
    with pytest.raises(TrinoSqlError, match="no equality key"):
        check(old_campaigns, DATABASE, relations())
